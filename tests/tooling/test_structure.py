"""The tooling, the handlers and the operator scripts keep functions short enough to read in one
screen, as the emulator package does (tests/emulator/test_registry.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from devkit import functions

ROOT = Path(__file__).resolve().parents[2]
# The tooling, and every function folder and shared package of functions.json (subpackages included:
# package_files searches each folder recursively).
PACKAGES = ("devkit", "scripts", "ingestion_reconcile", "benchmarks", *functions.coverage_packages())
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


SHARED_ERRORS = ("ConfigurationError",)
"""Errors defined once, in ``lambda_common/errors.py``: a function folder imports them, never
defines its own (#18)."""


def shared_error_definitions(path: Path) -> list[str]:
    """Where ``path`` defines one of :data:`SHARED_ERRORS` (a class, or a name bound to one)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [target.id for target in targets if isinstance(target, ast.Name)]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names if name in SHARED_ERRORS]
    return found


def test_shared_errors_are_defined_once_in_lambda_common() -> None:
    function_folders = sorted(index.parent for index in ROOT.glob("*/index.py"))
    assert len(function_folders) >= 3, "the function folders were found"
    function_files = [path for folder in function_folders for path in sorted(folder.rglob("*.py"))]
    assert [found for path in function_files for found in shared_error_definitions(path)] == []
    common_files = sorted((ROOT / "lambda_common").rglob("*.py"))
    common = [found.split(":")[0] for path in common_files for found in shared_error_definitions(path)]
    assert common == ["lambda_common/errors.py"] * len(SHARED_ERRORS)


def test_the_check_sees_a_local_configuration_error() -> None:
    source = ROOT / "build" / "structure-probe-errors.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text("class ConfigurationError(Exception):\n    pass\n\n\nConfigurationError = KeyError\n")
    try:
        assert shared_error_definitions(source) == [
            "build/structure-probe-errors.py:1 ConfigurationError",
            "build/structure-probe-errors.py:5 ConfigurationError",
        ]
    finally:
        source.unlink()


# The two places that may put code on sys.path: the test harness loading a function as its zip
# would (its folder first; today through pytest's monkeypatch) and the emulator's bootstrap running
# a function's code (#18). Everything else is imported as a package.
SYS_PATH_EDITORS = {"devkit/lambda_harness.py", "emulator/lambda_bootstrap.py"}


def sys_path_edits(path: Path) -> list[str]:
    """Each statement of `path` that changes sys.path (a call on it, an assignment to it or a slice)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
        elif isinstance(node, ast.Assign | ast.AugAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            target = target.value if isinstance(target, ast.Subscript) else target
        if (
            isinstance(target, ast.Attribute)
            and target.attr == "path"
            and isinstance(target.value, ast.Name)
            and target.value.id == "sys"
        ):
            found.append((node.lineno, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return [edit for _, edit in sorted(found)]


def test_no_sys_path_edit_outside_the_harness_and_the_emulator_bootstrap() -> None:
    skipped = {".venv", ".tools", "build", "dist", ".emulator", "tests", ".git"}
    files = [p for p in sorted(ROOT.rglob("*.py")) if not skipped & set(p.relative_to(ROOT).parts)]
    assert len(files) > 50, "the repository's Python files were found"
    edits = [edit for path in files for edit in sys_path_edits(path)]
    editors = {edit.split(":")[0] for edit in edits}
    assert editors <= SYS_PATH_EDITORS, edits
    assert "emulator/lambda_bootstrap.py" in editors, "the bootstrap's edit is seen (the check works here)"


def test_the_sys_path_check_sees_each_kind_of_edit() -> None:
    source = ROOT / "build" / "structure-probe-sys-path.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text(
        "import sys\nsys.path.insert(0, 'x')\nsys.path[:0] = ['y']\nsys.path = []\nprint(sys.path)\n"
    )
    try:
        assert sys_path_edits(source) == [
            "build/structure-probe-sys-path.py:2",
            "build/structure-probe-sys-path.py:3",
            "build/structure-probe-sys-path.py:4",
        ]
    finally:
        source.unlink()


def test_no_python_file_outside_tests_is_over_600_lines() -> None:
    skipped = {".venv", ".tools", "build", "dist", ".emulator", "tests", ".git"}
    files = [p for p in sorted(ROOT.rglob("*.py")) if not skipped & set(p.relative_to(ROOT).parts)]
    assert len(files) > 50, "the repository's Python files were found"
    long_files = {
        str(p.relative_to(ROOT)): n
        for p in files
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long_files == {}


def test_the_iam_proof_is_modules_of_at_most_500_lines() -> None:
    """Issue #18: the proof is a package of modules by concern, none over 500 lines."""
    modules = sorted((ROOT / "devkit" / "iam_proof").glob("*.py"))
    assert len(modules) >= 8
    assert {p.name: n for p in modules if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500} == {}


def test_make_test_runs_the_proof_lanes_tests_there_and_only_there() -> None:
    """The tests moved beside the IAM proof are still in make test: left out of the main run, run
    in the proof's lane, and they exist."""
    makefile = (ROOT / "Makefile").read_text()
    (lane,) = re.findall(r"^PROOF_LANE_TESTS = (.+)$", makefile, re.MULTILINE)
    assert lane.split()
    assert all((ROOT / path).is_file() for path in lane.split())
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    assert "pytest $(PROOF_LANE_TESTS) " in recipe.group(1)
    assert "pytest tests benchmarks --ignore=$(PROOF_LANE_TESTS) " in recipe.group(1)


def test_test_modules_have_unique_basenames() -> None:
    """pytest imports test modules by basename (rootdir, no __init__.py): two test_x.py in different
    folders collide in one run ("import file mismatch"), which only the whole suite shows."""
    names = [path.name for path in sorted((ROOT / "tests").rglob("test_*.py"))]
    assert len(names) > 20, "the test modules were found"
    assert sorted({name for name in names if names.count(name) > 1}) == []
