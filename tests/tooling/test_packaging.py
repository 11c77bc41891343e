"""The Lambda zips are reproducible and self-contained."""

from __future__ import annotations

import hashlib
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


def test_entries_are_sorted_with_a_fixed_time_and_mode(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["lambda_trigger"]) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {packaging.FIXED_TIME}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.parametrize(
    ("function", "has_validator"),
    [("lambda_trigger", True), ("lambda_writer", True), ("lambda_security_monitor", False)],
)
def test_each_zip_bundles_its_handler_powertools_and_the_shared_validator(
    built: dict[str, Path], function: str, has_validator: bool
) -> None:
    with zipfile.ZipFile(built[function]) as archive:
        names = set(archive.namelist())
        index = archive.read("index.py")
        validator = archive.read("key_validation.py") if has_validator else None
    assert index == (packaging.ROOT / function / "index.py").read_bytes()
    assert "aws_lambda_powertools/__init__.py" in names
    assert ("key_validation.py" in names) is has_validator
    if validator is not None:
        assert validator == (packaging.ROOT / "lambda_common" / "key_validation.py").read_bytes()


def test_unknown_function_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(packaging.PackagingError, match="unknown function"):
        packaging.build(["lambda_nope"], tmp_path, packaging.ROOT / "build")
