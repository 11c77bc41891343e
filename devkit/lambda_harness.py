"""Load a function folder's ``index.py`` in-process, the way Lambda imports it.

Shared by the fixtures of the unit tests (``tests/conftest.py``) and of the benchmarks
(``benchmarks/conftest.py``), which are thin wrappers over it. Nothing here imports pytest: the
environment and ``sys.path`` are changed through a ``monkeypatch`` (anything with pytest's
``MonkeyPatch`` methods ``setenv``/``delenv``/``syspath_prepend``), which undoes those changes.

- :class:`FunctionLoader`: ``load(folder, **env)`` imports ``<folder>/index.py`` as module
  ``index`` with ``lambda_common`` on the path (the files the packager copies to the zip root),
  with exactly the environment given; ``close()`` forgets what was loaded.
- :func:`import_shared`: a ``lambda_common`` module, imported freshly the way the handlers do.
- :func:`use_fake_credentials`: fake credentials and region, so nothing can reach a real account.
- :class:`FakeLambdaContext`: a small LambdaContext stand-in.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Protocol

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
COMMON_DIR: Final = REPO_ROOT / "lambda_common"
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account

ISOLATED_MODULES: Final = ("index", "key_validation", "alerts")
"""Top-level modules of a function zip: forgotten before and after each load, so that no load
depends on another's import (every folder's handler is module ``index``)."""

CONTRACT_ENV_VARS: Final = (
    "STATE_MACHINE_ARN",
    "ALERT_TOPIC_ARN",
    "TABLE_NAME",
    "SCAN_REGIONS",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
)
"""Every variable of the Terraform contract; the loader clears them so each caller states its own."""

POWERTOOLS_LOGGER_ATTRIBUTES: Final = (
    "init",
    "powertools_handler",
    "powertools_buffer_config",
    "powertools_buffer_cache",
)
"""What a Powertools ``Logger`` leaves on the standard logger of its service."""

_CREDENTIAL_VARS_TO_CLEAR: Final = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


class MonkeyPatch(Protocol):
    """The part of ``pytest.MonkeyPatch`` used here (each change is undone by its owner)."""

    def setenv(self, name: str, value: str) -> None: ...

    def delenv(self, name: str, raising: bool = ...) -> None: ...

    def syspath_prepend(self, path: str | os.PathLike[str]) -> None: ...


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of a LambdaContext that the handlers and Powertools read."""

    function_name: str = "test-function"
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "8f5a3c1e-0000-4000-8000-000000000001"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def use_fake_credentials(monkeypatch: MonkeyPatch, region: str) -> None:
    """Fake credentials and ``region``, and no profile, endpoint or config file from the caller."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)
    for name in _CREDENTIAL_VARS_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)


def forget_isolated_modules() -> None:
    """Remove the zip-root modules (:data:`ISOLATED_MODULES`) from ``sys.modules``."""
    for name in ISOLATED_MODULES:
        sys.modules.pop(name, None)


def forget_powertools_logger(service: str) -> None:
    """Let the next load configure a fresh Powertools logger (its handler binds sys.stdout)."""
    std_logger = logging.getLogger(service)
    for handler in list(std_logger.handlers):
        std_logger.removeHandler(handler)
    for attribute in POWERTOOLS_LOGGER_ATTRIBUTES:
        std_logger.__dict__.pop(attribute, None)


def import_shared(monkeypatch: MonkeyPatch, name: str) -> ModuleType:
    """Import ``lambda_common/<name>.py`` freshly, as the handlers import it (from the zip root).

    Call :func:`forget_isolated_modules` when done with it.
    """
    forget_isolated_modules()
    monkeypatch.syspath_prepend(str(COMMON_DIR))
    return importlib.import_module(name)


class FunctionLoader:
    """Imports function folders' ``index.py``, each with its own environment.

    Each function's Powertools service is ``<service_prefix>-<folder>`` and its metrics go to
    ``metrics_namespace``; logging is at ``log_level`` (INFO, as deployed). Clients are created at
    module load, so load after creating the resources whose names the environment carries.
    """

    def __init__(
        self, monkeypatch: MonkeyPatch, service_prefix: str, metrics_namespace: str, log_level: str = "INFO"
    ) -> None:
        self._monkeypatch = monkeypatch
        self.service_prefix = service_prefix
        self.metrics_namespace = metrics_namespace
        self.log_level = log_level
        self._loaded: list[ModuleType] = []

    def load(self, folder: str, **env: str) -> ModuleType:
        """Import ``<folder>/index.py`` with the contract variables cleared, then ``env`` set."""
        monkeypatch = self._monkeypatch
        for name in CONTRACT_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        service = f"{self.service_prefix}-{folder}"
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", self.metrics_namespace)
        monkeypatch.setenv("LOG_LEVEL", self.log_level)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        forget_isolated_modules()
        forget_powertools_logger(service)
        monkeypatch.syspath_prepend(str(COMMON_DIR))
        monkeypatch.syspath_prepend(str(REPO_ROOT / folder))
        module = importlib.import_module("index")
        self._loaded.append(module)
        return module

    def close(self) -> None:
        """Clear the loaded functions' pending metrics and loggers, and forget their modules."""
        for module in self._loaded:
            module.metrics.clear_metrics()
            forget_powertools_logger(module.logger.service)
        self._loaded.clear()
        forget_isolated_modules()


# The metadata table's key schema, as dynamodb.tf declares it (tests/test_terraform_static.py
# checks that the two agree), so handler tests exercise the deployed table's semantics.
METADATA_TABLE_KEYS = (("Filename", "HASH"), ("UploadTimestamp", "RANGE"))


def create_metadata_table(dynamodb: Any, name: str) -> None:
    """Create the writer's table in moto with the deployed key schema (both keys strings)."""
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in METADATA_TABLE_KEYS],
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in METADATA_TABLE_KEYS],
        BillingMode="PAY_PER_REQUEST",
    )


def metadata_item(dynamodb: Any, table: str, filename: str, upload_timestamp: str) -> dict[str, Any] | None:
    """The stored row for one upload, or None."""
    key = {"Filename": {"S": filename}, "UploadTimestamp": {"S": upload_timestamp}}
    return dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
