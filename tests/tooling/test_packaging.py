"""The Lambda zips are reproducible and self-contained."""

from __future__ import annotations

import ast
import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from devkit import packaging


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dist = tmp_path_factory.mktemp("dist")
    paths = packaging.build(None, dist, packaging.ROOT / "build")
    return {p.stem: p for p in paths}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_identical_sources_give_identical_bytes(built: dict[str, Path], tmp_path: Path) -> None:
    again = {p.stem: p for p in packaging.build(None, tmp_path, packaging.ROOT / "build")}
    assert {name: digest(p) for name, p in again.items()} == {name: digest(p) for name, p in built.items()}


def test_a_source_change_changes_only_that_zip(built: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "src"
    for function in packaging.FUNCTIONS:
        target = source / function.name
        target.mkdir(parents=True)
        for file in (packaging.ROOT / function.name).glob("*.py"):
            (target / file.name).write_bytes(file.read_bytes())
    (source / "lambda_common").mkdir()
    for file in (packaging.ROOT / "lambda_common").glob("*.py"):
        (source / "lambda_common" / file.name).write_bytes(file.read_bytes())
    (source / "lambda_writer" / "index.py").write_text(
        (source / "lambda_writer" / "index.py").read_text() + "\n# changed\n"
    )
    build_dir = packaging.ROOT / "build"  # reuse the installed libraries: no download in tests
    monkeypatch.setattr(packaging, "ROOT", source)
    changed = {p.stem: digest(p) for p in packaging.build(None, tmp_path / "dist", build_dir)}
    assert changed["lambda_writer"] != digest(built["lambda_writer"])
    assert changed["lambda_trigger"] == digest(built["lambda_trigger"])
    assert changed["lambda_security_monitor"] == digest(built["lambda_security_monitor"])


def test_no_entry_depends_on_where_the_repository_or_python_lives(built: dict[str, Path]) -> None:
    """A clone in another folder must produce the same bytes: no absolute path inside any entry."""
    machine_paths = {str(packaging.ROOT).encode(), sys.prefix.encode(), sys.base_prefix.encode()}
    for function, path in built.items():
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            leaking = [n for n in names if any(p in archive.read(n) for p in machine_paths)]
        assert leaking == [], f"{function}: {leaking}"
        assert not [n for n in names if n.startswith("bin/") or n.endswith(".dist-info/RECORD")]


def test_entries_are_sorted_with_a_fixed_time_and_mode(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["lambda_trigger"]) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {packaging.FIXED_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


COMMON_DIR = packaging.ROOT / "lambda_common"
# The files of lambda_common/ that each zip carries at its root, as the handlers import them.
SHARED_FILES = {
    "lambda_trigger": {"alerts.py", "key_validation.py"},
    "lambda_writer": {"key_validation.py"},
    "lambda_security_monitor": {"alerts.py"},
}


@pytest.mark.parametrize("function", sorted(SHARED_FILES))
def test_each_zip_bundles_its_handler_and_powertools(built: dict[str, Path], function: str) -> None:
    with zipfile.ZipFile(built[function]) as archive:
        names = set(archive.namelist())
        index = archive.read("index.py")
    assert index == (packaging.ROOT / function / "index.py").read_bytes()
    assert "aws_lambda_powertools/__init__.py" in names


@pytest.mark.parametrize("shared_file", sorted(path.name for path in COMMON_DIR.glob("*.py")))
@pytest.mark.parametrize("function", sorted(SHARED_FILES))
def test_each_zip_bundles_exactly_the_shared_files_it_uses(
    built: dict[str, Path], function: str, shared_file: str
) -> None:
    expected = shared_file in SHARED_FILES[function]
    with zipfile.ZipFile(built[function]) as archive:
        bundled = archive.read(shared_file) if shared_file in archive.namelist() else None
    assert (bundled is not None) is expected
    if bundled is not None:
        assert bundled == (COMMON_DIR / shared_file).read_bytes()


@pytest.mark.parametrize("function", sorted(SHARED_FILES))
def test_every_shared_module_a_handler_imports_is_in_its_zip(built: dict[str, Path], function: str) -> None:
    common = {path.stem for path in COMMON_DIR.glob("*.py")}
    tree = ast.parse((packaging.ROOT / function / "index.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    with zipfile.ZipFile(built[function]) as archive:
        names = set(archive.namelist())
    assert imported & common, f"{function} imports nothing from lambda_common"
    assert {f"{module}.py" for module in imported & common} <= names


def test_unknown_function_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(packaging.PackagingError, match="unknown function"):
        packaging.build(["lambda_nope"], tmp_path, packaging.ROOT / "build")
