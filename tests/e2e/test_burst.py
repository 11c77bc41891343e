"""The burst proof at scaled quotas: nothing is lost without an operator.

S3 -> upload queue -> trigger (event source mapping, partial batch responses) -> Step Functions.
Step Functions' StartExecution quota is a token bucket (AWS: 800 or 1,300 at once, refilled at 150
or 300 a second); here it is scaled down so that it, not the emulator, is the bottleneck: 20 at
once, refilled at 5 a second. Every notification is delivered twice (S3 is at-least-once) and one
write in ten fails transiently. The files must all become exactly one row each with no alert, an
empty dead-letter queue and a reconcile audit that finds nothing missing, without ``--redrive``.
A second scenario stops StartExecution completely for 60 s during an upload: the queue holds the
notifications and the files arrive once it recovers, again with no operator.

The EXPRESS profile gets the same burst with 120 files in test_burst_express.py.

One deployment per profile on the embedded emulator (only it has the fault modes and the token
bucket), with a mapping of 2 concurrent batches and up to 5 receives per message. Nothing here
asserts a time; ``make bench`` measures throughput and quota utilisation.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from devkit import backends, toolchain
from devkit.pipeline import Pipeline, wait_for
from devkit.stack import Stack
from emulator import Emulator
from scripts.reconcile import Clients, Summary, reconcile

pytestmark = pytest.mark.e2e

FILES = 500
OUTAGE_FILES = 100
OUTAGE_SECONDS = 60
UPLOAD_THREADS = 16
START_EXECUTION = "AWSStepFunctions.StartExecution"
PUT_ITEM = "DynamoDB_20120810.PutItem"
# The burst stack: a failed start comes back after 6 x 10 + 1 = 61 s; five receives before the
# dead-letter queue (AWS's default timeout gives 181 s); two batches at once, as small a mapping as
# Lambda allows; a write retried 6 times, so that 10 % transient faults never fail a file for good
# (0.1^7 per file).
BURST_VARIABLES = {
    "trigger_lambda_timeout": 10,
    "queue_max_receive_count": 5,
    "trigger_maximum_concurrency": 2,
    "retry_max_attempts": 6,
}


@dataclass
class BurstStack:
    pipeline: Pipeline
    emulator: Emulator

    def upload_all(self, keys: list[str]) -> None:
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(lambda key: self.pipeline.upload(key, f"{key}\n".encode()), keys))

    def executions_with_status(self, status: str) -> list[dict]:
        """Both profiles: ListExecutions (STANDARD) or the state machine's log group (EXPRESS)."""
        return [execution for execution in self.pipeline.executions() if execution["status"] == status]

    def settle(self, timeout: float = 900) -> None:
        """Until the queue is drained, no batch is being handled and no execution runs."""

        def settled() -> bool:
            return (
                self.emulator.wait_for_event_sources(timeout=5)
                and not any(self.pipeline.queue_depth().values())
                and self.executions_with_status("RUNNING") == []
            )

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

    def reconcile(self) -> Summary:
        clients = Clients.create(region=self.pipeline.region, endpoint_url=self.pipeline.endpoint)
        outputs = self.pipeline.outputs
        return reconcile(
            clients,
            outputs["s3_bucket_name"],
            outputs["dynamodb_table_name"],
            outputs["step_function_arn"],
            redrive=False,
        )

    def mapping_stats(self) -> dict:
        [stats] = [m for m in self.emulator.event_source_stats()["mappings"] if m["state"] == "Enabled"]
        return stats


def deployed_burst_stack(
    tmp_path_factory: pytest.TempPathFactory, label: str, variables: dict[str, object]
) -> Iterator[BurstStack]:
    provider = toolchain.providers()[-1].version
    backend = backends.Embedded(port=0, log_path=tmp_path_factory.mktemp(label) / "emulator.log")
    backend.start()
    stack = Stack.staged(backend.endpoint_url, provider, name=f"e2e-{label}")
    try:
        outputs = stack.deploy(variables)
        pipeline = backend.pipeline(outputs)
        pipeline.subscribe_alerts("burst-alerts")
        yield BurstStack(pipeline, backend.running)
        stack.destroy(timeout=600)
        assert not stack.has_state()
    finally:
        stack.remove_overrides()
        backend.stop()


