"""The offline toolchain: provider mirrors, hash verification, terraform shim, local overrides."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_helpers import process_gone

from devkit import overrides, toolchain


def test_the_minimum_provider_is_always_available_and_verified() -> None:
    builds = toolchain.providers()
    assert builds[0].version == "3.39.0"
    assert toolchain.sha256_of(builds[0].path) == toolchain.MIN_PROVIDER_SHA256


def test_a_tampered_provider_zip_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "cloudrail" / "terraform_plugins"
    fake.mkdir(parents=True)
    (tmp_path / "cloudrail" / "__init__.py").write_text("")
    (fake / "terraform-provider-aws_3.39.0_linux_amd64.zip").write_bytes(b"not the release")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "cloudrail", raising=False)
    with pytest.raises(toolchain.ToolchainError, match="refusing to use it"):
        toolchain.providers()


def test_newer_mirrors_are_found_in_both_layouts_and_filtered_by_the_constraint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "registry.terraform.io" / "hashicorp" / "aws"
    (base / "5.100.0" / "linux_amd64").mkdir(parents=True)
    (base / "5.100.0" / "linux_amd64" / "terraform-provider-aws_v5.100.0_x5").write_bytes(b"")
    (base / "terraform-provider-aws_4.67.0_linux_amd64.zip").write_bytes(b"")
    (base / "terraform-provider-aws_6.0.0_linux_amd64.zip").write_bytes(b"")  # outside < 6.0.0
    monkeypatch.setenv("TF_PROVIDER_MIRRORS", str(tmp_path))
    monkeypatch.setenv("TOOLCHAIN_HIDE_MACHINE", "1")
    assert [b.version for b in toolchain.providers()] == ["3.39.0", "4.67.0", "5.100.0"]
    assert toolchain.select(None).version == "5.100.0"
    with pytest.raises(toolchain.ToolchainError, match="not available offline"):
        toolchain.select("5.1.0")


def test_hiding_the_machine_leaves_only_what_the_project_installs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLCHAIN_HIDE_MACHINE", "1")
    monkeypatch.delenv("TF_PROVIDER_MIRRORS", raising=False)
    assert [b.version for b in toolchain.providers()] == ["3.39.0"]
    terraform = toolchain.terraform_executable()
    assert terraform == toolchain.TOOLS / "bin" / "terraform"
    version = subprocess.run(
        [str(terraform), "version"], capture_output=True, text=True, check=True, timeout=120
    )
    assert "Terraform v1." in version.stdout


def test_cli_config_points_only_the_aws_provider_at_its_mirror() -> None:
    build = toolchain.select("3.39.0")
    text = toolchain.cli_config(build).read_text()
    mirror = toolchain.mirror_for(build)
    assert f'path    = "{mirror}"' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text
    assert (
        mirror / toolchain.PROVIDER_SOURCE / "terraform-provider-aws_3.39.0_linux_amd64.zip"
    ).resolve() == build.path


@pytest.mark.skipif(shutil.which("terraform") is None, reason="compares with a terraform on PATH")
def test_a_good_terraform_on_path_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLCHAIN_HIDE_MACHINE", raising=False)
    on_path = Path(shutil.which("terraform") or "")
    version = toolchain._terraform_version(str(on_path))
    expected = (
        on_path if version and version >= toolchain.MIN_TERRAFORM else toolchain.TOOLS / "bin" / "terraform"
    )
    assert toolchain.terraform_executable() == expected


@pytest.mark.parametrize(
    ("version", "present", "absent", "runtime"),
    [
        ("3.39.0", ["s3_force_path_style", "skip_get_ec2_platforms"], ["s3_use_path_style"], "python3.8"),
        ("5.100.0", ["s3_use_path_style"], ["s3_force_path_style", "skip_get_ec2_platforms"], None),
    ],
)
def test_overrides_follow_the_provider_major(
    tmp_path: Path, version: str, present: list[str], absent: list[str], runtime: str | None
) -> None:
    overrides.write(tmp_path, "http://127.0.0.1:4566", version)
    block = (tmp_path / overrides.OVERRIDE_FILE).read_text()
    for word in present:
        assert word in block
    for word in absent:
        assert word not in block
    endpoints = dict(re.findall(r'^\s+(\w+)\s+= "(http[^"]+)"$', block, flags=re.M))
    for key in ("stepfunctions", "cloudwatchevents", "cloudwatchlogs", "sts", "ec2", "lambda", "s3"):
        assert endpoints[key] == "http://127.0.0.1:4566"
    variables = json.loads((tmp_path / overrides.TFVARS_FILE).read_text())
    assert variables.get("lambda_runtime") == runtime
    assert variables["s3_force_destroy"] is True
    overrides.remove(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _hanging_command(path: Path, pid_file: Path, lines: list[str]) -> Path:
    """An executable that prints ``lines``, starts a child (like a plugin) and then hangs."""
    printed = "".join(f"print({line!r}, flush=True)\n" for line in lines)
    path.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys, time\n"
        f"{printed}"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n"
    )
    path.chmod(0o755)
    return path


def test_a_terraform_on_path_that_hangs_is_a_toolchain_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "child.pid"
    hanging = _hanging_command(tmp_path / "terraform", pid_file, ["checking for updates", "still waiting"])
    monkeypatch.delenv("TOOLCHAIN_HIDE_MACHINE", raising=False)
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: str(hanging) if name == "terraform" else None)
    monkeypatch.setattr(toolchain, "TERRAFORM_VERSION_TIMEOUT", 1.0)

    started = time.monotonic()
    with pytest.raises(toolchain.ToolchainError) as failed:
        toolchain.terraform_executable()

    assert time.monotonic() - started < 30
    message = str(failed.value)
    assert f"`{hanging} version` did not finish within 1 s" in message
    assert message.index("checking for updates") < message.index("still waiting")
    assert "TOOLCHAIN_HIDE_MACHINE=1" in message
    assert process_gone(int(pid_file.read_text())), "what the command started is stopped with it"
