"""Fixtures for the benchmarks: thin wrappers over ``devkit/lambda_harness.py``.

The Lambda-loading harness is shared with the unit tests' fixtures (``tests/conftest.py``) through
``devkit``; nothing is imported from ``tests/``. Run with ``make bench``. ``make test`` never
collects this folder (pyproject's ``testpaths`` is ``tests``). Nothing here is autouse.

- ``aws``: fake credentials, then moto's in-process ``mock_aws``; yields a :class:`MockedAws`
  whose ``client(service)`` makes clients in the benchmark region.
- ``load_function``: ``load(folder, **env)`` imports ``<folder>/index.py`` the way Lambda does
  (module ``index``, importing only what its zip holds), with exactly the environment given;
  ``index``, the folder's layer packages, ``lambda_common`` and the Powertools logger are
  forgotten afterwards.
- ``key_validation``: the shared validator, ``lambda_common.key_validation``, freshly imported.
- ``lambda_context``: a small LambdaContext stand-in.
- ``per_unit``: records a batch benchmark's cost per key / record / resource.
- ``note``: a line for the end of the session (e.g. the monitor's concurrent/serial ratio).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devkit.lambda_harness import (
    FakeLambdaContext,
    FunctionLoader,
    forget_isolated_modules,
    import_shared,
    use_fake_credentials,
)

REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"  # moto's default account
METRICS_NAMESPACE = "IngestionPipelineBenchmarks"


@dataclass(frozen=True)
class MockedAws:
    """moto's in-process AWS, in one region of moto's default account."""

    region: str = REGION
    account_id: str = ACCOUNT_ID

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(
        function_name="bench-function",
        region=REGION,
        account_id=ACCOUNT_ID,
        aws_request_id="8f5a3c1e-0000-4000-8000-00000000be4c",
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockedAws]:
    """Fake credentials (nothing can reach a real account), then ``mock_aws`` for the benchmark."""
    use_fake_credentials(monkeypatch, REGION)
    with mock_aws():
        yield MockedAws()


@pytest.fixture
def load_function(aws: MockedAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Return ``load(folder, **env)``: import ``<folder>/index.py`` with that environment.

    Clients are created at module load, so call it after creating the resources its environment
    names. Logging is at INFO, as deployed, so the measured cost includes the handler's log lines.
    """
    loader = FunctionLoader(monkeypatch, service_prefix="bench", metrics_namespace=METRICS_NAMESPACE)
    yield loader.load
    loader.close()


@pytest.fixture
def key_validation(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The shared validator, ``lambda_common.key_validation``, freshly imported."""
    yield import_shared(monkeypatch, "key_validation")
    forget_isolated_modules()


# --- per-unit cost ------------------------------------------------------------------------------

_PER_UNIT_COSTS: list[tuple[str, int, str, dict[str, float]]] = []
_PER_UNIT_STATISTICS = ("min", "median", "mean")


@pytest.fixture
def per_unit(benchmark: Any, request: pytest.FixtureRequest) -> Callable[[int, str], None]:
    """Return ``record(count, unit)``: after the benchmark ran, note its cost per ``unit``.

    A benchmark that handles ``count`` keys (records, ...) per call stores ``<unit>s_per_call`` and
    ``<statistic>_per_<unit>_us`` in its ``extra_info`` (kept by --benchmark-autosave/-json), and
    the costs are listed at the end of the session.
    """

    def record(count: int, unit: str) -> None:
        if benchmark.stats is None:  # --benchmark-disable: nothing was measured
            return
        stats = benchmark.stats.stats
        per_unit_us = {name: getattr(stats, name) / count * 1e6 for name in _PER_UNIT_STATISTICS}
        benchmark.extra_info[f"{unit}s_per_call"] = count
        for name, value in per_unit_us.items():
            benchmark.extra_info[f"{name}_per_{unit}_us"] = round(value, 3)
        _PER_UNIT_COSTS.append((request.node.name, count, unit, per_unit_us))

    return record


_NOTES: list[str] = []


@pytest.fixture
def note() -> Callable[[str], None]:
    """Return ``note(line)``: print the line at the end of the session, under "notes"."""
    return _NOTES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _NOTES:
        terminalreporter.write_sep("-", "notes")
        for line in _NOTES:
            terminalreporter.write_line(line)
    if not _PER_UNIT_COSTS:
        return
    terminalreporter.write_sep("-", "cost per unit (a call's time / units handled per call), in us")
    width = max(len(name) for name, *_ in _PER_UNIT_COSTS)
    header = "".join(f"{name:>12}" for name in _PER_UNIT_STATISTICS)
    terminalreporter.write_line(f"{'':<{width}}  {header}")
    for name, count, unit, per_unit_us in _PER_UNIT_COSTS:
        values = "".join(f"{per_unit_us[statistic]:>12.1f}" for statistic in _PER_UNIT_STATISTICS)
        terminalreporter.write_line(f"{name:<{width}}  {values}   per {unit} ({count} per call)")
