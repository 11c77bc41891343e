"""`make tf-check` names the step that failed: init, validate or terraform test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devkit import tfcheck, workspace


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

    assert tfcheck.check("3.39.0") == (
        True,
        "init ok, validate ok; terraform test: Success! 25 passed, 0 failed.",
    )
    assert not (tmp_path / "e2e_override.tf").exists(), "checks the configuration as committed"
