"""Check the Terraform configuration against every hashicorp/aws version available offline.

For each version: a dedicated working directory, ``terraform init`` from the local mirror,
``terraform validate`` and ``terraform test`` (mock provider, plan-level assertions). Provider 3.x
gets ``lambda_runtime=python3.8`` because its schema rejects newer runtimes.

Usage: python -m devkit.tfcheck [--provider VERSION ...]
"""

from __future__ import annotations

import argparse
import re
import sys

from devkit import toolchain, workspace


def check(version: str) -> tuple[bool, str]:
    """(passed, one line per step: init, validate, terraform test; the failing step's output)."""
    ws = workspace.stage(version)
    for generated in (*ws.path.glob("*_override.tf"), *ws.path.glob("*.auto.tfvars.json")):
        generated.unlink()  # left by an e2e run: the checks are about the configuration as committed
    done = []
    try:
        ws.init()
        done.append("init ok")
        ws.run("validate", "-no-color")
        done.append("validate ok")
        extra = ["-var", "lambda_runtime=python3.8"] if toolchain.version_tuple(version)[0] < 4 else []
        result = ws.run("test", "-no-color", *extra, check=False)
    except workspace.TerraformError as error:
        failed = ("init", "validate")[len(done)]
        return False, ", ".join([*done, f"{failed} FAILED"]) + f"\n{error}"
    summary = re.search(r"(Success|Failure)! .*", result.stdout)
    line = ", ".join(done) + f"; terraform test: {summary.group(0) if summary else 'no test summary'}"
    if result.returncode != 0:
        return False, f"{line}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    return True, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.tfcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", action="append", help="only this version (repeatable)")
    args = parser.parse_args(argv)
    try:
        versions = args.provider or [build.version for build in toolchain.providers()]
        terraform = toolchain.terraform_executable()
    except toolchain.ToolchainError as error:
        print(f"tfcheck: {error}", file=sys.stderr)
        return 2
    print(f"terraform: {terraform}; hashicorp/aws versions: {', '.join(versions)}")
    failed = False
    for version in versions:
        ok, detail = check(version)
        print(f"hashicorp/aws {version}: {detail}")
        failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
