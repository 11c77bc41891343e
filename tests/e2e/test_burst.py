"""The burst proof: 1,000 uploads at once, every notification delivered twice, 10 % of writes
failing transiently and StartExecution throttled, end as exactly 1,000 rows; events that exhaust
their retries reach the alert topic and the reconcile tool recovers them.

One deployment of its own on the embedded emulator (the newest provider): the burst's executions
would slow every other e2e test, which lists executions, and only the embedded emulator has the
fault modes. Nothing here asserts a time; ``make bench`` measures throughput.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote_plus

import pytest

from devkit import backends, toolchain
from devkit.pipeline import Alert, Pipeline, wait_for
from devkit.stack import Stack
from emulator import Emulator
from scripts.reconcile import Clients, Summary, reconcile

pytestmark = pytest.mark.e2e

FILES = 1000
UPLOAD_THREADS = 16
START_EXECUTION = "AWSStepFunctions.StartExecution"
PUT_ITEM = "DynamoDB_20120810.PutItem"
# A giving-up delivery's last DescribeExecution comes just before Lambda writes its on-failure record.
DECISION_SLACK = timedelta(seconds=2)


@dataclass
class BurstStack:
    pipeline: Pipeline
    emulator: Emulator

    def upload_all(self, keys: list[str]) -> None:
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(lambda key: self.pipeline.upload(key, f"{key}\n".encode()), keys))

    def running_executions(self) -> int:
        sfn = self.pipeline.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.pipeline.outputs["step_function_arn"], statusFilter="RUNNING"
        )
        return sum(len(page["executions"]) for page in pages)

    def executions_with_status(self, status: str) -> list[dict]:
        sfn = self.pipeline.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.pipeline.outputs["step_function_arn"], statusFilter=status
        )
        return [execution for page in pages for execution in page["executions"]]

    def settle(self, timeout: float = 600) -> None:
        """Until no asynchronous invocation is queued and no execution runs."""

        def settled() -> bool:
            return self.emulator.wait_for_async_invocations(timeout=5) and self.running_executions() == 0

        wait_for("the burst to settle", settled, timeout=timeout, interval=1)

    def rows_by_key(self, prefix: str) -> Counter[str]:
        dynamodb = self.pipeline.client("dynamodb")
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=self.pipeline.outputs["dynamodb_table_name"],
            ProjectionExpression="Filename",
            ConsistentRead=True,
        )
        return Counter(
            item["Filename"]["S"]
            for page in pages
            for item in page["Items"]
            if item["Filename"]["S"].startswith(prefix)
        )

    def reconcile(self, redrive: bool) -> Summary:
        clients = Clients.create(region=self.pipeline.region, endpoint_url=self.pipeline.endpoint)
        outputs = self.pipeline.outputs
        return reconcile(
            clients,
            outputs["s3_bucket_name"],
            outputs["dynamodb_table_name"],
            outputs["step_function_arn"],
            redrive=redrive,
        )


@pytest.fixture(scope="module")
def burst_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurstStack]:
    provider = toolchain.providers()[-1].version
    backend = backends.Embedded(
        port=0, log_path=tmp_path_factory.mktemp("burst") / "emulator.log", async_retry_delays=(0.5, 1.0)
    )
    backend.start()
    stack = Stack.staged(backend.endpoint_url, provider, name="e2e-burst")
    try:
        outputs = stack.deploy()
        pipeline = backend.pipeline(outputs)
        pipeline.subscribe_alerts("burst-alerts")
        yield BurstStack(pipeline, backend.running)
        stack.destroy(timeout=600)
        assert not stack.has_state()
    finally:
        stack.remove_overrides()
        backend.stop()


def undelivered_keys(alerts: list[Alert]) -> Counter[str]:
    """Keys named by the trigger's on-failure records (events that exhausted their retries)."""
    keys: Counter[str] = Counter()
    for alert in alerts:
        record = alert.json() or {}
        if "requestContext" not in record:
            continue
        for entry in record["requestPayload"]["Records"]:
            keys[unquote_plus(entry["s3"]["object"]["key"])] += 1
    return keys


def other_alerts(alerts: list[Alert]) -> list[str]:
    """Subjects of every alert that is not a trigger on-failure record: a rejected key ("Ingestion
    rejected ..."), an IngestionFailed, a security monitor summary."""
    return [alert.subject for alert in alerts if "requestContext" not in (alert.json() or {})]


def gave_up_by_key(alerts: list[Alert]) -> dict[str, datetime]:
    """When the last delivery of each key named by an on-failure record gave up (its timestamp)."""
    found: dict[str, datetime] = {}
    for alert in alerts:
        record = alert.json() or {}
        if "requestContext" not in record:
            continue
        at = datetime.fromisoformat(record["timestamp"])
        for entry in record["requestPayload"]["Records"]:
            key = unquote_plus(entry["s3"]["object"]["key"])
            found[key] = max(found.get(key, at), at)
    return found


def first_start_by_key(described: list[dict]) -> dict[str, datetime]:
    """When the first execution for each key started (described executions, input key)."""
    found: dict[str, datetime] = {}
    for execution in described:
        key = json.loads(execution["input"])["key"]
        found[key] = min(found.get(key, execution["startDate"]), execution["startDate"])
    return found


def ingestion_failures(alerts: list[Alert]) -> list[dict]:
    return [a.json() or {} for a in alerts if (a.json() or {}).get("alert") == "IngestionFailed"]


