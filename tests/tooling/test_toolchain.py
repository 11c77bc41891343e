"""The toolchain: provider mirrors (both layouts, the range, the platform), the registry when there
is none, one sentence when neither, the terraform shim, local overrides."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_helpers import process_gone

from devkit import overrides, toolchain, workspace


@pytest.fixture
def no_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No machine mirror, no TF_PROVIDER_MIRRORS, a linux_amd64 machine, and .tools in tmp_path."""
    monkeypatch.setenv("TOOLCHAIN_HIDE_MACHINE", "1")
    monkeypatch.delenv("TF_PROVIDER_MIRRORS", raising=False)
    monkeypatch.delenv("TOOLCHAIN_REGISTRY_REACHABLE", raising=False)
    monkeypatch.setattr(toolchain.platform, "system", lambda: "Linux")
    monkeypatch.setattr(toolchain.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(toolchain, "TOOLS", tmp_path / "tools")
    monkeypatch.setattr(toolchain, "registry_reachable", _no_network)
    return tmp_path


def _no_network() -> bool:
    raise AssertionError("the registry probe was not replaced: tests never leave the machine")


def _unpacked(root: Path, version: str, target: str = "linux_amd64") -> Path:
    build = root / toolchain.PROVIDER_SOURCE / version / target
    build.mkdir(parents=True)
    (build / f"terraform-provider-aws_v{version}_x5").write_bytes(b"")
    return build


def _packed(root: Path, version: str, target: str = "linux_amd64") -> Path:
    base = root / toolchain.PROVIDER_SOURCE
    base.mkdir(parents=True, exist_ok=True)
    (base / f"terraform-provider-aws_{version}_{target}.zip").write_bytes(b"")
    return base / f"terraform-provider-aws_{version}_{target}.zip"


def test_mirrors_are_found_in_both_layouts_and_filtered_by_the_range(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = no_machine / "first", no_machine / "second"
    _unpacked(first, "5.60.9")  # below 5.61.0
    _packed(first, "5.61.0")
    _unpacked(first, "6.2.0")
    _packed(second, "7.0.0")  # the ceiling is exclusive
    _unpacked(second, "5.100.0")
    _unpacked(second, "6.9.0", target="darwin_arm64")  # another platform's build
    (second / toolchain.PROVIDER_SOURCE / "index.json").write_text("{}")  # `terraform providers mirror`
    monkeypatch.setenv("TF_PROVIDER_MIRRORS", f"{first}{os.pathsep}{second}")

    builds = toolchain.providers()

    assert [(b.version, b.packed) for b in builds] == [("5.61.0", True), ("5.100.0", False), ("6.2.0", False)]
    assert builds[1].path == second / toolchain.PROVIDER_SOURCE / "5.100.0" / "linux_amd64"
    assert toolchain.select().version == "6.2.0", "the newest is used"
    assert toolchain.select("5.61.0") == builds[0]
    with pytest.raises(toolchain.ToolchainError, match=r"5\.60\.9 is not in a local mirror"):
        toolchain.select("5.60.9")


@pytest.mark.parametrize(
    ("version", "usable"),
    [
        ("5.60.9", False),
        ("5.61.0", True),
        ("5.100.0", True),
        ("6.0.0", True),
        ("6.99.99", True),
        ("7.0.0", False),
    ],
)
def test_the_range_is_provider_tf_s_constraint(version: str, usable: bool) -> None:
    assert toolchain.in_range(version) is usable
    assert toolchain.PROVIDER_CONSTRAINT == ">= 5.61.0, < 7.0.0"


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [
        ("Linux", "x86_64", "linux_amd64"),
        ("Linux", "aarch64", "linux_arm64"),
        ("Linux", "armv7l", "linux_arm"),
        ("Darwin", "arm64", "darwin_arm64"),
        ("Darwin", "x86_64", "darwin_amd64"),
        ("Windows", "AMD64", "windows_amd64"),
        ("FreeBSD", "amd64", "freebsd_amd64"),
    ],
)
def test_the_platform_is_the_machine_s(
    monkeypatch: pytest.MonkeyPatch, system: str, machine: str, expected: str
) -> None:
    monkeypatch.setattr(toolchain.platform, "system", lambda: system)
    monkeypatch.setattr(toolchain.platform, "machine", lambda: machine)
    assert toolchain.terraform_platform() == expected


def test_only_builds_for_this_platform_count(no_machine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _unpacked(no_machine, "5.100.0", target="linux_amd64")
    arm = _packed(no_machine, "6.1.0", target="darwin_arm64")
    monkeypatch.setenv("TF_PROVIDER_MIRRORS", str(no_machine))
    monkeypatch.setattr(toolchain.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(toolchain.platform, "machine", lambda: "arm64")

    [build] = toolchain.providers()

    assert (build.version, build.path) == ("6.1.0", arm)
    mirror = toolchain.mirror_for(build)
    assert (mirror / toolchain.PROVIDER_SOURCE / arm.name).resolve() == arm


def test_the_machine_s_own_mirror_is_found_here() -> None:
    if not (Path("/opt/tf-plugins") / toolchain.PROVIDER_SOURCE / "5.100.0").is_dir():
        pytest.skip("this machine has no /opt/tf-plugins mirror")
    assert "5.100.0" in [b.version for b in toolchain.mirror_builds()]


def test_a_mirror_build_s_cli_config_points_only_the_aws_provider_at_its_mirror(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unpacked = _unpacked(no_machine / "mirror", "5.100.0")
    monkeypatch.setenv("TF_PROVIDER_MIRRORS", str(no_machine / "mirror"))
    build = toolchain.select()

    env = toolchain.environment(base={"PATH": "/usr/bin", "TF_CLI_CONFIG_FILE": "/root/.terraformrc"})

    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config == toolchain.TOOLS / "terraformrc-5.100.0"
    text = config.read_text()
    mirror = toolchain.mirror_for(build)
    assert f'path    = "{mirror}"' in text
    assert 'exclude = ["registry.terraform.io/hashicorp/aws"]' in text
    assert (mirror / toolchain.PROVIDER_SOURCE / "5.100.0" / "linux_amd64").resolve() == unpacked


def test_without_a_mirror_the_provider_comes_from_the_registry(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: True)
    monkeypatch.setattr(workspace, "ROOT", no_machine / "repo")

    assert toolchain.providers() == [toolchain.REGISTRY_BUILD]
    env = toolchain.environment(base={"PATH": "/usr/bin", "TF_CLI_CONFIG_FILE": "/root/.terraformrc"})
    ws = workspace.stage()

    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config == toolchain.TOOLS / "terraformrc-registry"
    text = config.read_text()
    assert "filesystem_mirror" not in text
    assert re.search(r"provider_installation \{\s+direct \{\}\s+\}", text)
    assert (ws.provider, ws.path) == ("registry", no_machine / "repo" / "build" / "tf" / "registry")
    assert "from registry.terraform.io" in ws.describe(("init",))


def test_offline_without_a_mirror_is_one_sentence_saying_how_to_name_one(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: False)

    with pytest.raises(toolchain.ToolchainError) as failed:
        toolchain.select()

    message = str(failed.value)
    assert message == toolchain.offline_message()
    assert "\n" not in message
    assert message.endswith(".")
    assert ". " not in message, "one sentence"
    assert "no hashicorp/aws between 5.61.0 and 7.0.0" in message
    assert "found in a local mirror and registry.terraform.io is unreachable" in message
    assert "TF_PROVIDER_MIRRORS=/path/to/mirror" in message
    assert "registry.terraform.io/hashicorp/aws/<version>/linux_amd64/" in message


def _offline_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_PROVIDER_MIRRORS", "PROVIDER")}
    env.update(TOOLCHAIN_HIDE_MACHINE="1", TOOLCHAIN_REGISTRY_REACHABLE="0", PYTHONPATH=str(toolchain.ROOT))
    return env


@pytest.mark.parametrize(
    "command",
    [
        ["devkit.toolchain", "setup"],
        ["devkit.toolchain", "exec", "--", "terraform", "version"],
        ["devkit.tfcheck"],
        ["devkit.overrides", "--dir", "{tmp}"],
        ["devkit.stack", "up", "--port", "{port}"],
        ["devkit.demo", "--port", "{port}"],
        ["devkit.iam_proof", "--report", "{tmp}/iam-proof.json"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_offline_without_a_mirror_every_command_prints_the_sentence_alone(
    tmp_path: Path, command: list[str]
) -> None:
    with socket.socket() as probe:  # a free port: nothing may start on it anyway
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [part.format(tmp=tmp_path, port=port) for part in command]

    ran = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=toolchain.ROOT,
        env=_offline_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    prefix = args[0].rsplit(".", 1)[1].replace("_", "-")
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.splitlines() == [f"{prefix}: {toolchain.offline_message()}"]
    assert "Traceback" not in ran.stdout + ran.stderr
    assert "[setup]" not in ran.stdout, "nothing is started"


def test_the_registry_probe_is_a_tcp_connect_and_can_be_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLCHAIN_REGISTRY_REACHABLE", raising=False)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        assert toolchain.registry_reachable("127.0.0.1", port, 2.0)
    assert toolchain.registry_reachable("127.0.0.1", port, 2.0), "asked once per process"
    toolchain._probe.cache_clear()
    assert not toolchain.registry_reachable("127.0.0.1", port, 2.0)
    toolchain._probe.cache_clear()
    assert toolchain.REGISTRY_PROBE_TIMEOUT <= 5

    monkeypatch.setattr(toolchain, "_probe", lambda *args: pytest.fail("forced: no probe"))
    monkeypatch.setenv("TOOLCHAIN_REGISTRY_REACHABLE", "0")
    assert not toolchain.registry_reachable()
    monkeypatch.setenv("TOOLCHAIN_REGISTRY_REACHABLE", "1")
    assert toolchain.registry_reachable()


def test_setup_says_where_the_provider_comes_from(
    no_machine: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: True)
    assert toolchain.main(["setup"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("hashicorp/aws >= 5.61.0, < 7.0.0 from registry.terraform.io")

    _unpacked(no_machine / "mirror", "5.100.0")
    _packed(no_machine / "mirror", "6.0.0")
    monkeypatch.setenv("TF_PROVIDER_MIRRORS", str(no_machine / "mirror"))
    assert toolchain.main(["setup"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith(f"hashicorp/aws 6.0.0 from the local mirror {no_machine / 'mirror'}")
    assert out[2].startswith("also checked by `make tf-check`: hashicorp/aws 5.100.0 from the local mirror")


def test_hiding_the_machine_leaves_only_what_the_project_installs(no_machine: Path) -> None:
    assert toolchain.mirror_builds() == []
    terraform = toolchain.terraform_executable()
    assert terraform == toolchain.TOOLS / "bin" / "terraform"
    version = subprocess.run(
        [str(terraform), "version"], capture_output=True, text=True, check=True, timeout=120
    )
    assert "Terraform v1." in version.stdout


@pytest.mark.skipif(shutil.which("terraform") is None, reason="compares with a terraform on PATH")
def test_a_good_terraform_on_path_is_preferred(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOOLCHAIN_HIDE_MACHINE", raising=False)
    on_path = Path(shutil.which("terraform") or "")
    version = toolchain._terraform_version(str(on_path))
    expected = (
        on_path if version and version >= toolchain.MIN_TERRAFORM else toolchain.TOOLS / "bin" / "terraform"
    )
    assert toolchain.terraform_executable() == expected


@pytest.mark.parametrize("version", ["5.61.0", "5.100.0", "6.0.0", "registry"])
def test_the_override_fits_every_provider_source(tmp_path: Path, version: str) -> None:
    overrides.write(tmp_path, "http://127.0.0.1:4566", version)
    block = (tmp_path / overrides.OVERRIDE_FILE).read_text()
    assert "s3_use_path_style" in block
    for gone in ("s3_force_path_style", "skip_get_ec2_platforms"):
        assert gone not in block
    endpoints = dict(re.findall(r'^\s+(\w+)\s+= "(http[^"]+)"$', block, flags=re.M))
    assert set(endpoints) == {
        *(
            "cloudwatch",
            "dynamodb",
            "events",
            "iam",
            "kms",
            "lambda",
            "logs",
            "s3",
            "sfn",
            "sns",
            "sqs",
            "sts",
        )
    }
    assert set(endpoints.values()) == {"http://127.0.0.1:4566"}
    variables = json.loads((tmp_path / overrides.TFVARS_FILE).read_text())
    assert "lambda_runtime" not in variables, "the configuration's default runtime"
    assert variables["s3_force_destroy"] is True
    assert variables["dynamodb_deletion_protection"] is False, "`make down` must be able to destroy the table"
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
