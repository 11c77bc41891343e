"""Fixtures shared by the test suites.

Nothing here is autouse: the unit suite opts in (tests/unit/conftest.py), the emulator and e2e
suites are free to use real endpoints.

- ``aws_credentials``: fake credentials and region, no endpoint override (first, always).
- ``aws``: moto's in-process ``mock_aws``, started before any client is created.
- ``load_function``: loads one function folder's ``index.py`` in isolation (fresh import with its
  own environment; ``index``/``key_validation`` and the Powertools logger are forgotten afterwards).
- ``key_validation``: the shared validator module, imported the same way.
- ``lambda_context``: a small LambdaContext stand-in.
- ``alert_topic``: an SNS topic with an SQS queue subscribed, to read what was published.
"""

from __future__ import annotations

import importlib
import json
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
ISOLATED_MODULES = ("index", "key_validation")
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
METRICS_NAMESPACE = "IngestionPipelineTests"

# Every variable of the Terraform contract; the loader clears them so each test states its own.
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


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:test-function"
    memory_limit_in_mb: int = 128
    aws_request_id: str = "8f5a3c1e-0000-4000-8000-000000000001"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so that nothing can ever reach a real account."""
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


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


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
def load_function(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Return ``load(folder, **env)``: import ``<folder>/index.py`` with that environment.

    Clients are created at module load, so call it after creating the resources whose names the
    environment carries. The module (and ``key_validation``) is removed from ``sys.modules``
    afterwards, so no test depends on another's import.
    """
    loaded: list[ModuleType] = []

    def load(folder: str, **env: str) -> ModuleType:
        for name in CONTRACT_ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", f"test-{folder}")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
        monkeypatch.setenv("LOG_LEVEL", "INFO")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        _forget_isolated_modules()
        _forget_powertools_logger(f"test-{folder}")
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


@dataclass(frozen=True)
class SubscribedTopic:
    """An SNS topic with an SQS queue subscribed to it."""

    arn: str
    queue_url: str
    sqs: Any

    def received(self) -> list[dict[str, Any]]:
        """Every SNS envelope delivered so far (``Subject``, ``Message``, ...), oldest first."""
        envelopes: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = response.get("Messages", [])
            if not messages:
                return envelopes
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def alert_topic(aws: None) -> SubscribedTopic:
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic_arn = sns.create_topic(Name="pipeline-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alert-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return SubscribedTopic(arn=topic_arn, queue_url=queue_url, sqs=sqs)


def emitted_metrics(stdout: str) -> dict[str, float]:
    """Metric name -> value (summed) from the EMF lines that Powertools printed."""
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == METRICS_NAMESPACE
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


@pytest.fixture
def read_metrics(capsys: pytest.CaptureFixture[str]) -> Callable[[], dict[str, float]]:
    """Return a function that reads the EMF metrics printed since the last call."""
    return lambda: emitted_metrics(capsys.readouterr().out)
