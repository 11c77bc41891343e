"""Load a function folder's ``index.py`` in-process, the way Lambda imports it.

Shared by the fixtures of the unit tests (``tests/conftest.py``) and of the benchmarks
(``benchmarks/conftest.py``), which are thin wrappers over it. Nothing here imports pytest: the
environment and ``sys.path`` are changed through a ``monkeypatch`` (anything with pytest's
``MonkeyPatch`` methods ``setenv``/``delenv``/``syspath_prepend``), which undoes those changes.

- :class:`FunctionLoader`: ``load(folder, **env)`` imports ``<folder>/index.py`` as module
  ``index``, with exactly the environment given, and lets the function's code import only what
  its zip holds (:class:`ZipImportGuard`); ``close()`` forgets what was loaded.
- :class:`ZipImportGuard`: while installed, an import made by a function's own code (its folder,
  ``lambda_common``) of anything a zip would not contain raises ``ModuleNotFoundError``.
- :func:`import_shared`: a ``lambda_common`` module, imported freshly the way the handlers do.
- :func:`use_fake_credentials`: fake credentials and region, so nothing can reach a real account.
- :class:`FakeLambdaContext`: a small LambdaContext stand-in (its remaining time is settable).
- :func:`sqs_event`, :func:`sqs_record`: a batch of queue messages as Lambda's SQS event source
  mapping delivers it (the trigger reads its S3 notifications from the upload queue).
"""

from __future__ import annotations

import builtins
import functools
import importlib
import importlib.metadata
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Protocol

from devkit import functions

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
COMMON_DIR: Final = REPO_ROOT / "lambda_common"
COMMON_PACKAGE: Final = "lambda_common"
LAMBDA_REQUIREMENTS: Final = REPO_ROOT / "requirements-lambda.txt"
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT_ID: Final = "123456789012"  # moto's default account

LAMBDA_RUNTIME_DISTRIBUTIONS: Final = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "urllib3",
    "six",
)
"""What AWS's Python runtime provides beside the standard library: boto3 and its dependencies.
Everything else a function imports must be in its zip (requirements-lambda.txt, bundled)."""


def folder_modules(function_dir: Path) -> frozenset[str]:
    """The top-level modules a function folder puts at its zip's root: its ``.py`` files and its
    packages (the trigger's ``trigger``, the monitor's ``security_monitor``, ``index``)."""
    names = {path.stem for path in function_dir.glob("*.py")}
    names |= {path.parent.name for path in function_dir.glob("*/__init__.py")}
    return frozenset(names)


ISOLATED_MODULES: Final = tuple(
    sorted(
        {"index", COMMON_PACKAGE}.union(
            *(folder_modules(REPO_ROOT / folder) for folder in functions.folders())
        )
    )
)
"""Top-level modules of the function zips (with their submodules): forgotten before and after each
load, so that no load depends on another's import (every folder's handler is module ``index``, and
a folder's layers are imported afresh with it)."""

