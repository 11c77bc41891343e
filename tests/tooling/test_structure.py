"""The tooling, the handlers and the operator scripts keep functions short enough to read in one
screen, as the emulator package does (tests/emulator/test_registry.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "devkit",
    "scripts",
    "ingestion_reconcile",
    "benchmarks",
    "lambda_common",
    "lambda_trigger",
    "lambda_writer",
    "lambda_security_monitor",
    "lambda_security_monitor/security_monitor",
)
MAX_FUNCTION_LINES = 60


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def package_files() -> list[Path]:
    """Every Python file of the packages, their subpackages' included (devkit/iam_proof/...)."""
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def test_no_function_is_longer_than_sixty_lines() -> None:
    files = package_files()
    assert len(files) > 20, "the packages were found"
    assert ROOT / "devkit" / "iam_proof" / "prove.py" in files, "subpackages are checked too"
    assert [found for path in files for found in long_functions(path)] == []


def test_the_check_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = ROOT / "build" / "structure-probe.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text(f"def long() -> None:\n{body}\n")
    try:
        assert long_functions(source) == [f"build/structure-probe.py:1 long ({MAX_FUNCTION_LINES + 1} lines)"]
    finally:
        source.unlink()
