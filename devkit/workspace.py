"""Terraform working directories for one hashicorp/aws source each.

A ``.terraform.lock.hcl`` pins one version per provider, so each provider source the toolchain
offers (every version in range in a local mirror, or ``registry``: the newest from
registry.terraform.io) gets its own working directory under ``build/tf/`` (``build/tf/5.100.0``,
``build/tf/registry``, ...): each links the root's ``*.tf``, the state machine definition, the function registry,
``tests/`` and ``dist/``, and keeps its own ``.terraform/``, lock file, state and generated
override files.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devkit import toolchain

ROOT = toolchain.ROOT
LINKED = ("state_machine.asl.json", "functions.json", "tests", "dist")
DEFAULT_TIMEOUT = 900.0
TAIL_LINES = 40


class TerraformError(RuntimeError):
    """A terraform command failed or timed out; the message names it and carries its output."""


@dataclass
class Workspace:
    """A terraform working directory bound to one hashicorp/aws source (a version, or ``registry``)."""

    path: Path
    provider: str
    env: dict[str, str] = field(default_factory=dict)

    def describe(self, args: tuple[str, ...]) -> str:
        return f"terraform {' '.join(args)} (hashicorp/aws {toolchain.provider_label(self.provider)}, {self.path})"

    def run(
        self, *args: str, check: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run terraform here. Raises TerraformError when it fails (with check) or times out."""
        try:
            result = toolchain.run_bounded(["terraform", *args], timeout, cwd=self.path, env=self.env or None)
        except subprocess.TimeoutExpired as expired:
            raise TerraformError(
                f"{self.describe(args)} timed out after {timeout:.0f} s and was stopped. Last output:\n"
                f"{toolchain.output_tail(expired.output, TAIL_LINES)}\n"
                f"{toolchain.output_tail(expired.stderr, TAIL_LINES)}"
            ) from None
        if check and result.returncode != 0:
            raise TerraformError(
                f"{self.describe(args)} failed with exit status {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
            )
        return result

    def init(self) -> None:
        self.run("init", "-input=false", "-no-color", "-upgrade")


BACKEND = re.compile(r'^\s*backend\s+"', re.MULTILINE)
LOCAL_BACKEND_FILE = "local_backend_override.tf"
LOCAL_BACKEND = 'terraform {\n  backend "local" {}\n}\n'


class RemoteStateError(RuntimeError):
    """The repository root declares a Terraform backend: a local stack would keep its state there."""


def declared_backends(directory: Path = ROOT) -> list[str]:
    """The ``.tf`` files of ``directory`` (overrides included) that declare a backend, such as a
    copy of ``backend.tf.example``: remote state meant for a real deployment."""
    return sorted(path.name for path in directory.glob("*.tf") if BACKEND.search(path.read_text()))


def keep_state_local(where: Path, root: Path = ROOT) -> None:
    """A staged working directory keeps its state to itself: when the root declares a backend, an
    override puts the local one back (a test run or a sandbox run must never read or write the
    team's remote state); without one, no override (the state is local anyway)."""
    override = where / LOCAL_BACKEND_FILE
    if declared_backends(root):
        override.write_text(LOCAL_BACKEND)
    else:
        override.unlink(missing_ok=True)


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    link.symlink_to(target)


def stage(provider: str | None = None, path: Path | None = None) -> Workspace:
    """A working directory linking the root configuration, for the given (or newest) provider."""
    build = toolchain.select(provider)
    where = path or ROOT / "build" / "tf" / build.version
    where.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in ROOT.glob("*.tf") if not p.name.endswith("_override.tf")}
    wanted.update({name: ROOT / name for name in LINKED})
    for stale in where.glob("*.tf"):
        if stale.is_symlink() and stale.name not in wanted:
            stale.unlink()
    for name, target in wanted.items():
        _link(target, where / name)
    keep_state_local(where)
    return Workspace(where, build.version, toolchain.environment(build.version))
