"""S3 -> SQS -> Lambda as AWS runs it: queue notifications, and event source mappings polled in the
background (batching window, concurrency, ReportBatchItemFailures, redrive to the DLQ).

A consumer function decides per message (its body's ``mode``) what to do and sends what it saw to a
capture queue, so the tests read the exact events Lambda delivered.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import drain_queue, make_queue

from emulator import AdminClient, Emulator

pytestmark = pytest.mark.emulator

CONSUMER = """
import json
import os
import time

import boto3
from botocore.config import Config

SQS = boto3.client("sqs")
SFN = boto3.client("stepfunctions", config=Config(retries={"total_max_attempts": 1}))
ANSWERS = {
    "empty-id": {"batchItemFailures": [{"itemIdentifier": ""}]},
    "null-id": {"batchItemFailures": [{"itemIdentifier": None}]},
    "unknown-id": {"batchItemFailures": [{"itemIdentifier": "no-such-message"}]},
    "misnamed": {"batchItemFailures": [{"itemId": "x"}]},
    "text": "done",
}


def handler(event, context):
    started = time.time()
    failures, answer = [], None
    for record in event["Records"]:
        body = json.loads(record["body"]) if record["body"].startswith("{") else {}
        mode = body.get("mode", "ok")
        if mode == "sleep":
            time.sleep(body["seconds"])
        elif mode == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
        elif mode == "start":
            try:
                SFN.start_execution(stateMachineArn=body["machine"], input="{}")
            except SFN.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "ThrottlingException":
                    raise
                failures.append({"itemIdentifier": record["messageId"]})
        elif mode in ANSWERS:
            answer = ANSWERS[mode]
    seen = {"started": started, "ended": time.time(), "event": event}
    SQS.send_message(QueueUrl=os.environ["CAPTURE_URL"], MessageBody=json.dumps(seen))
    if any(json.loads(r["body"]).get("mode") == "raise" for r in event["Records"] if r["body"].startswith("{")):
        raise RuntimeError("the batch failed")
    return answer if answer is not None else {"batchItemFailures": failures}
"""


def wait_for(predicate: Callable[[], Any], timeout: float = 30, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or "condition not met in time")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def capture(aws_client: Callable[[str], Any]) -> tuple[str, str]:
    return make_queue(aws_client("sqs"), "consumer-capture")


@pytest.fixture(scope="module")
def consumer(make_function: Callable[..., str], capture: tuple[str, str]) -> str:
    return make_function(
        "sqs-consumer",
        {"index.py": CONSUMER},
        Timeout=30,
        Environment={"Variables": {"CAPTURE_URL": capture[0]}},
    )


@pytest.fixture
def captured(aws_client: Callable[[str], Any], capture: tuple[str, str]) -> Callable[[], list]:
    """The consumer's invocations (what it saw), read from the capture queue."""
    sqs = aws_client("sqs")
    seen: list[dict] = []

    def read() -> list[dict]:
        while True:
            batch = sqs.receive_message(QueueUrl=capture[0], MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return seen
            for message in batch:
                seen.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=capture[0], ReceiptHandle=message["ReceiptHandle"])

    read()  # what earlier tests left behind
    seen.clear()
    return read


class Pipe:
    """A queue with a dead-letter queue, mapped to the consumer."""

    def __init__(
        self, aws_client: Callable[[str], Any], name: str, max_receive: int = 2, visibility: int = 1
    ) -> None:
        self.sqs = aws_client("sqs")
        self.lam = aws_client("lambda")
        self.dlq_url, self.dlq_arn = make_queue(self.sqs, f"{name}-dlq")
        redrive = json.dumps({"deadLetterTargetArn": self.dlq_arn, "maxReceiveCount": max_receive})
        self.url = self.sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(visibility), "RedrivePolicy": redrive}
        )["QueueUrl"]
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.uuid = ""

    def map(self, function: str, **settings: Any) -> dict[str, Any]:
        mapping = self.lam.create_event_source_mapping(
            EventSourceArn=self.arn, FunctionName=function, **settings
        )
        self.uuid = mapping["UUID"]
        return dict(mapping)

    def send(self, *bodies: dict[str, Any]) -> None:
        entries = [{"Id": str(i), "MessageBody": json.dumps(body)} for i, body in enumerate(bodies)]
        for start in range(0, len(entries), 10):
            assert not self.sqs.send_message_batch(
                QueueUrl=self.url, Entries=entries[start : start + 10]
            ).get("Failed")

    def counts(self, url: str | None = None) -> tuple[int, int, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        names.append("ApproximateNumberOfMessagesDelayed")
        attributes = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)[
            "Attributes"
        ]
        return tuple(int(attributes[name]) for name in names)  # type: ignore[return-value]

    def dead_letters(self, expected: int) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in drain_queue(self.sqs, self.dlq_url, expected, timeout=5)]