@pytest.fixture(scope="module")
def burst_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurstStack]:
    yield from deployed_burst_stack(tmp_path_factory, "burst", BURST_VARIABLES)


def burst(stack: BurstStack, files: int, prefix: str) -> dict[str, int]:
    """Upload ``files`` files at once with every notification delivered twice, one write in ten
    failing at first and StartExecution throttled to 20 at once / 5 a second; wait until it settled.
    Returns what the faults and the mapping counted."""
    emulator = stack.emulator
    keys = [f"{prefix}/{i:04d}.csv" for i in range(files)]
    emulator.evaluate_alarms()  # a new alarm's first check (INSUFFICIENT_DATA -> OK) notifies: not the burst's
    stack.pipeline.alerts(wait_seconds=1)
    before = stack.mapping_stats()
    emulator.set_notification_copies(2)  # S3 is at-least-once
    emulator.add_fault(PUT_ITEM, probability=0.1, seed=9, error_code="ProvisionedThroughputExceededException")
    emulator.set_throttle(START_EXECUTION, capacity=20, refill_per_second=5)
    try:
        stack.upload_all(keys)
        stack.settle()
        [fault] = emulator.list_faults()
        [throttle] = emulator.faults.list_throttles()
    finally:
        emulator.clear_faults()
        emulator.clear_throttles()
        emulator.set_notification_copies(1)
    after = stack.mapping_stats()
    return {
        "received": after["messages_received"] - before["messages_received"],
        "reported_failed": after["messages_reported_failed"] - before["messages_reported_failed"],
        "write_faults": fault["hits"],
        "throttled": throttle["throttled"],
    }


def test_a_throttled_burst_with_duplicates_and_faults_becomes_one_row_per_file_without_an_operator(
    burst_stack: BurstStack, record_property: Callable[[str, object], None]
) -> None:
    pipeline = burst_stack.pipeline
    keys = [f"burst/{i:04d}.csv" for i in range(FILES)]

    counted = burst(burst_stack, FILES, "burst")

    assert counted["received"] >= 2 * FILES, "every notification was delivered (and received) twice"
    assert counted["write_faults"] >= FILES * 0.05, "about one write in ten failed at first"
    assert counted["throttled"] > 0, "StartExecution was throttled: the quota was the bottleneck"

    rows = burst_stack.rows_by_key("burst/")
    assert sorted(rows) == sorted(keys), "every file has a row"
    assert set(rows.values()) == {1}, "no file has two"
    assert burst_stack.executions_with_status("FAILED") == []
    assert pipeline.alerts(wait_seconds=2) == [], "no alert of any kind: nothing needed a human"
    assert pipeline.dead_letters() == []
    audit = burst_stack.reconcile()
    assert (audit.missing, audit.in_flight, audit.ingested) == (0, 0, FILES)
    record_property("throttled_starts", counted["throttled"])
    record_property("messages_reported_failed", counted["reported_failed"])
    record_property("receives_per_message", round(counted["received"] / (2 * FILES), 2))


def test_a_minute_without_start_execution_delays_the_files_and_loses_none(burst_stack: BurstStack) -> None:
    emulator, pipeline = burst_stack.emulator, burst_stack.pipeline
    pipeline.alerts(wait_seconds=0)
    keys = [f"outage/{i:03d}.csv" for i in range(OUTAGE_FILES)]
    emulator.add_fault(
        START_EXECUTION, error_code="ServiceUnavailable", message="injected: Step Functions is down"
    )
    try:
        burst_stack.upload_all(keys)
        wait_for(
            "every notification to have been tried and failed at least once",
            lambda: emulator.list_faults()[0]["hits"] >= OUTAGE_FILES,
            timeout=OUTAGE_SECONDS,
            interval=0.5,
        )
        assert burst_stack.rows_by_key("outage/") == Counter()
        time.sleep(max(0.0, OUTAGE_SECONDS - 1))  # the outage lasts a minute from its first failure
    finally:
        emulator.clear_faults()
    burst_stack.settle()

    rows = burst_stack.rows_by_key("outage/")
    assert sorted(rows) == sorted(keys)
    assert set(rows.values()) == {1}
    assert pipeline.alerts(wait_seconds=2) == []
    assert pipeline.dead_letters() == []
    audit = burst_stack.reconcile()
    assert (audit.missing, audit.in_flight) == (0, 0)
