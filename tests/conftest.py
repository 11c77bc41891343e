"""Fixtures shared by the test suites.

Nothing here is autouse: the unit suite opts in (tests/unit/conftest.py), the emulator and e2e
suites are free to use real endpoints. The Lambda-loading part is ``devkit/lambda_harness.py``,
shared with the benchmarks; the fixtures here are thin wrappers over it.

- ``aws_credentials``: fake credentials and region, no endpoint override (first, always).
- ``aws``: moto's in-process ``mock_aws``, started before any client is created.
- ``load_function``: loads one function folder's ``index.py`` in isolation (fresh import with its
  own environment, importing only what its zip holds; ``index``, the folder's layer packages,
  ``lambda_common`` and the Powertools logger are forgotten afterwards).
- ``key_validation``, ``alerts``, ``contract``: the shared ``lambda_common`` modules, imported the
  same way.
- ``lambda_context``: a small LambdaContext stand-in.
- ``alert_topic``: an SNS topic with an SQS queue subscribed, to read what was published.
"""

from __future__ import annotations

import json
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

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
METRICS_NAMESPACE = "IngestionPipelineTests"


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(function_name="test-function", region=REGION, account_id=ACCOUNT_ID)


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so that nothing can ever reach a real account."""
    use_fake_credentials(monkeypatch, REGION)


@pytest.fixture
def aws(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def load_function(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Return ``load(folder, **env)``: import ``<folder>/index.py`` with that environment.

    Clients are created at module load, so call it after creating the resources whose names the
    environment carries. The module (and ``lambda_common``) is removed from ``sys.modules``
    afterwards, so no test depends on another's import. An import the function's zip would not
    have raises ``ModuleNotFoundError``.
    """
    loader = FunctionLoader(monkeypatch, service_prefix="test", metrics_namespace=METRICS_NAMESPACE)
    yield loader.load
    loader.close()


@pytest.fixture
def key_validation(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The shared validator, ``lambda_common.key_validation``, freshly imported."""
    yield import_shared(monkeypatch, "key_validation")
    forget_isolated_modules()


@pytest.fixture
def alerts(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The shared alert formatting, ``lambda_common.alerts``, freshly imported."""
    yield import_shared(monkeypatch, "alerts")
    forget_isolated_modules()


@pytest.fixture
def contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The trigger -> writer contract, ``lambda_common.contract``, freshly imported."""
    yield import_shared(monkeypatch, "contract")
    forget_isolated_modules()


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


def deployment_scope(nodeid: str, targets: list[str]) -> str:
    """The unit of work of a test under ``make test``'s pytest-xdist workers: its module, and
    for an e2e module also its deployment target (the id of the ``deployed`` parameter, one of
    ``targets``), since each target deploys a stack of its own. Module-scoped fixtures (an
    emulator, a deployed stack) are then set up once per unit and units run side by side."""
    module, _, rest = nodeid.partition("::")
    if "/e2e/" in module and "[" in rest:
        params = rest[rest.index("[") + 1 : rest.rindex("]")]
        for target in sorted(targets, key=len, reverse=True):
            if target in params:
                return f"{module}::{target}"
    return module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadscope`` with :func:`deployment_scope` as the scope (``make test``, ``make e2e``).

    xdist's ``loadgroup`` would do with marks, but it tags node ids through ``item._nodeid``,
    which pytest 9 no longer reads: the groups are silently ignored (measured: a module's tests
    spread over both workers, two terraform applies in one directory).
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    from tests.e2e.conftest import ALL_TARGETS, target_id

    targets = [target_id(*target) for target in ALL_TARGETS]

    class DeploymentScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return deployment_scope(nodeid, targets)

    return DeploymentScheduling(config, log)
