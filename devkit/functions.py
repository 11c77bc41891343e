"""The function registry: ``functions.json`` at the repository root, the one list of the Lambda functions.

Each entry names a function (``name``: the IAM proof's component, e.g. ``monitor``), its folder (whose
files go to the root of ``dist/<folder>.zip``), the shared packages shipped whole in its zip, its
Terraform resources (function, role, log group), the output holding its deployed name, and the suffix
of that name (``<project>-<environment>-<suffix>``). JSON, so that Terraform reads it too
(``jsondecode(file(...))`` in provider.tf: the log group names and the error alarms); this module is
its one Python reader. tests/tooling/test_function_registry.py fails if anything else lists the functions.

Usage: python -m devkit.functions [--cov-flags | --folders]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "functions.json"


@dataclass(frozen=True)
class Function:
    name: str  # trigger, writer, monitor: the IAM proof's component
    label: str  # in prose: "the <label> function"
    folder: str  # lambda_trigger: its files go to the zip root
    shared_packages: tuple[str, ...]  # shipped whole in the zip (lambda_common/)
    resource: str  # aws_lambda_function.trigger
    role: str  # aws_iam_role.trigger
    log_group: str  # aws_cloudwatch_log_group.trigger
    output: str  # the Terraform output holding the deployed function's name
    function_name_suffix: str  # the deployed name is <project>-<environment>-<suffix>

    @property
    def zip_name(self) -> str:
        return f"{self.folder}.zip"

    @property
    def terraform_file(self) -> str:
        return f"{self.folder}.tf"


def load(path: Path = REGISTRY) -> tuple[Function, ...]:
    entries = json.loads(path.read_text(encoding="utf-8"))["functions"]
    return tuple(
        Function(**{**entry, "shared_packages": tuple(entry["shared_packages"])}) for entry in entries
    )


FUNCTIONS = load()


def folders() -> tuple[str, ...]:
    return tuple(function.folder for function in FUNCTIONS)


def shared_packages() -> tuple[str, ...]:
    """Every shared package, once, in registry order."""
    return tuple(dict.fromkeys(p for function in FUNCTIONS for p in function.shared_packages))


def coverage_packages() -> tuple[str, ...]:
    """What the unit tests measure and scripts/check_coverage.py gates: every folder and shared package."""
    return (*folders(), *shared_packages())


def by_name(name: str) -> Function:
    return next(function for function in FUNCTIONS if function.name == name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.functions", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cov-flags", action="store_true", help="pytest-cov flags: --cov=<package> each")
    group.add_argument("--folders", action="store_true", help="the function folders, one a line")
    args = parser.parse_args(argv)
    if args.cov_flags:
        print(" ".join(f"--cov={package}" for package in coverage_packages()))
    elif args.folders:
        print("\n".join(folders()))
    else:
        print(json.dumps([asdict(function) for function in FUNCTIONS], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