def stats(emulator: Emulator, uuid: str) -> dict[str, Any]:
    [mapping] = [m for m in emulator.event_source_stats()["mappings"] if m["uuid"] == uuid]
    return dict(mapping)


def records(invocations: list[dict]) -> list[dict]:
    return [record for seen in invocations for record in seen["event"]["Records"]]


# ---------------------------------------------------------------------------- S3 -> SQS
def test_a_queue_notification_carries_the_s3_event_and_the_test_event_comes_first(
    aws_client: Callable[[str], Any], emulator: Emulator
) -> None:
    s3, sqs = aws_client("s3"), aws_client("sqs")
    url, arn = make_queue(sqs, "s3-events")
    s3.create_bucket(Bucket="queued-uploads")
    s3.put_bucket_versioning(Bucket="queued-uploads", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket="queued-uploads",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    [test_event] = [json.loads(m["Body"]) for m in drain_queue(sqs, url, expected=1, timeout=3)]
    assert test_event["Service"] == "Amazon S3"
    assert test_event["Event"] == "s3:TestEvent"
    assert test_event["Bucket"] == "queued-uploads"
    assert {"Time", "RequestId", "HostId"} <= set(test_event)

    version = s3.put_object(Bucket="queued-uploads", Key="in box/a+b.txt", Body=b"x")["VersionId"]
    [message] = drain_queue(sqs, url, expected=1, timeout=3)
    [record] = json.loads(message["Body"])["Records"]
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"]["key"] == "in+box/a%2Bb.txt"
    assert record["s3"]["object"]["versionId"] == version
    assert record["s3"]["object"]["sequencer"]
    assert record["s3"]["bucket"]["name"] == "queued-uploads"

    emulator.set_notification_copies(2)
    try:
        s3.put_object(Bucket="queued-uploads", Key="twice.txt", Body=b"x")
        bodies = [m["Body"] for m in drain_queue(sqs, url, expected=3, timeout=3)]
    finally:
        emulator.set_notification_copies(1)
    assert len(bodies) == 2, "at-least-once: every queue notification delivered twice"
    assert bodies[0] == bodies[1]


# ---------------------------------------------------------------------------- the mapping's API
def test_a_mapping_reads_back_what_terraform_set(aws_client: Callable[[str], Any], consumer: str) -> None:
    pipe = Pipe(aws_client, "api-roundtrip")
    created = pipe.map(
        consumer,
        BatchSize=20,
        MaximumBatchingWindowInSeconds=3,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        ScalingConfig={"MaximumConcurrency": 3},
        Enabled=False,
    )
    lam = pipe.lam
    read = lam.get_event_source_mapping(UUID=pipe.uuid)
    for mapping in (created, read):
        assert mapping["BatchSize"] == 20
        assert mapping["MaximumBatchingWindowInSeconds"] == 3
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 3}
        assert mapping["EventSourceArn"] == pipe.arn
    assert read["State"] == "Disabled"
    lam.update_event_source_mapping(UUID=pipe.uuid, BatchSize=5, ScalingConfig={"MaximumConcurrency": 4})
    read = lam.get_event_source_mapping(UUID=pipe.uuid)
    assert (read["BatchSize"], read["ScalingConfig"], read["State"]) == (
        5,
        {"MaximumConcurrency": 4},
        "Disabled",
    )
    lam.delete_event_source_mapping(UUID=pipe.uuid)
    with pytest.raises(ClientError) as caught:
        lam.get_event_source_mapping(UUID=pipe.uuid)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

    plain = Pipe(aws_client, "api-defaults").map(consumer, Enabled=False)
    assert plain["MaximumBatchingWindowInSeconds"] == 0
    assert plain["BatchSize"] == 10
    lam.delete_event_source_mapping(UUID=plain["UUID"])


