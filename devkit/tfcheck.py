"""Check the Terraform configuration against every hashicorp/aws source the toolchain has.

For each one (every version in range found in a local mirror; without a mirror, the newest from
registry.terraform.io): a dedicated working directory, ``terraform init``, ``terraform validate``
and ``terraform test`` (mock provider, plan-level assertions). A warning from validate or test (a
deprecated argument, an attribute combination the provider will refuse later) fails the check: its
text is printed under the version's line.

Usage: python -m devkit.tfcheck [--provider VERSION ...] (only those mirror versions)
"""

from __future__ import annotations

import argparse
import re
import sys

from devkit import toolchain, workspace

WARNING = re.compile(r"^[│╷ ]*Warning: .*$", re.MULTILINE)


def warnings_in(*outputs: str) -> list[str]:
    """Terraform's warning headlines (``Warning: Argument is deprecated``), once each, in order."""
    found: dict[str, None] = {}
    for output in outputs:
        for match in WARNING.finditer(output):
            found.setdefault(match.group(0).strip("│╷ "), None)
    return list(found)


def check(version: str) -> tuple[bool, str]:
    """(passed, one line per step: init, validate, terraform test; the failing step's output)."""
    ws = workspace.stage(version)
    for generated in (*ws.path.glob("*_override.tf"), *ws.path.glob("*.auto.tfvars.json")):
        generated.unlink()  # left by an e2e run: the checks are about the configuration as committed
    done = []
    try:
        ws.init()
        done.append("init ok")
        validated = ws.run("validate", "-no-color")
        done.append("validate ok")
        result = ws.run("test", "-no-color", check=False)
    except workspace.TerraformError as error:
        failed = ("init", "validate")[len(done)]
        return False, ", ".join([*done, f"{failed} FAILED"]) + f"\n{error}"
    summary = re.search(r"(Success|Failure)! .*", result.stdout)
    line = ", ".join(done) + f"; terraform test: {summary.group(0) if summary else 'no test summary'}"
    if result.returncode != 0:
        return False, f"{line}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    warned = warnings_in(validated.stdout, validated.stderr, result.stdout, result.stderr)
    if warned:
        return False, f"{line}; FAILED on {len(warned)} warning(s):\n" + "\n".join(warned)
    return True, line


def run(versions: list[str] | None = None) -> int:
    builds = [toolchain.select(v) for v in versions] if versions else toolchain.providers()
    terraform = toolchain.terraform_executable()
    print(f"terraform: {terraform}; {'; '.join(build.describe() for build in builds)}")
    failed = False
    for build in builds:
        ok, detail = check(build.version)
        print(f"hashicorp/aws {toolchain.provider_label(build.version)}: {detail}")
        failed |= not ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.tfcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", action="append", help="only this mirror version (repeatable)")
    args = parser.parse_args(argv)
    try:
        return run(args.provider)
    except toolchain.ToolchainError as error:
        print(f"tfcheck: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
