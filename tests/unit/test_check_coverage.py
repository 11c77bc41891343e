"""scripts/check_coverage.py: per-package line coverage gate over a `coverage json` report."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from devkit import functions

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_coverage.py"


@pytest.fixture
def check_coverage(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_coverage", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "check_coverage", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def report(**covered: tuple[int, int]) -> dict[str, Any]:
    """A coverage JSON report: package -> (covered lines, statements) of its index/validator file."""
    files = {
        f"{package}/{'key_validation' if package == 'lambda_common' else 'index'}.py": {
            "summary": {"covered_lines": lines, "num_statements": statements, "percent_covered": 0.0}
        }
        for package, (lines, statements) in covered.items()
    }
    files["tests/unit/test_x.py"] = {"summary": {"covered_lines": 0, "num_statements": 50}}
    return {"meta": {}, "files": files}


def every(covered: int, statements: int) -> dict[str, tuple[int, int]]:
    """The same figures for every function folder and shared package (functions.json)."""
    return dict.fromkeys(functions.coverage_packages(), (covered, statements))


def run(check_coverage: ModuleType, tmp_path: Path, data: dict[str, Any]) -> int:
    path = tmp_path / "coverage.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return check_coverage.main([str(path)])


def test_passes_when_every_package_reaches_the_minimum(
    check_coverage: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = report(**{**every(99, 100), "lambda_trigger": (90, 100), "lambda_common": (10, 10)})

    assert run(check_coverage, tmp_path, data) == 0

    out = capsys.readouterr().out
    assert "lambda_trigger                 1         100      10    90.0%  ok" in out
    assert "coverage check passed" in out


def test_fails_naming_the_package_below_the_minimum(
    check_coverage: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = report(**{**every(100, 100), "lambda_writer": (89, 100)})

    assert run(check_coverage, tmp_path, data) == 1

    out = capsys.readouterr().out
    assert "BELOW MINIMUM" in out
    assert "coverage check FAILED: lambda_writer: 89.0% of lines covered, below 90%" in out


def test_fails_when_a_package_was_not_measured(
    check_coverage: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = report(**dict.fromkeys(functions.folders(), (100, 100)))  # no shared package

    assert run(check_coverage, tmp_path, data) == 1

    assert "lambda_common: no file measured" in capsys.readouterr().out


def test_absolute_paths_are_attributed_to_their_package(check_coverage: ModuleType) -> None:
    assert check_coverage.package_of("/work/main/lambda_writer/index.py") == "lambda_writer"
    assert check_coverage.package_of("tests/unit/lambda_writer.py") is None


@pytest.mark.parametrize(
    ("content", "message"), [(None, "does not exist"), ("{not json", "is not a coverage JSON")]
)
def test_an_unreadable_report_fails_clearly(
    check_coverage: ModuleType,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    message: str,
) -> None:
    path = tmp_path / "coverage.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    assert check_coverage.main([str(path)]) == 1
    assert message in capsys.readouterr().out