# ---------------------------------------------------------------------------- delivery
def test_the_event_is_lambdas_sqs_event_and_success_deletes_the_batch(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, captured: Callable[[], list]
) -> None:
    pipe = Pipe(aws_client, "shape")
    pipe.map(consumer, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    body = json.dumps({"mode": "ok"})
    sent = pipe.sqs.send_message(
        QueueUrl=pipe.url,
        MessageBody=body,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "upload"}},
    )
    assert emulator.wait_for_event_sources(30)
    [record] = records(captured())
    assert record["messageId"] == sent["MessageId"]
    assert record["receiptHandle"]
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()  # noqa: S324 - SQS's checksum
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == pipe.arn
    assert record["awsRegion"] == "us-east-1"
    attributes = record["attributes"]
    assert attributes["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(attributes)
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "upload",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert pipe.counts() == (0, 0, 0)
    counters = stats(emulator, pipe.uuid)
    assert (counters["invocations"], counters["messages_received"], counters["messages_deleted"]) == (1, 1, 1)


def test_reported_failures_come_back_until_they_reach_the_dead_letter_queue(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, captured: Callable[[], list]
) -> None:
    pipe = Pipe(aws_client, "partial", max_receive=2, visibility=3)
    pipe.map(
        consumer,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    pipe.send({"mode": "ok", "n": 1}, {"mode": "fail", "n": 2}, {"mode": "ok", "n": 3})
    assert emulator.wait_for_event_sources(30)
    assert pipe.dead_letters(expected=1) == [{"mode": "fail", "n": 2}]
    seen = records(captured())
    failing = [r["attributes"]["ApproximateReceiveCount"] for r in seen if json.loads(r["body"])["n"] == 2]
    assert failing == ["1", "2"], "the reported message came back once, then went to the DLQ"
    assert sorted(json.loads(r["body"])["n"] for r in seen if json.loads(r["body"])["n"] != 2) == [1, 3]
    counters = stats(emulator, pipe.uuid)
    assert counters["messages_deleted"] == 2
    assert counters["messages_reported_failed"] == 2
    assert counters["batch_failures"] == 0


@pytest.mark.parametrize("mode", ["empty-id", "null-id", "unknown-id", "misnamed", "text"])
def test_an_invalid_batch_response_fails_the_whole_batch(
    aws_client: Callable[[str], Any],
    consumer: str,
    emulator: Emulator,
    captured: Callable[[], list],
    mode: str,
) -> None:
    pipe = Pipe(aws_client, f"invalid-{mode}", max_receive=1, visibility=3)
    pipe.map(
        consumer,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    pipe.send({"mode": mode}, {"mode": "ok"})
    assert emulator.wait_for_event_sources(30)
    assert sorted(m["mode"] for m in pipe.dead_letters(expected=2)) == sorted([mode, "ok"])
    counters = stats(emulator, pipe.uuid)
    assert (counters["messages_deleted"], counters["batch_failures"]) == (0, 1)


def test_a_function_error_deletes_nothing(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, captured: Callable[[], list]
) -> None:
    pipe = Pipe(aws_client, "raising", max_receive=2)
    pipe.map(consumer, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    pipe.send({"mode": "raise"})
    assert emulator.wait_for_event_sources(30)
    assert pipe.dead_letters(expected=1) == [{"mode": "raise"}]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records(captured())] == ["1", "2"]
    counters = stats(emulator, pipe.uuid)
    assert (counters["invocations"], counters["batch_failures"], counters["messages_deleted"]) == (2, 2, 0)


def test_without_report_batch_item_failures_success_deletes_every_message(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator
) -> None:
    pipe = Pipe(aws_client, "all-or-nothing", max_receive=1, visibility=3)
    pipe.map(consumer, BatchSize=10, MaximumBatchingWindowInSeconds=1)
    pipe.send({"mode": "fail"}, {"mode": "ok"})
    assert emulator.wait_for_event_sources(30)
    assert pipe.counts(pipe.dlq_url) == (0, 0, 0)
    assert stats(emulator, pipe.uuid)["messages_deleted"] == 2


def test_the_batching_window_gathers_messages_into_one_batch(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, captured: Callable[[], list]
) -> None:
    pipe = Pipe(aws_client, "window", visibility=10)
    pipe.map(consumer, BatchSize=10, MaximumBatchingWindowInSeconds=3)
    for n in range(3):
        pipe.sqs.send_message(QueueUrl=pipe.url, MessageBody=json.dumps({"mode": "ok", "n": n}))
    assert emulator.wait_for_event_sources(30)
    [invocation] = captured()
    assert sorted(json.loads(r["body"])["n"] for r in invocation["event"]["Records"]) == [0, 1, 2]


def test_batches_hold_at_most_batch_size_messages(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, captured: Callable[[], list]
) -> None:
    pipe = Pipe(aws_client, "batch-size", visibility=10)
    pipe.map(consumer, BatchSize=2, MaximumBatchingWindowInSeconds=1)
    pipe.send(*({"mode": "ok", "n": n} for n in range(5)))
    assert emulator.wait_for_event_sources(30)
    sizes = [len(seen["event"]["Records"]) for seen in captured()]
    assert sum(sizes) == 5
    assert max(sizes) <= 2


def test_maximum_concurrency_caps_concurrent_invocations(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, captured: Callable[[], list]
) -> None:
    pipe = Pipe(aws_client, "capped")
    pipe.map(consumer, BatchSize=1, ScalingConfig={"MaximumConcurrency": 2})
    pipe.send(*({"mode": "sleep", "seconds": 0.4} for _ in range(8)))
    assert emulator.wait_for_event_sources(60)
    invocations = captured()
    assert len(invocations) == 8
    edges = sorted(
        [(seen["started"], 1) for seen in invocations] + [(seen["ended"], -1) for seen in invocations]
    )
    running, peak = 0, 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak <= 2, "the function never ran more than MaximumConcurrency batches at once"
    assert stats(emulator, pipe.uuid)["max_running"] == 2


def poller_threads(uuid: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"sqs-poller-{uuid[:8]}")]


def test_a_disabled_mapping_does_not_poll_and_a_deleted_one_stops(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator
) -> None:
    pipe = Pipe(aws_client, "switched")
    pipe.map(consumer, BatchSize=10, Enabled=False)
    pipe.send({"mode": "ok"})
    time.sleep(1)  # give a (wrong) poller the chance to take it
    assert pipe.counts() == (1, 0, 0)
    assert not poller_threads(pipe.uuid)
    assert emulator.wait_for_event_sources(5), "a disabled mapping's queue is not waited for"

    pipe.lam.update_event_source_mapping(UUID=pipe.uuid, Enabled=True)
    wait_for(lambda: pipe.counts() == (0, 0, 0), message="the enabled mapping consumes the message")
    assert stats(emulator, pipe.uuid)["messages_deleted"] == 1

    pipe.lam.delete_event_source_mapping(UUID=pipe.uuid)
    wait_for(lambda: not poller_threads(pipe.uuid), timeout=10, message="the deleted mapping's pollers stop")
    pipe.send({"mode": "ok"})
    time.sleep(1)
    assert pipe.counts() == (1, 0, 0)
    assert stats(emulator, pipe.uuid)["state"] == "Deleted"


def test_a_delayed_message_is_not_drained(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator
) -> None:
    pipe = Pipe(aws_client, "delayed")
    pipe.map(consumer, BatchSize=10)
    pipe.sqs.send_message(QueueUrl=pipe.url, MessageBody=json.dumps({"mode": "ok"}), DelaySeconds=3)
    assert not emulator.wait_for_event_sources(0.5)
    assert emulator.wait_for_event_sources(30)
    assert stats(emulator, pipe.uuid)["messages_deleted"] == 1


def test_the_admin_api_reports_and_waits(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator
) -> None:
    pipe = Pipe(aws_client, "admin")
    pipe.map(consumer, BatchSize=10, ScalingConfig={"MaximumConcurrency": 2})
    pipe.send({"mode": "ok"})
    client = AdminClient(emulator.endpoint_url)
    result = client.wait_until_idle(30)
    assert result["idle"] is True
    assert client.wait_for_event_sources(5) is True
    [mapping] = [m for m in client.event_sources()["mappings"] if m["uuid"] == pipe.uuid]
    assert mapping["state"] == "Enabled"
    assert mapping["maximum_concurrency"] == 2
    assert {
        "invocations",
        "messages_received",
        "messages_deleted",
        "messages_reported_failed",
        "batch_failures",
        "throttles",
        "running",
        "max_running",
    } <= set(mapping)
    assert mapping["messages_deleted"] == 1


def test_start_execution_throttles_apply_to_functions_and_failures_come_back(
    aws_client: Callable[[str], Any], consumer: str, emulator: Emulator, lambda_role: str
) -> None:
    """The trigger's pattern: a throttled StartExecution is reported, and the retry starts it."""
    sfn = aws_client("stepfunctions")
    machine = sfn.create_state_machine(
        name="throttled-by-functions",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn=lambda_role,
    )["stateMachineArn"]
    pipe = Pipe(aws_client, "throttled", max_receive=10, visibility=2)
    pipe.map(
        consumer,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    emulator.set_throttle("AWSStepFunctions.StartExecution", capacity=1, refill_per_second=0.5)
    try:
        pipe.send(*({"mode": "start", "machine": machine} for _ in range(3)))
        assert emulator.wait_for_event_sources(60)
        [throttle] = [t for t in emulator.faults.list_throttles() if t["target"].endswith("StartExecution")]
    finally:
        emulator.clear_throttles()
    assert throttle["throttled"] >= 2, "calls made by functions go through the token bucket"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 3
    counters = stats(emulator, pipe.uuid)
    assert counters["messages_reported_failed"] >= 2
    assert counters["messages_deleted"] == 3
    assert pipe.counts(pipe.dlq_url) == (0, 0, 0)