CONTRACT_ENV_VARS: Final = (
    "STATE_MACHINE_ARN",
    "WORKFLOW_TYPE",
    "ALERT_TOPIC_ARN",
    "UPLOAD_BUCKET",
    "TABLE_NAME",
    "SCAN_REGIONS",
    "SCAN_CONCURRENCY",
    "EXEMPTION_TAG_KEY",
    "SECURITY_SCAN_EXEMPTIONS",
    "DEADLINE_MARGIN_MS",
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

    def setattr(self, target: object, name: str, value: object) -> None: ...


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes of a LambdaContext that the handlers and Powertools read.

    ``get_remaining_time_in_millis()`` answers ``remaining_time_in_millis``; a test that needs the
    time to run out part-way subclasses it.
    """

    function_name: str = "test-function"
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "8f5a3c1e-0000-4000-8000-000000000001"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"
    remaining_time_in_millis: int = 30_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_time_in_millis


UPLOAD_QUEUE_ARN: Final = f"arn:aws:sqs:{DEFAULT_REGION}:{DEFAULT_ACCOUNT_ID}:ingestion-uploads"


def sqs_record(
    body: object, message_id: str, *, queue_arn: str = UPLOAD_QUEUE_ARN, receive_count: int = 1
) -> dict[str, Any]:
    """One queue message as the SQS event source mapping delivers it; a ``body`` that is not a
    string is sent as its JSON text (an S3 notification, as S3 writes it to the queue)."""
    region = queue_arn.split(":")[3]
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1768472430123",
            "SenderId": "AIDAJHIPRHEMV73VRJEBU",
            "ApproximateFirstReceiveTimestamp": "1768472430200",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sqs_event(*bodies: object, queue_arn: str = UPLOAD_QUEUE_ARN) -> dict[str, Any]:
    """A batch of one queue message per body, with message ids ``message-0``, ``message-1``..."""
    return {
        "Records": [
            sqs_record(body, f"message-{index}", queue_arn=queue_arn) for index, body in enumerate(bodies)
        ]
    }


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


def forget_isolated_modules(extra: Iterable[str] = ()) -> None:
    """Remove the zip-root modules (:data:`ISOLATED_MODULES` and ``extra``, with submodules) from
    ``sys.modules``."""
    forgotten = set(ISOLATED_MODULES).union(extra)
    for name in list(sys.modules):
        if name.partition(".")[0] in forgotten:
            del sys.modules[name]


def _distribution_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: Path) -> tuple[str, ...]:
    """The distribution names pinned in a requirements file (comments and options skipped)."""
    names = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s\[<>=!~;@]", line, maxsplit=1)[0])
    return tuple(names)


def top_level_modules(distributions: Iterable[str]) -> frozenset[str]:
    """The top-level import names that the installed ``distributions`` provide."""
    wanted = {_distribution_key(name) for name in distributions}
    return frozenset(
        module
        for module, providers in importlib.metadata.packages_distributions().items()
        if any(_distribution_key(provider) in wanted for provider in providers)
    )


@functools.cache
def zip_library_modules() -> frozenset[str]:
    """What a function may import beside its own code: the standard library, the libraries that
    requirements-lambda.txt bundles into every zip, and the Lambda runtime's boto3."""
    bundled = requirement_names(LAMBDA_REQUIREMENTS)
    return frozenset(sys.stdlib_module_names) | top_level_modules((*bundled, *LAMBDA_RUNTIME_DISTRIBUTIONS))


def folder_modules(folder: Path) -> frozenset[str]:
    """The top-level modules a function folder puts at its zip's root (files and packages)."""
    return frozenset(
        path.stem if path.is_file() else path.name
        for path in folder.iterdir()
        if (path.is_file() and path.suffix == ".py") or (path.is_dir() and path.name != "__pycache__")
    )


ImportFunction = Callable[..., ModuleType]


class ZipImportGuard:
    """Refuses, while installed, the imports a function's zip could not satisfy.

    An ``import`` statement executed by a function's own code (a module under one of its folders
    or under ``lambda_common/``) may only name a top-level module that the zip or the Lambda
    runtime provides: :func:`zip_library_modules`, ``lambda_common`` and the function folder's own
    modules. Anything else (``devkit``, ``moto``, another function's folder, a flat ``alerts``)
    raises ``ModuleNotFoundError`` even when the test process could import it. Imports made by
    libraries are not checked: the zip bundles each library whole.
    """

    def __init__(self, library_modules: frozenset[str] | None = None) -> None:
        library = zip_library_modules() if library_modules is None else library_modules
        self._allowed: set[str] = {*library, COMMON_PACKAGE}
        self._code_dirs: list[str] = [str(COMMON_DIR) + os.sep]
        self._original: ImportFunction | None = None

    def add_function(self, folder: Path) -> None:
        """Treat the modules under ``folder`` as function code, and its modules as importable."""
        self._code_dirs.append(str(folder.resolve()) + os.sep)
        self._allowed.update(folder_modules(folder))

    def install(self, monkeypatch: MonkeyPatch) -> None:
        """Wrap ``builtins.__import__`` (once); ``monkeypatch`` restores it on undo."""
        if self._original is None:
            self._original = builtins.__import__
            monkeypatch.setattr(builtins, "__import__", self._import)

    def is_function_code(self, filename: object) -> bool:
        return isinstance(filename, str) and filename.startswith(tuple(self._code_dirs))

    def check(self, name: str, importer_globals: Mapping[str, Any] | None, level: int) -> None:
        """Raise ``ModuleNotFoundError`` when function code imports what its zip lacks."""
        if level or importer_globals is None or not self.is_function_code(importer_globals.get("__file__")):
            return
        top = name.partition(".")[0]
        if top not in self._allowed:
            raise ModuleNotFoundError(
                f"No module named {top!r} in a function zip (imported by "
                f"{importer_globals.get('__name__')}): a zip holds its function folder, "
                f"{COMMON_PACKAGE}/ and requirements-lambda.txt; the runtime adds boto3",
                name=top,
            )

    def _import(
        self,
        name: str,
        globals: Mapping[str, Any] | None = None,  # builtins.__import__'s parameter names
        locals: Mapping[str, Any] | None = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> ModuleType:
        self.check(name, globals, level)
        original = self._original or builtins.__import__
        return original(name, globals, locals, fromlist, level)


def forget_powertools_logger(service: str) -> None:
    """Let the next load configure a fresh Powertools logger (its handler binds sys.stdout)."""
    std_logger = logging.getLogger(service)
    for handler in list(std_logger.handlers):
        std_logger.removeHandler(handler)
    for attribute in POWERTOOLS_LOGGER_ATTRIBUTES:
        std_logger.__dict__.pop(attribute, None)


def import_shared(monkeypatch: MonkeyPatch, name: str) -> ModuleType:
    """Import ``lambda_common.<name>`` freshly, as the handlers import it.

    Call :func:`forget_isolated_modules` when done with it.
    """
    forget_isolated_modules()
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return importlib.import_module(f"{COMMON_PACKAGE}.{name}")


class FunctionLoader:
    """Imports function folders' ``index.py``, each with its own environment.

    Each function's Powertools service is ``<service_prefix>-<folder>`` and its metrics go to
    ``metrics_namespace``; logging is at ``log_level`` (INFO, as deployed). Clients are created at
    module load, so load after creating the resources whose names the environment carries.

    What the function can import is what its zip holds: its folder comes first on ``sys.path``,
    ``lambda_common`` is found at the repository root as the package it is in the zip, and a
    :class:`ZipImportGuard` refuses anything else that the test process happens to have.
    ``functions_root`` is where the function folders are (the repository; a test may point it at
    a folder of its own).
    """

    def __init__(
        self,
        monkeypatch: MonkeyPatch,
        service_prefix: str,
        metrics_namespace: str,
        log_level: str = "INFO",
        *,
        functions_root: Path = REPO_ROOT,
    ) -> None:
        self._monkeypatch = monkeypatch
        self.service_prefix = service_prefix
        self.metrics_namespace = metrics_namespace
        self.log_level = log_level
        self.functions_root = functions_root
        self._guard = ZipImportGuard()
        self._loaded: list[ModuleType] = []
        self._modules: frozenset[str] = frozenset()  # zip-root modules of the folders loaded

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
        function_dir = self.functions_root / folder
        self._modules |= folder_modules(function_dir)
        forget_isolated_modules(self._modules)
        forget_powertools_logger(service)
        self._guard.add_function(function_dir)
        self._guard.install(monkeypatch)
        monkeypatch.syspath_prepend(str(REPO_ROOT))  # where lambda_common is, as at a zip's root
        monkeypatch.syspath_prepend(str(function_dir))
        module = importlib.import_module("index")
        self._loaded.append(module)
        return module

    def close(self) -> None:
        """Clear the loaded functions' pending metrics and loggers, and forget their modules."""
        for module in self._loaded:
            module.metrics.clear_metrics()
            forget_powertools_logger(module.logger.service)
        self._loaded.clear()
        forget_isolated_modules(self._modules)


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
