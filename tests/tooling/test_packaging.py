"""The Lambda zips are reproducible and self-contained: each imports with nothing but itself and the
Lambda runtime."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from devkit import functions, packaging
from devkit.lambda_harness import LAMBDA_RUNTIME_DISTRIBUTIONS, top_level_modules


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


def copy_sources(target: Path) -> Path:
    """The function folders and lambda_common, copied as the packager reads them."""
    for folder in functions.coverage_packages():
        shutil.copytree(
            packaging.ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return target


def build_from(source: Path, dist: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    build_dir = packaging.ROOT / "build"  # reuse the installed libraries: no download in tests
    monkeypatch.setattr(packaging, "ROOT", source)
    return {p.stem: p for p in packaging.build(None, dist, build_dir)}


def test_a_source_change_changes_only_that_zip(
    built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = copy_sources(tmp_path / "src")
    (source / "lambda_writer" / "index.py").write_text(
        (source / "lambda_writer" / "index.py").read_text() + "\n# changed\n"
    )

    changed = {
        name: digest(path) for name, path in build_from(source, tmp_path / "dist", monkeypatch).items()
    }

    assert changed["lambda_writer"] != digest(built["lambda_writer"])
    assert changed["lambda_trigger"] == digest(built["lambda_trigger"])
    assert changed["lambda_security_monitor"] == digest(built["lambda_security_monitor"])


def test_a_change_in_lambda_common_changes_every_zip(
    built: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = copy_sources(tmp_path / "src")
    (source / "lambda_common" / "new_module.py").write_text("VALUE = 1\n")

    rebuilt = build_from(source, tmp_path / "dist", monkeypatch)

    for name, path in rebuilt.items():
        assert digest(path) != digest(built[name]), name
        with zipfile.ZipFile(path) as archive:
            assert archive.read("lambda_common/new_module.py") == b"VALUE = 1\n"


def test_lambda_common_must_be_a_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = copy_sources(tmp_path / "src")
    (source / "lambda_common" / "__init__.py").unlink()

    with pytest.raises(packaging.PackagingError, match="lambda_common must be a package"):
        build_from(source, tmp_path / "dist", monkeypatch)


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
FUNCTION_NAMES = sorted(functions.folders())


@pytest.mark.parametrize("function", FUNCTION_NAMES)
def test_each_zip_bundles_its_handler_and_powertools(built: dict[str, Path], function: str) -> None:
    with zipfile.ZipFile(built[function]) as archive:
        names = set(archive.namelist())
        index = archive.read("index.py")
    assert index == (packaging.ROOT / function / "index.py").read_bytes()
    assert "aws_lambda_powertools/__init__.py" in names


@pytest.mark.parametrize("function", FUNCTION_NAMES)
def test_each_zip_bundles_the_whole_lambda_common_package(built: dict[str, Path], function: str) -> None:
    expected = {
        f"lambda_common/{path.relative_to(COMMON_DIR).as_posix()}": path.read_bytes()
        for path in COMMON_DIR.rglob("*.py")
        if "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(built[function]) as archive:
        bundled = {
            name: archive.read(name) for name in archive.namelist() if name.startswith("lambda_common/")
        }
        root_modules = {name for name in archive.namelist() if "/" not in name}
    assert "lambda_common/__init__.py" in bundled
    assert bundled == expected
    # Nothing of lambda_common is copied flat to the zip root any more
    assert root_modules & {path.name for path in COMMON_DIR.glob("*.py")} == set()


# --- a zip imports with nothing but itself and the Lambda runtime -----------------------------------

PROBE = """
import importlib, json, sys
task_root, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [task_root, runtime]
index = importlib.import_module("index")
files = {getattr(module, "__file__", None) for module in list(sys.modules.values())}
print(json.dumps({"index": index.__file__, "files": sorted(f for f in files if f)}))
"""

FUNCTION_ENV = {
    "STATE_MACHINE_ARN": "arn:aws:states:eu-central-1:123456789012:stateMachine:ingestion",
    "ALERT_TOPIC_ARN": "arn:aws:sns:eu-central-1:123456789012:alerts",
    "UPLOAD_BUCKET": "uploads-bucket",
    "TABLE_NAME": "metadata",
    "SCAN_REGIONS": "eu-central-1",
    "POWERTOOLS_SERVICE_NAME": "zip-probe",
}


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only what AWS's Python runtime adds to the standard library (boto3 and its
    dependencies), linked from this venv."""
    runtime = tmp_path_factory.mktemp("lambda-runtime")
    for module in sorted(top_level_modules(LAMBDA_RUNTIME_DISTRIBUTIONS)):
        spec = importlib.util.find_spec(module)
        assert spec is not None
        assert spec.origin is not None
        source = Path(spec.origin)
        if spec.submodule_search_locations:
            source = source.parent
        (runtime / source.name).symlink_to(source)
    return runtime


def import_in_isolation(zip_path: Path, runtime: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Unpack the zip and import its ``index`` in a fresh interpreter whose sys.path is only the
    unpacked zip, the runtime's libraries and the standard library (-S: no site-packages;
    -I: no PYTHONPATH, no user site, no current directory)."""
    task_root = workdir / "task"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)
    env = {
        **FUNCTION_ENV,
        "AWS_REGION": "eu-central-1",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": str(workdir / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "no-credentials"),
        "HOME": str(workdir),
    }
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(task_root), str(runtime)],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("function", FUNCTION_NAMES)
def test_each_zip_imports_its_handler_with_nothing_but_the_zip_and_the_runtime(
    built: dict[str, Path], lambda_runtime: Path, tmp_path: Path, function: str
) -> None:
    result = import_in_isolation(built[function], lambda_runtime, tmp_path)

    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    task_root = tmp_path / "task"
    assert loaded["index"] == str(task_root / "index.py")
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    outside = [
        file
        for file in loaded["files"]
        if not Path(file).is_relative_to(task_root)
        and not Path(file).is_relative_to(lambda_runtime)
        and not Path(file).resolve().is_relative_to(stdlib)
    ]
    assert outside == []
    assert str(task_root / "lambda_common" / "__init__.py") in loaded["files"]


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        pytest.param("from key_validation import validate_key", "key_validation", id="old-flat-import"),
        pytest.param("import devkit.packaging", "devkit", id="repository-tooling"),
        pytest.param("import moto", "moto", id="test-only-library"),
        pytest.param("from lambda_common.nowhere import thing", "lambda_common.nowhere", id="missing-module"),
    ],
)
def test_an_import_the_zip_lacks_is_caught(
    lambda_runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statement: str, missing: str
) -> None:
    source = copy_sources(tmp_path / "src")
    index = source / "lambda_writer" / "index.py"
    index.write_text(f"{index.read_text()}\n{statement}\n")
    zip_path = build_from(source, tmp_path / "dist", monkeypatch)["lambda_writer"]

    result = import_in_isolation(zip_path, lambda_runtime, tmp_path)

    assert result.returncode != 0
    assert f"ModuleNotFoundError: No module named '{missing}'" in result.stderr


def test_unknown_function_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(packaging.PackagingError, match="unknown function"):
        packaging.build(["lambda_nope"], tmp_path, packaging.ROOT / "build")
