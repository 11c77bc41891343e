"""Fixtures for the benchmarks (self-contained: nothing is imported from tests/).

Run with ``make bench``. ``make test`` never collects this folder (pyproject's ``testpaths`` is
``tests``). Nothing here is autouse.

- ``aws``: fake credentials, then moto's in-process ``mock_aws``; yields a :class:`MockedAws`
  whose ``client(service)`` makes clients in the benchmark region.
- ``load_function``: ``load(folder, **env)`` imports ``<folder>/index.py`` the way Lambda does
  (module ``index`` with ``lambda_common`` on the path), with exactly the environment given;
  ``index``/``key_validation`` and the Powertools logger are forgotten afterwards.
- ``key_validation``: the shared validator, imported the way the handlers import it.
- ``lambda_context``: a small LambdaContext stand-in.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMON_DIR = REPO_ROOT / "lambda_common"
REGION = "eu-central-1"
ACCOUNT_ID = "123456789012"  # moto's default account
METRICS_NAMESPACE = "IngestionPipelineBenchmarks"
ISOLATED_MODULES = ("index", "key_validation")

# Every variable of the Terraform contract; the loader clears them so each benchmark states its own.
CONTRACT_ENV_VARS = (
    "STATE_MACHINE_ARN",
    "ALERT_TOPIC_ARN",
    "TABLE_NAME",
    "SCAN_REGIONS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
)
_POWERTOOLS_LOGGER_ATTRIBUTES = (
    "init",
    "powertools_handler",
    "powertools_buffer_config",
    "powertools_buffer_cache",
)


@dataclass(frozen=True)
class FakeLambdaContext:
    function_name: str = "bench-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:bench-function"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "8f5a3c1e-0000-4000-8000-00000000be4c"
    log_group_name: str = "/aws/lambda/bench-function"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass(frozen=True)
class MockedAws:
    """moto's in-process AWS, in one region of moto's default account."""

    region: str = REGION
    account_id: str = ACCOUNT_ID

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockedAws]:
    """Fake credentials (nothing can reach a real account), then ``mock_aws`` for the benchmark."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield MockedAws()


def _forget_isolated_modules() -> None:
    for name in ISOLATED_MODULES:
        sys.modules.pop(name, None)


def _forget_powertools_logger(service: str) -> None:
    """Let the next load configure a fresh Powertools logger (its handler binds sys.stdout)."""
    std_logger = logging.getLogger(service)
    for handler in list(std_logger.handlers):
        std_logger.removeHandler(handler)
    for attribute in _POWERTOOLS_LOGGER_ATTRIBUTES:
        std_logger.__dict__.pop(attribute, None)


@pytest.fixture
def load_function(aws: MockedAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Return ``load(folder, **env)``: import ``<folder>/index.py`` with that environment.

    Clients are created at module load, so call it after creating the resources its environment
    names. Logging is at INFO, as deployed, so the measured cost includes the handler's log lines.
    """
    loaded: list[ModuleType] = []

    def load(folder: str, **env: str) -> ModuleType:
        for name in CONTRACT_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        service = f"bench-{folder}"
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
        monkeypatch.setenv("LOG_LEVEL", "INFO")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        _forget_isolated_modules()
        _forget_powertools_logger(service)
        monkeypatch.syspath_prepend(str(COMMON_DIR))
        monkeypatch.syspath_prepend(str(REPO_ROOT / folder))
        module = importlib.import_module("index")
        loaded.append(module)
        return module

    yield load

    for module in loaded:
        module.metrics.clear_metrics()
        _forget_powertools_logger(module.logger.service)
    _forget_isolated_modules()


@pytest.fixture
def key_validation(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The shared validator, imported the way the handlers import it (from the zip root)."""
    _forget_isolated_modules()
    monkeypatch.syspath_prepend(str(COMMON_DIR))
    yield importlib.import_module("key_validation")
    _forget_isolated_modules()


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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _PER_UNIT_COSTS:
        return
    terminalreporter.write_sep("-", "cost per unit (a call's time / units handled per call), in us")
    width = max(len(name) for name, *_ in _PER_UNIT_COSTS)
    header = "".join(f"{name:>12}" for name in _PER_UNIT_STATISTICS)
    terminalreporter.write_line(f"{'':<{width}}  {header}")
    for name, count, unit, per_unit_us in _PER_UNIT_COSTS:
        values = "".join(f"{per_unit_us[statistic]:>12.1f}" for statistic in _PER_UNIT_STATISTICS)
        terminalreporter.write_line(f"{name:<{width}}  {values}   per {unit} ({count} per call)")