def test_a_burst_of_1000_uploads_with_duplicates_faults_and_throttling_becomes_1000_rows(
    burst_stack: BurstStack, record_property: Callable[[str, object], None]
) -> None:
    emulator, pipeline = burst_stack.emulator, burst_stack.pipeline
    keys = [f"burst/{i:04d}.csv" for i in range(FILES)]
    emulator.set_notification_copies(2)  # S3 is at-least-once
    emulator.add_fault(PUT_ITEM, probability=0.1, seed=9, error_code="ProvisionedThroughputExceededException")
    # Below what the warm trigger environments ask for even on a loaded machine (about 20 calls a
    # second with coverage on, 30 idle), with a small burst allowance: throttling must happen.
    emulator.set_throttle(START_EXECUTION, capacity=5, refill_per_second=15)
    try:
        burst_stack.upload_all(keys)
        burst_stack.settle()
        [fault] = emulator.list_faults()
        [throttle] = emulator.faults.list_throttles()
    finally:
        emulator.clear_faults()
        emulator.clear_throttles()
        emulator.set_notification_copies(1)
    deliveries = [c for c in emulator.lambda_stats()["async_completed"] if c["source"] == "s3"]
    assert len(deliveries) >= 2 * FILES, "every notification was delivered twice"
    assert fault["hits"] >= FILES * 0.05, "about one write in ten failed at first"
    assert throttle["throttled"] > 0, "StartExecution was throttled"

    alerts = pipeline.alerts(wait_seconds=2)
    rows = burst_stack.rows_by_key("burst/")
    missing = set(keys) - set(rows)
    assert [key for key, count in rows.items() if count != 1] == [], "no duplicate row"
    assert burst_stack.executions_with_status("FAILED") == []
    assert ingestion_failures(alerts) == []  # transient write faults were retried, none failed for good
    # An alert only for deliveries that really failed, and none of any other kind (no key
    # rejected, no write failed for good). Every file whose deliveries all gave up is alerted (none
    # is lost silently). A delivery that gave up while no execution existed for its object version
    # is alerted even if its duplicate started the execution afterwards (S3 is at-least-once; no
    # delivery can know another will still come): then the execution must have started after that
    # delivery gave up, or the trigger would have seen it (DescribeExecution) and not failed.
    alerted = undelivered_keys(alerts)
    assert missing <= set(alerted), "a file none of whose deliveries started it was not alerted"
    assert other_alerts(alerts) == []
    ingested_later = set(alerted) - missing
    if ingested_later:
        started = first_start_by_key(pipeline.executions_for("burst/", prefix=True))
        gave_up = gave_up_by_key(alerts)
        assert {k for k in ingested_later if started[k] < gave_up[k] - DECISION_SLACK} == set(), (
            "alerted although its execution had already started when the delivery gave up"
        )
    record_property("alerted_then_ingested_by_a_duplicate", len(ingested_later))

    record_property("throttled_starts", throttle["throttled"])
    record_property("files_that_exhausted_their_retries", len(missing))
    if missing:  # the operator's recovery path (the next test forces it)
        summary = burst_stack.reconcile(redrive=True)
        assert (summary.missing, summary.redriven) == (len(missing), len(missing))
        burst_stack.settle()
    rows = burst_stack.rows_by_key("burst/")
    assert sorted(rows) == sorted(keys)
    assert set(rows.values()) == {1}
    assert burst_stack.executions_with_status("FAILED") == []
    final = burst_stack.reconcile(redrive=True)
    assert (final.missing, final.redriven, final.in_flight) == (0, 0, 0)
    assert final.ingested == FILES


def test_events_that_exhaust_their_retries_are_alerted_and_reconcile_recovers_them(
    burst_stack: BurstStack,
) -> None:
    emulator, pipeline = burst_stack.emulator, burst_stack.pipeline
    pipeline.alerts(wait_seconds=0)
    keys = [f"throttled/{i:02d}.csv" for i in range(8)]  # one wave of the asynchronous workers
    emulator.set_throttle(START_EXECUTION, capacity=1, refill_per_second=0.001)
    try:
        burst_stack.upload_all(keys)
        burst_stack.settle()
    finally:
        emulator.clear_throttles()

    rows = burst_stack.rows_by_key("throttled/")
    missing = set(keys) - set(rows)
    drained = pipeline.wait_for_alerts(lambda a: "requestContext" in a.message, len(missing))
    alerted = undelivered_keys(drained)
    assert len(missing) >= len(keys) - 1, "one token for eight uploads: the rest exhausted their retries"
    assert alerted == Counter(dict.fromkeys(missing, 1)), "each lost file reached the alert topic once"
    assert other_alerts(drained) == []
    assert pipeline.alerts(wait_seconds=1) == []  # no more, of any kind

    before = burst_stack.reconcile(redrive=False)
    assert before.missing >= len(missing)
    assert before.exit_status == 1
    recovered = burst_stack.reconcile(redrive=True)
    assert recovered.redriven == recovered.missing
    assert recovered.exit_status == 0
    burst_stack.settle()

    rows = burst_stack.rows_by_key("throttled/")
    assert sorted(rows) == sorted(keys)
    assert set(rows.values()) == {1}
    again = burst_stack.reconcile(redrive=True)
    assert (again.missing, again.redriven) == (0, 0)
    assert again.exit_status == 0
