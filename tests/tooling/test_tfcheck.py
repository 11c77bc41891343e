"""`make tf-check` names the step that failed: init, validate or terraform test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devkit import tfcheck, toolchain, workspace


class FakeWorkspace:
    def __init__(
        self, path: Path, failing: str = "", test_output: str = "Success! 25 passed, 0 failed."
    ) -> None:
        self.path = path
        self.failing = failing
        self.test_output = test_output

    def init(self) -> None:
        if self.failing == "init":
            raise workspace.TerraformError("terraform init failed: no provider")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[0] == self.failing:
            raise workspace.TerraformError(f"terraform {args[0]} failed: Unsupported argument")
        code = 1 if self.test_output.startswith("Failure") else 0
        return subprocess.CompletedProcess(["terraform", *args], code, self.test_output, "")


@pytest.mark.parametrize(
    ("failing", "expected"),
    [
        ("init", "init FAILED\nterraform init failed: no provider"),
        ("validate", "init ok, validate FAILED\nterraform validate failed: Unsupported argument"),
    ],
)
def test_the_failing_step_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failing: str, expected: str
) -> None:
    monkeypatch.setattr(workspace, "stage", lambda version: FakeWorkspace(tmp_path, failing))

    assert tfcheck.check("5.100.0") == (False, expected)


def test_a_failing_terraform_test_says_validate_passed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeWorkspace(tmp_path, test_output="Failure! 24 passed, 1 failed.")
    monkeypatch.setattr(workspace, "stage", lambda version: fake)

    ok, detail = tfcheck.check("5.100.0")

    assert not ok
    assert detail.splitlines()[0] == "init ok, validate ok; terraform test: Failure! 24 passed, 1 failed."


def test_a_passing_check_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "e2e_override.tf").write_text("# left by an e2e run\n")
    monkeypatch.setattr(workspace, "stage", lambda version: FakeWorkspace(tmp_path))

    assert tfcheck.check("registry") == (
        True,
        "init ok, validate ok; terraform test: Success! 25 passed, 0 failed.",
    )
    assert not (tmp_path / "e2e_override.tf").exists(), "checks the configuration as committed"


def test_a_warning_fails_the_check_and_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    output = (
        "Success! 25 passed, 0 failed.\n"
        "╷\n│ Warning: Argument is deprecated\n│\n│   with aws_s3_bucket.uploads,\n╵\n"
        "╷\n│ Warning: Argument is deprecated\n╵\n"
    )
    monkeypatch.setattr(workspace, "stage", lambda version: FakeWorkspace(tmp_path, test_output=output))

    assert tfcheck.check("5.100.0") == (
        False,
        "init ok, validate ok; terraform test: Success! 25 passed, 0 failed.; FAILED on 1 warning(s):\n"
        "Warning: Argument is deprecated",
    )


def test_every_mirror_version_is_checked_by_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    builds = [toolchain.ProviderBuild(v, tmp_path / v) for v in ("5.61.0", "6.0.0")]
    monkeypatch.setattr(toolchain, "providers", lambda: builds)
    monkeypatch.setattr(toolchain, "terraform_executable", lambda: Path("/usr/bin/terraform"))
    checked: list[str] = []
    monkeypatch.setattr(tfcheck, "check", lambda version: (checked.append(version) is None, "ok"))

    assert tfcheck.main([]) == 0

    assert checked == ["5.61.0", "6.0.0"]
    assert capsys.readouterr().out.splitlines()[1:] == ["hashicorp/aws 5.61.0: ok", "hashicorp/aws 6.0.0: ok"]
