#!/usr/bin/env python3
"""Fail unless every Lambda package has at least the minimum line coverage.

The packages are the function folders and their shared packages of functions.json (devkit/functions.py).

Reads the JSON report written by ``coverage json`` (or ``pytest --cov-report=json:PATH``), prints one
line per package and exits 1 when a package is below the minimum or was not measured at all.

    python -m scripts.check_coverage build/coverage.json [--minimum 90]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Final

from devkit.functions import coverage_packages  # run as `python -m scripts.check_coverage` (Makefile)

PACKAGES: Final = coverage_packages()  # every function folder and shared package (functions.json)
DEFAULT_MINIMUM: Final = 90.0


@dataclass(frozen=True)
class PackageCoverage:
    package: str
    files: int
    statements: int
    covered: int

    @property
    def missed(self) -> int:
        return self.statements - self.covered

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.statements if self.statements else 100.0


def package_of(filename: str) -> str | None:
    """The handler package a measured file belongs to (paths may be relative or absolute)."""
    parts = PurePath(filename).parts
    for package in PACKAGES:
        if package in parts[:-1]:
            return package
    return None


def summarize(report: dict[str, Any]) -> dict[str, PackageCoverage]:
    """Line coverage per package: covered lines / statements, summed over the package's files."""
    totals = {package: [0, 0, 0] for package in PACKAGES}
    for filename, data in report.get("files", {}).items():
        package = package_of(filename)
        if package is None:
            continue
        summary = data["summary"]
        totals[package][0] += 1
        totals[package][1] += int(summary["num_statements"])
        totals[package][2] += int(summary["covered_lines"])
    return {
        package: PackageCoverage(package, files=files, statements=statements, covered=covered)
        for package, (files, statements, covered) in totals.items()
    }


def render(results: dict[str, PackageCoverage], minimum: float) -> str:
    lines = [
        f"{'package':<26}{'files':>6}{'statements':>12}{'missed':>8}{'lines':>9}  (minimum {minimum:g}%)"
    ]
    for result in results.values():
        if result.files == 0:
            lines.append(f"{result.package:<26}{0:>6}{'-':>12}{'-':>8}{'-':>9}  NOT MEASURED")
            continue
        verdict = "ok" if result.percent >= minimum else "BELOW MINIMUM"
        lines.append(
            f"{result.package:<26}{result.files:>6}{result.statements:>12}{result.missed:>8}"
            f"{result.percent:>8.1f}%  {verdict}"
        )
    return "\n".join(lines)


def failures(results: dict[str, PackageCoverage], minimum: float) -> list[str]:
    problems = []
    for result in results.values():
        if result.files == 0:
            problems.append(f"{result.package}: no file measured (was it passed to --cov?)")
        elif result.percent < minimum:
            problems.append(f"{result.package}: {result.percent:.1f}% of lines covered, below {minimum:g}%")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("report", type=Path, help="JSON report written by `coverage json`")
    parser.add_argument("--minimum", type=float, default=DEFAULT_MINIMUM, help="percent required per package")
    args = parser.parse_args(argv)

    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
    except FileNotFoundError:
        print(f"coverage check FAILED: {args.report} does not exist; run the unit tests with --cov first")
        return 1
    except json.JSONDecodeError as err:
        print(f"coverage check FAILED: {args.report} is not a coverage JSON report ({err})")
        return 1

    results = summarize(report)
    print(render(results, args.minimum))
    problems = failures(results, args.minimum)
    if problems:
        print("coverage check FAILED: " + "; ".join(problems))
        return 1
    print(f"coverage check passed: every package has >= {args.minimum:g}% line coverage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
