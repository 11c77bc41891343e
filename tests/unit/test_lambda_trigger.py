"""Trigger Lambda against moto: SQS batches of S3 notifications (or a direct S3 event) in, Step
Functions executions, partial batch responses and SNS alerts out."""

from __future__ import annotations

import json
import logging
import random
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from devkit.lambda_harness import FakeLambdaContext, sqs_event

if TYPE_CHECKING:
    from tests.conftest import SubscribedTopic

REGION = "us-east-1"
"""The stack's region: the shared fixtures' ``AWS_REGION`` (``use_fake_credentials``), which the
trigger reads as Lambda's own, and every record's ``awsRegion``."""
OTHER_REGION = "eu-west-1"
BUCKET = "uploads-bucket"
EVENT_TIME = "2026-01-15T10:20:30.123Z"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def s3_record(
    raw_key: str,
    *,
    bucket: str = BUCKET,
    event_name: str = "ObjectCreated:Put",
    size: int | None = 2048,
    version_id: str | None = "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
    sequencer: str = "0055AED6DCD90281E5",
) -> dict[str, Any]:
    """One record as S3 sends it (the key form-URL-encoded), from the stack's region (``REGION``)."""
    s3_object: dict[str, Any] = {
        "key": raw_key,
        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
        "sequencer": sequencer,
    }
    if size is not None:
        s3_object["size"] = size
    if version_id is not None:
        s3_object["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": EVENT_TIME,
        "eventName": event_name,
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ingest",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": s3_object,
        },
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


@pytest.fixture
def sfn(aws: None) -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def state_machine_arn(sfn: Any) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return sfn.create_state_machine(
        name="ingestion",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/ingestion-state-machine",
    )["stateMachineArn"]


@dataclass
class SimulatedTime:
    """The invocation's time in a test: it passes only when the trigger waits, and nothing sleeps.

    ``waits`` records each wait as (milliseconds left before it, milliseconds waited); ``fraction``
    fixes the jitter (None: random, as in Lambda).
    """

    remaining_ms: int = 30_000
    fraction: float | None = None
    waits: list[tuple[int, int]] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        waited = round(seconds * 1000)
        self.waits.append((self.remaining_ms, waited))
        self.remaining_ms -= waited

    def jitter(self) -> float:
        return random.random() if self.fraction is None else self.fraction  # noqa: S311 - not crypto

    @property
    def waited_ms(self) -> list[int]:
        return [waited for _, waited in self.waits]


@dataclass(frozen=True)
class SimulatedContext(FakeLambdaContext):
    """A LambdaContext whose remaining time is the simulated time's."""

    time: SimulatedTime = field(default_factory=SimulatedTime)

    def get_remaining_time_in_millis(self) -> int:
        return self.time.remaining_ms


@pytest.fixture
def simulated_time() -> SimulatedTime:
    return SimulatedTime()


@pytest.fixture
def lambda_context(simulated_time: SimulatedTime) -> SimulatedContext:
    """This module's LambdaContext (it overrides the shared one): its time passes as the trigger waits."""
    return SimulatedContext(
        function_name="test-function", region=REGION, account_id="123456789012", time=simulated_time
    )


def simulate_time(module: ModuleType, simulated_time: SimulatedTime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the module wait in simulated time: no test sleeps, and a throttle never outlasts it."""
    clock = module.Clock(sleep=simulated_time.sleep, jitter=simulated_time.jitter)
    monkeypatch.setattr(module, "CLOCK", clock)


class CurrentStdout:
    """Writes to whatever ``sys.stdout`` is when a line is logged (capsys replaces it per phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def trigger(
    load_function: Callable[..., ModuleType],
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    simulated_time: SimulatedTime,
    monkeypatch: pytest.MonkeyPatch,
) -> ModuleType:
    """The trigger; its JSON log lines go to the stdout the test captures (see ``read_output``), and
    it waits out throttles in simulated time (``simulated_time``, ``lambda_context``)."""
    module = load_function(
        "lambda_trigger",
        STATE_MACHINE_ARN=state_machine_arn,
        ALERT_TOPIC_ARN=alert_topic.arn,
        UPLOAD_BUCKET=BUCKET,
    )
    module.logger.logger_handler.setStream(CurrentStdout())
    simulate_time(module, simulated_time, monkeypatch)
    return module


@pytest.fixture
def trigger_functions(load_function: Callable[..., ModuleType]) -> ModuleType:
    """The trigger module for tests of its pure functions: no AWS resources behind its settings."""
    return load_function(
        "lambda_trigger",
        STATE_MACHINE_ARN=f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
        ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:123456789012:unused",
        UPLOAD_BUCKET=BUCKET,
    )


def executions(sfn: Any, state_machine_arn: str) -> dict[str, dict[str, Any]]:
    """Execution name -> its parsed input."""
    listed = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    return {
        execution["name"]: json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
        for execution in listed
    }


START_EXECUTION_PARAMS = "before-parameter-build.sfn.StartExecution"


def refuse_start_for(trigger: ModuleType, key: str, code: str = "ThrottlingException") -> Callable[..., None]:
    """Make StartExecution fail with ``code`` for one key, every time (injected on the module's own
    client; an error raised here stands for what remains after botocore's own attempts)."""

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if json.loads(params["input"])["key"] == key:
            raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "StartExecution")

    trigger.SFN.meta.events.register(START_EXECUTION_PARAMS, refuse)
    return refuse


def throttle_start_for(
    trigger: ModuleType, key: str, times: int, code: str = "ThrottlingException"
) -> Callable[..., None]:
    """Make StartExecution fail with ``code`` for one key's first ``times`` calls, then pass."""
    refusals = [code] * times

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if json.loads(params["input"])["key"] == key and refusals:
            raise ClientError(
                {"Error": {"Code": refusals.pop(), "Message": "Rate exceeded"}}, "StartExecution"
            )

    trigger.SFN.meta.events.register(START_EXECUTION_PARAMS, refuse)
    return refuse


def rejection_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == "Rejected S3 object key"]


# --- accepted keys -----------------------------------------------------------------------------


def test_a_valid_upload_starts_one_execution_with_the_contract_input(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given an ObjectCreated notification for one valid key
    event = s3_event(s3_record("incoming/report.csv"))

    # When the trigger handles it
    summary = trigger.lambda_handler(event, lambda_context)

    # Then exactly one execution runs, named deterministically, with the contract's input
    name = trigger.execution_name(
        BUCKET, "incoming/report.csv", "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd", "0055AED6DCD90281E5"
    )
    assert executions(sfn, state_machine_arn) == {
        name: {
            "bucket": BUCKET,
            "key": "incoming/report.csv",
            "size": 2048,
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "version_id": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
            "sequencer": "0055AED6DCD90281E5",
            "event_time": EVENT_TIME,
            "event_name": "ObjectCreated:Put",
        }
    }
    assert summary == {
        "started": 1,
        "duplicates": 0,
        "rejected": 0,
        "ignored": 0,
        "folder_markers": 0,
        "throttle_waits": 0,
        "executions": [name],
    }
    assert alert_topic.received() == []
    assert read_metrics() == {
        "StartedExecutions": 1,
        "DuplicateExecutions": 0,
        "RejectedKeys": 0,
        "IgnoredRecords": 0,
        "IgnoredFolderMarkers": 0,
        "FailedStarts": 0,
    }
    assert trigger.logger.get_correlation_id() == "C3D13FE58DE4C810"


@pytest.mark.parametrize(
    ("raw_key", "decoded_key"),
    [
        pytest.param("my+file%2Bv2.csv", "my file+v2.csv", id="plus-and-encoded-plus"),
        pytest.param("d%C3%A9j%C3%A0+vu%2F%E2%9C%93.txt", "déjà vu/✓.txt", id="unicode"),
    ],
)
def test_encoded_keys_are_decoded_before_starting(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    raw_key: str,
    decoded_key: str,
) -> None:
    trigger.lambda_handler(s3_event(s3_record(raw_key)), lambda_context)

    [execution_input] = executions(sfn, state_machine_arn).values()
    assert execution_input["key"] == decoded_key


def test_fields_s3_did_not_send_are_null(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    # Given an unversioned bucket's record without a size
    record = s3_record("report.csv", size=None, version_id=None)
    del record["s3"]["object"]["eTag"]

    trigger.lambda_handler(s3_event(record), lambda_context)

    [execution_input] = executions(sfn, state_machine_arn).values()
    assert execution_input["size"] is None
    assert execution_input["etag"] is None
    assert execution_input["version_id"] is None
    assert execution_input["sequencer"] == "0055AED6DCD90281E5"


# --- rejected keys -----------------------------------------------------------------------------


def test_one_bad_record_among_good_ones_is_alerted_and_the_good_ones_still_start(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given three records, the middle one with a traversal key
    event = s3_event(
        s3_record("a.csv", sequencer="01"),
        s3_record("..%2Fetc%2Fpasswd", sequencer="02"),
        s3_record("b.csv", sequencer="03"),
    )

    summary = trigger.lambda_handler(event, lambda_context)

    # Then the good keys start, the bad one does not
    assert sorted(execution["key"] for execution in executions(sfn, state_machine_arn).values()) == [
        "a.csv",
        "b.csv",
    ]
    assert summary["started"] == 2
    assert summary["rejected"] == 1
    # And one alert names the bad key, its reason, the bucket and the event time
    [alert] = alert_topic.received()
    assert alert["Subject"] == f"Ingestion rejected 1 S3 object key(s) in {BUCKET}"
    assert '"../etc/passwd"' in alert["Message"]
    assert "reason: key contains a '..' path segment" in alert["Message"]
    assert f"bucket: {BUCKET}" in alert["Message"]
    assert f"event time: {EVENT_TIME}" in alert["Message"]
    assert "a.csv" not in alert["Message"]
    # And the rejection is logged once, with the key and the reason
    [log] = rejection_logs(caplog)
    assert (log.key, log.reason, log.levelname) == (
        "../etc/passwd",
        "key contains a '..' path segment",
        "WARNING",
    )
    assert read_metrics()["RejectedKeys"] == 1


def test_every_rejected_key_of_an_invocation_is_listed_in_one_alert(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = s3_event(
        s3_record("%2Fabsolute.csv"),
        s3_record("nul%00byte.csv"),
        s3_record("back%5Cslash.csv"),
        s3_record("%FF.csv"),
    )

    summary = trigger.lambda_handler(event, lambda_context)

    assert summary["rejected"] == 4
    assert executions(sfn, state_machine_arn) == {}
    [alert] = alert_topic.received()
    message = alert["Message"]
    assert '"/absolute.csv"' in message
    assert "key starts with '/'" in message
    assert '"nul\\u0000byte.csv"' in message
    assert "control character U+0000" in message
    assert '"back\\\\slash.csv"' in message
    assert "backslash" in message
    assert '"%FF.csv"' in message
    assert "not valid UTF-8" in message
    assert len(rejection_logs(caplog)) == 4


def test_a_record_without_a_key_is_rejected_as_malformed(
    trigger: ModuleType, alert_topic: SubscribedTopic, lambda_context: FakeLambdaContext
) -> None:
    record = s3_record("ignored")
    del record["s3"]["object"]["key"]
    del record["eventTime"]

    summary = trigger.lambda_handler(s3_event(record), lambda_context)

    assert summary["rejected"] == 1
    [alert] = alert_topic.received()
    assert (
        "malformed S3 notification record: s3.object.key is missing, empty or not a string; eventTime"
        in alert["Message"]
    )


def test_a_record_for_another_bucket_is_rejected_like_a_bad_key(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given an event (forged, or from a bucket wired by mistake) with a record for another bucket
    event = s3_event(
        s3_record("good.csv", sequencer="01"),
        s3_record("forged+row.csv", bucket="someone-elses-bucket", sequencer="02"),
        s3_record("..", bucket="someone-elses-bucket", sequencer="03"),
    )

    summary = trigger.lambda_handler(event, lambda_context)

    # Then nothing starts for the other bucket, the good record still starts
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["good.csv"]
    assert (summary["started"], summary["rejected"]) == (1, 2)
    # And each foreign record is logged once with the reason, and listed in the one alert
    reason = "bucket 'someone-elses-bucket' is not the pipeline's upload bucket 'uploads-bucket'"
    logs = rejection_logs(caplog)
    assert [(log.bucket, log.key, log.reason) for log in logs] == [
        ("someone-elses-bucket", "forged row.csv", reason),
        ("someone-elses-bucket", "..", reason),
    ]
    [alert] = alert_topic.received()
    assert alert["Subject"] == "Ingestion rejected 2 S3 object key(s) in someone-elses-bucket"
    assert alert["Message"].count(f"reason: {reason}\n") == 2
    assert '  key: "forged row.csv"\n' in alert["Message"]
    assert read_metrics()["RejectedKeys"] == 2


def test_a_foreign_record_with_an_undecodable_key_shows_the_key_as_sent(
    trigger: ModuleType, alert_topic: SubscribedTopic, lambda_context: FakeLambdaContext
) -> None:
    summary = trigger.lambda_handler(s3_event(s3_record("%FF.csv", bucket="other-bucket")), lambda_context)

    assert summary["rejected"] == 1
    [alert] = alert_topic.received()
    assert "  key: \"%FF.csv\"\n  reason: bucket 'other-bucket' is not" in alert["Message"]


def test_a_direct_invocation_rejects_records_of_another_source_or_region_like_a_batch(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given a hand-made event: a record as S3 sends it, one without eventSource, one of another region
    no_source = s3_record("no-source.csv", sequencer="02")
    del no_source["eventSource"]
    elsewhere = s3_record("elsewhere.csv", sequencer="03")
    elsewhere["awsRegion"] = OTHER_REGION
    event = s3_event(s3_record("good.csv", sequencer="01"), no_source, elsewhere)

    summary = trigger.lambda_handler(event, lambda_context)

    # Then only S3's record of the stack's region starts
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["good.csv"]
    assert (summary["started"], summary["rejected"]) == (1, 2)
    # And each other record is logged and alerted with its reason
    rejected = [
        ("no-source.csv", "eventSource is missing (S3 always sends it; expected S3's 'aws:s3')"),
        ("elsewhere.csv", f"awsRegion '{OTHER_REGION}' is not the stack's region '{REGION}'"),
    ]
    assert [(log.key, log.reason) for log in rejection_logs(caplog)] == rejected
    [alert] = alert_topic.received()
    for key, reason in rejected:
        assert f'  key: "{key}"\n  reason: {reason}\n' in alert["Message"]
    assert read_metrics()["RejectedKeys"] == 2


def test_a_record_as_s3_sends_it_has_no_origin_problem(trigger_functions: ModuleType) -> None:
    # The fixtures' AWS_REGION is the records' awsRegion
    assert trigger_functions.CONFIG.region == REGION

    assert trigger_functions.origin_problems(s3_record("a.csv"), BUCKET, trigger_functions.CONFIG) == []


def test_every_origin_problem_of_a_record_is_named_in_order(trigger_functions: ModuleType) -> None:
    record = s3_record("a.csv", bucket="other-bucket")
    record["eventSource"] = "aws:kinesis"
    record["awsRegion"] = OTHER_REGION

    assert trigger_functions.origin_problems(record, "other-bucket", trigger_functions.CONFIG) == [
        "eventSource 'aws:kinesis' is not S3's 'aws:s3'",
        f"awsRegion '{OTHER_REGION}' is not the stack's region '{REGION}'",
        "bucket 'other-bucket' is not the pipeline's upload bucket 'uploads-bucket'",
    ]


def test_the_stack_region_is_the_one_lambda_runs_in(trigger_functions: ModuleType) -> None:
    # Given the function runs in another region (Lambda's AWS_REGION)
    config = replace(trigger_functions.CONFIG, region=OTHER_REGION)
    there = s3_record("a.csv")
    there["awsRegion"] = OTHER_REGION

    # Then that region's records pass, and the test region's do not
    assert trigger_functions.origin_problems(there, BUCKET, config) == []
    assert trigger_functions.origin_problems(s3_record("a.csv"), BUCKET, config) == [
        f"awsRegion '{REGION}' is not the stack's region '{OTHER_REGION}'"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(None, "eventSource is a JSON null, not S3's 'aws:s3'", id="null"),
        pytest.param(3, "eventSource is a JSON number, not S3's 'aws:s3'", id="number"),
        pytest.param({"S": "aws:s3"}, "eventSource is a JSON object, not S3's 'aws:s3'", id="object"),
        pytest.param("", "eventSource '' is not S3's 'aws:s3'", id="empty"),
        pytest.param("AWS:S3", "eventSource 'AWS:S3' is not S3's 'aws:s3'", id="case"),
        pytest.param("aws:s3\u202e", "eventSource 'aws:s3\\u202e' is not S3's 'aws:s3'", id="escaped"),
        pytest.param("x" * 1000, "eventSource '" + "x" * 64 + "'... is not S3's 'aws:s3'", id="shortened"),
    ],
)
def test_a_field_that_does_not_match_is_shown_escaped_and_short(
    trigger_functions: ModuleType, value: object, problem: str
) -> None:
    record = s3_record("a.csv")
    record["eventSource"] = value

    assert trigger_functions.origin_problems(record, BUCKET, trigger_functions.CONFIG) == [problem]


def test_a_foreign_bucket_name_is_shown_escaped_and_short(trigger_functions: ModuleType) -> None:
    [problem] = trigger_functions.origin_problems(
        s3_record("a.csv"), "evil\u202e" + "b" * 100, trigger_functions.CONFIG
    )

    assert problem == (
        "bucket 'evil\\u202e" + "b" * 59 + "'... is not the pipeline's upload bucket 'uploads-bucket'"
    )


def test_a_bucket_name_that_is_not_plain_ascii_is_shown_escaped(trigger_functions: ModuleType) -> None:
    rejection = trigger_functions.Rejection(
        bucket="evil\u202ebucket", key="a.csv", reason="bad", event_time="2026\u2028-01-01"
    )

    _, message = trigger_functions.build_alert([rejection])

    assert '- bucket: "evil\\u202ebucket"\n' in message
    assert 'event time: "2026\\u2028-01-01"\n' in message
    assert "\u202e" not in message
    assert "\u2028" not in message


@pytest.mark.parametrize(
    ("raw_key", "shown", "reason"),
    [
        pytest.param(
            "invoice%E2%80%AEfdp.exe",
            '"invoice\\u202efdp.exe"',
            "key contains format character U+202E (RIGHT-TO-LEFT OVERRIDE) at position 7",
            id="right-to-left-override",
        ),
        pytest.param(
            "zero%E2%80%8Bwidth.csv",
            '"zero\\u200bwidth.csv"',
            "key contains format character U+200B (ZERO WIDTH SPACE) at position 4",
            id="zero-width-space",
        ),
        pytest.param(
            "line%E2%80%A8sep.csv",
            '"line\\u2028sep.csv"',
            "key contains line separator U+2028 (LINE SEPARATOR) at position 4",
            id="line-separator",
        ),
        pytest.param(
            "para%E2%80%A9sep.csv",
            '"para\\u2029sep.csv"',
            "key contains paragraph separator U+2029 (PARAGRAPH SEPARATOR) at position 4",
            id="paragraph-separator",
        ),
    ],
)
def test_a_key_with_an_invisible_character_is_rejected_and_shown_escaped(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    raw_key: str,
    shown: str,
    reason: str,
) -> None:
    summary = trigger.lambda_handler(s3_event(s3_record(raw_key)), lambda_context)

    assert summary["rejected"] == 1
    assert executions(sfn, state_machine_arn) == {}
    [log] = rejection_logs(caplog)
    assert log.reason == reason
    [alert] = alert_topic.received()
    assert f"  key: {shown}\n  reason: {reason}\n" in alert["Message"]
    assert not any(char in alert["Message"] for char in "\u202e\u200b\u2028\u2029")


# --- events that are not notifications ----------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "received", "shown"),
    [
        pytest.param([], "array", "[]", id="array"),
        pytest.param("text", "string", '"text"', id="string"),
        pytest.param(None, "null", "null", id="null"),
        pytest.param(42, "number", "42", id="number"),
        pytest.param(1.5, "number", "1.5", id="float"),
        pytest.param(True, "boolean", "true", id="boolean"),
    ],
)
def test_an_event_that_is_not_a_json_object_is_a_typed_error(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
    event: Any,
    received: str,
    shown: str,
) -> None:
    with pytest.raises(trigger.InvalidEventError) as caught:
        trigger.lambda_handler(event, lambda_context)

    assert str(caught.value) == (
        "the trigger expects an SQS batch or an S3 event notification, a JSON object; "
        f"received a JSON {received}: {shown}"
    )
    assert caught.value.received == received
    assert isinstance(caught.value, ValueError)
    assert executions(sfn, state_machine_arn) == {}
    assert alert_topic.received() == []
    [log] = [record for record in caplog.records if record.getMessage() == "Invalid event"]
    assert (log.levelname, log.received, log.reason) == ("ERROR", received, str(caught.value))
    assert read_metrics() == {"InvalidEvents": 1}


def test_records_that_are_not_an_array_are_a_typed_error(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    with pytest.raises(
        trigger.InvalidEventError, match=r"'Records' must be an array.*received a JSON object"
    ):
        trigger.lambda_handler({"Records": {"s3": {}}}, lambda_context)

    assert executions(sfn, state_machine_arn) == {}


def test_a_huge_invalid_event_is_shown_shortened(trigger_functions: ModuleType) -> None:
    error = trigger_functions.InvalidEventError("not an object", "x" * 10_000)

    assert str(error) == 'not an object; received a JSON string: "' + "x" * 99 + "..."


# --- folder markers ----------------------------------------------------------------------------


def test_folder_markers_are_ignored_and_counted(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given a console's "create folder" (a zero-byte key ending in '/') beside a real upload
    event = s3_event(
        s3_record("incoming%2F2026%2F", size=0, sequencer="01"),
        s3_record("incoming/2026/report.csv", sequencer="02"),
    )

    summary = trigger.lambda_handler(event, lambda_context)

    # Then only the upload starts; the marker is logged once and counted, never alerted
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == [
        "incoming/2026/report.csv"
    ]
    assert (summary["started"], summary["folder_markers"], summary["ignored"], summary["rejected"]) == (
        1,
        1,
        0,
        0,
    )
    [log] = [record for record in caplog.records if record.getMessage() == "Ignoring folder marker"]
    assert (log.bucket, log.key) == (BUCKET, "incoming/2026/")
    assert alert_topic.received() == []
    assert read_metrics()["IgnoredFolderMarkers"] == 1


@pytest.mark.parametrize("size", [1, None], ids=["with-data", "size-unknown"])
def test_a_key_ending_in_a_slash_that_may_carry_data_is_ingested(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext, size: int | None
) -> None:
    summary = trigger.lambda_handler(s3_event(s3_record("odd/", size=size)), lambda_context)

    assert (summary["started"], summary["folder_markers"]) == (1, 0)
    [execution_input] = executions(sfn, state_machine_arn).values()
    assert (execution_input["key"], execution_input["size"]) == ("odd/", size)


def test_an_invalid_folder_marker_is_rejected_not_ignored(
    trigger: ModuleType, alert_topic: SubscribedTopic, lambda_context: FakeLambdaContext
) -> None:
    summary = trigger.lambda_handler(s3_event(s3_record("..%2F", size=0)), lambda_context)

    assert (summary["rejected"], summary["folder_markers"]) == (1, 0)
    assert len(alert_topic.received()) == 1


# --- ignored events ----------------------------------------------------------------------------


def test_the_s3_test_event_is_ignored(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-01-15T10:20:30.123Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }

    summary = trigger.lambda_handler(test_event, lambda_context)

    assert summary == {
        "started": 0,
        "duplicates": 0,
        "rejected": 0,
        "ignored": 1,
        "folder_markers": 0,
        "throttle_waits": 0,
        "executions": [],
    }
    assert executions(sfn, state_machine_arn) == {}
    assert alert_topic.received() == []
    assert "Ignoring S3's s3:TestEvent" in caplog.messages


@pytest.mark.parametrize("event_name", ["ObjectRemoved:Delete", "ObjectRestore:Completed", None])
def test_records_that_are_not_object_created_are_ignored(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    event_name: str | None,
) -> None:
    record = s3_record("report.csv")
    record["eventName"] = event_name

    summary = trigger.lambda_handler(s3_event(record, "not-a-record"), lambda_context)

    assert summary["ignored"] == 2
    assert summary["started"] == 0
    assert executions(sfn, state_machine_arn) == {}
    assert alert_topic.received() == []
    assert caplog.messages.count("Ignoring record that is not an ObjectCreated event") == 2


# --- duplicates and failures -------------------------------------------------------------------


def test_a_redelivered_notification_is_a_duplicate_not_an_error(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given the notification was handled and its execution has finished
    event = s3_event(s3_record("report.csv"))
    first = trigger.lambda_handler(event, lambda_context)
    [execution] = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    read_metrics()

    # When S3 delivers the same notification again
    second = trigger.lambda_handler(event, lambda_context)

    # Then StartExecution's ExecutionAlreadyExists counts as a duplicate, and nothing new runs
    assert second["started"] == 0
    assert second["duplicates"] == 1
    assert second["executions"] == first["executions"]
    assert len(executions(sfn, state_machine_arn)) == 1
    assert read_metrics()["DuplicateExecutions"] == 1


def test_a_redelivery_while_the_execution_still_runs_starts_nothing_new(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    # Step Functions answers a same-name, same-input start of a running execution with success.
    event = s3_event(s3_record("report.csv"))

    trigger.lambda_handler(event, lambda_context)
    trigger.lambda_handler(event, lambda_context)

    assert len(executions(sfn, state_machine_arn)) == 1


def test_a_failed_start_fails_the_invocation_after_everything_else_is_done(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given StartExecution is throttled for one key (until the invocation runs out of time), and
    # another key is invalid
    refuse_start_for(trigger, "throttled.csv")
    event = s3_event(
        s3_record("throttled.csv", sequencer="01"),
        s3_record("..", sequencer="02"),
        s3_record("fine.csv", sequencer="03"),
    )

    # When the trigger handles the event, it raises an error naming the failed key
    with pytest.raises(trigger.StartExecutionError) as caught:
        trigger.lambda_handler(event, lambda_context)

    assert "'throttled.csv' (ThrottlingException)" in str(caught.value)
    assert [failure.key for failure in caught.value.failures] == ["throttled.csv"]
    # after waiting while the deadline margin allowed (a direct invocation waits as a batch does)
    margin = trigger.CONFIG.deadline_margin_ms
    assert simulated_time.waits
    assert all(left - waited >= margin for left, waited in simulated_time.waits)
    # And the other records were processed, and the alert for the invalid key was sent
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["fine.csv"]
    [alert] = alert_topic.received()
    assert '"..' in alert["Message"]
    metrics = read_metrics()
    assert (metrics["FailedStarts"], metrics["StartedExecutions"], metrics["RejectedKeys"]) == (1, 1, 1)


def test_the_retried_invocation_starts_the_failed_key_without_duplicating_the_others(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    # Given an invocation that failed for one key while the other started
    event = s3_event(s3_record("flaky.csv", sequencer="01"), s3_record("fine.csv", sequencer="02"))
    refusal = refuse_start_for(trigger, "flaky.csv", code="ServiceUnavailable")
    with pytest.raises(trigger.StartExecutionError):
        trigger.lambda_handler(event, lambda_context)
    trigger.SFN.meta.events.unregister(START_EXECUTION_PARAMS, refusal)

    # When Lambda retries the whole invocation
    summary = trigger.lambda_handler(event, lambda_context)

    # Then the failed key starts and the other is not started twice
    assert len(summary["executions"]) == 2
    assert sorted(execution["key"] for execution in executions(sfn, state_machine_arn).values()) == [
        "fine.csv",
        "flaky.csv",
    ]


def test_a_delivery_throttled_after_another_delivery_started_the_execution_is_a_duplicate(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    # Given one delivery of an event started its execution
    event = s3_event(s3_record("twice.csv", sequencer="01"))
    first = trigger.lambda_handler(event, lambda_context)
    # When a second delivery of it finds StartExecution throttled beyond botocore's retries
    refuse_start_for(trigger, "twice.csv")
    second = trigger.lambda_handler(event, lambda_context)

    # Then it is a duplicate (the object is being ingested), not a failure that alerts
    assert (first["started"], second["started"], second["duplicates"]) == (1, 0, 1)
    assert second["executions"] == first["executions"]
    assert len(executions(sfn, state_machine_arn)) == 1


def test_a_failed_start_stays_a_failure_when_its_execution_cannot_be_described(
    trigger: ModuleType, lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    # Given StartExecution is throttled and DescribeExecution is refused
    refuse_start_for(trigger, "unknown.csv")

    def deny(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeExecution")

    trigger.SFN.meta.events.register("before-parameter-build.sfn.DescribeExecution", deny)

    # When the trigger handles the event, the start counts as failed (nothing shows it exists)
    with pytest.raises(trigger.StartExecutionError, match=r"unknown\.csv"):
        trigger.lambda_handler(s3_event(s3_record("unknown.csv", sequencer="01")), lambda_context)
    assert any(record.getMessage() == "DescribeExecution failed" for record in caplog.records)


def test_a_missing_state_machine_fails_every_start_and_the_invocation(
    load_function: Callable[..., ModuleType], alert_topic: SubscribedTopic, lambda_context: FakeLambdaContext
) -> None:
    missing = f"arn:aws:states:{REGION}:123456789012:stateMachine:does-not-exist"
    trigger = load_function(
        "lambda_trigger", STATE_MACHINE_ARN=missing, ALERT_TOPIC_ARN=alert_topic.arn, UPLOAD_BUCKET=BUCKET
    )

    with pytest.raises(trigger.StartExecutionError, match="StateMachineDoesNotExist"):
        trigger.lambda_handler(s3_event(s3_record("a.csv")), lambda_context)


# --- execution names ---------------------------------------------------------------------------

NAME_INPUTS = ("bucket", "report.csv", "version-1", "0055AED6DCD90281E5")


def test_execution_names_are_deterministic(trigger_functions: ModuleType) -> None:
    assert trigger_functions.execution_name(*NAME_INPUTS) == trigger_functions.execution_name(*NAME_INPUTS)
    assert trigger_functions.execution_name(*NAME_INPUTS).startswith("report_csv-")


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(("other-bucket", "report.csv", "version-1", "0055AED6DCD90281E5"), id="bucket"),
        pytest.param(("bucket", "Report.csv", "version-1", "0055AED6DCD90281E5"), id="key"),
        pytest.param(("bucket", "report.csv", "version-2", "0055AED6DCD90281E5"), id="version"),
        pytest.param(("bucket", "report.csv", None, "0055AED6DCD90281E5"), id="no-version"),
        pytest.param(("bucket", "report.csv", "", "0055AED6DCD90281E5"), id="empty-version"),
        pytest.param(("bucket", "report.csv", "null", "0055AED6DCD90281E5"), id="null-version"),
        pytest.param(("bucket/report.csv", "", "version-1", "0055AED6DCD90281E5"), id="shifted-boundary"),
    ],
)
def test_any_differing_object_version_gives_a_different_name(
    trigger_functions: ModuleType, changed: tuple[str, str, str | None, str | None]
) -> None:
    assert trigger_functions.execution_name(*changed) != trigger_functions.execution_name(*NAME_INPUTS)


def test_a_version_id_alone_identifies_the_object_whatever_the_sequencer(
    trigger_functions: ModuleType,
) -> None:
    # A redelivery of one object version maps to one name, whatever sequencer it carries (and the
    # reconcile tool, which lists versions and never sees a sequencer, computes the same name) ...
    name = trigger_functions.execution_name
    assert name("bucket", "report.csv", "version-1", "0055AED6DCD90281E6") == name(*NAME_INPUTS)
    assert name("bucket", "report.csv", "version-1", None) == name(*NAME_INPUTS)
    # ... while two versions of one key are two objects.
    assert name("bucket", "report.csv", "version-2", "0055AED6DCD90281E5") != name(*NAME_INPUTS)


@pytest.mark.parametrize("version_id", [None, "", "null"], ids=["absent", "empty", "s3-null-version"])
def test_without_a_version_id_the_sequencer_tells_two_writes_of_a_key_apart(
    trigger_functions: ModuleType, version_id: str | None
) -> None:
    # S3 reuses the "null" version id for every write while versioning is off or suspended.
    first = trigger_functions.execution_name("bucket", "report.csv", version_id, "0055AED6DCD90281E5")
    second = trigger_functions.execution_name("bucket", "report.csv", version_id, "0055AED6DCD90281E6")

    assert first != second
    assert first == trigger_functions.execution_name("bucket", "report.csv", None, "0055AED6DCD90281E5")


def test_a_redelivery_with_another_sequencer_starts_nothing_new(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    # Given one version of a key was handled, and a second version of it was uploaded
    trigger.lambda_handler(s3_event(s3_record("report.csv", sequencer="01")), lambda_context)

    # When the first version's notification comes again with another sequencer, and the second's
    redelivered = trigger.lambda_handler(s3_event(s3_record("report.csv", sequencer="02")), lambda_context)
    second_version = trigger.lambda_handler(
        s3_event(s3_record("report.csv", version_id="second-version", sequencer="03")), lambda_context
    )

    # Then the redelivery is a duplicate and only the new version starts an execution
    assert (redelivered["started"], redelivered["duplicates"]) == (0, 1)
    assert (second_version["started"], second_version["duplicates"]) == (1, 0)
    assert sorted(execution["version_id"] for execution in executions(sfn, state_machine_arn).values()) == [
        "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
        "second-version",
    ]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("report.csv", id="short"),
        pytest.param("x" * 1024, id="1024-ascii-bytes"),
        pytest.param("é" * 512, id="1024-utf8-bytes"),
        pytest.param("✓" * 341, id="1023-bytes-of-3-byte-chars"),
        pytest.param("dir/" * 255 + "last", id="1024-bytes-of-folders"),
        pytest.param("déjà vu/✓ 😀.txt", id="unicode"),
        pytest.param("folder/", id="folder-marker"),
        pytest.param("---___", id="only-separators"),
    ],
)
def test_execution_names_fit_step_functions_rules(trigger_functions: ModuleType, key: str) -> None:
    name = trigger_functions.execution_name("b" * 63, key, "v" * 1024, "0" * 32)

    assert NAME_PATTERN.fullmatch(name)


def test_names_of_long_keys_that_share_a_prefix_differ(trigger_functions: ModuleType) -> None:
    first = trigger_functions.execution_name(BUCKET, "x" * 1023 + "a", None, None)
    second = trigger_functions.execution_name(BUCKET, "x" * 1023 + "b", None, None)

    assert first != second
    assert len(first) == len(second) == 80


# --- alert format ------------------------------------------------------------------------------


def test_the_alert_subject_is_short_ascii_whatever_the_bucket(trigger_functions: ModuleType) -> None:
    rejection = trigger_functions.Rejection(bucket="b" * 63, key="..", reason="bad", event_time=EVENT_TIME)

    subject, _ = trigger_functions.build_alert([rejection])

    assert len(subject) <= 100
    assert subject.isascii()
    assert subject.endswith("...")


def test_safe_subject_replaces_non_ascii_and_control_characters(trigger_functions: ModuleType) -> None:
    assert trigger_functions.safe_subject("déjà\nvu") == "d?j??vu"


def test_a_huge_rejection_list_is_truncated_below_the_sns_limit(
    trigger: ModuleType, alert_topic: SubscribedTopic
) -> None:
    # Given more rejected 1 KiB keys than one SNS message can hold
    rejections = [
        trigger.Rejection(
            bucket=BUCKET, key=f"{index:04d}/" + "k" * 1000, reason="bad", event_time=EVENT_TIME
        )
        for index in range(400)
    ]

    _, message = trigger.build_alert(rejections)

    assert len(message.encode("utf-8")) <= trigger.MAX_ALERT_BYTES < 256 * 1024
    listed = message.count("\n- bucket: ")
    assert 0 < listed < 400
    assert message.endswith(f"\n... and {400 - listed} more\n")
    # And SNS accepts it
    trigger.publish_alert(trigger.logger, trigger.SNS, alert_topic.arn, rejections)
    [alert] = alert_topic.received()
    assert alert["Message"] == message


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        pytest.param(
            {"ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts", "UPLOAD_BUCKET": BUCKET},
            "STATE_MACHINE_ARN",
            id="state-machine",
        ),
        pytest.param(
            {
                "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:x",
                "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
            },
            "UPLOAD_BUCKET",
            id="upload-bucket",
        ),
    ],
)
def test_a_missing_setting_is_a_configuration_error(
    load_function: Callable[..., ModuleType], env: dict[str, str], missing: str
) -> None:
    with pytest.raises(RuntimeError, match=f"environment variable\\(s\\) not set: {missing}$") as caught:
        load_function("lambda_trigger", **env)

    assert type(caught.value).__name__ == "ConfigurationError"
    assert type(caught.value).__module__ == "lambda_common.errors", "the one shared class"


@pytest.mark.parametrize("region", [None, ""], ids=["unset", "empty"])
def test_a_missing_aws_region_is_a_configuration_error(
    load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch, region: str | None
) -> None:
    # Lambda always sets AWS_REGION; without it the trigger cannot check a record's region
    if region is None:
        monkeypatch.delenv("AWS_REGION")
    else:
        monkeypatch.setenv("AWS_REGION", region)

    with pytest.raises(RuntimeError, match=r"environment variable\(s\) not set: AWS_REGION$") as caught:
        load_function(
            "lambda_trigger",
            STATE_MACHINE_ARN=f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
            ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:123456789012:unused",
            UPLOAD_BUCKET=BUCKET,
        )

    assert type(caught.value).__name__ == "ConfigurationError"


# === the upload queue: SQS batches ==============================================================


@dataclass(frozen=True)
class CountdownContext(FakeLambdaContext):
    """A LambdaContext whose remaining time is the next of ``remaining`` at each call (then the last)."""

    remaining: list[int] = field(default_factory=lambda: [30_000])

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]


@dataclass(frozen=True)
class Output:
    """What the function printed: its JSON log lines and its EMF metrics."""

    logs: list[dict[str, Any]]
    metrics: dict[str, float]

    def lines(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.logs if line.get("message") == message]


@pytest.fixture
def read_output(capsys: pytest.CaptureFixture[str]) -> Callable[[], Output]:
    """Return a function that parses what the function printed since the last call."""

    def read() -> Output:
        logs: list[dict[str, Any]] = []
        values: dict[str, float] = {}
        for text in capsys.readouterr().out.splitlines():
            try:
                document = json.loads(text)
            except ValueError:
                continue
            if not isinstance(document, dict):
                continue
            if "_aws" not in document:
                logs.append(document)
                continue
            for directive in document["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = document[metric["Name"]]
                    values[metric["Name"]] = sum(value) if isinstance(value, list) else value
        return Output(logs=logs, metrics=values)

    return read


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def count_starts(trigger: ModuleType) -> list[str]:
    """The execution names of every StartExecution call the module's client makes from now on."""
    names: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        names.append(params["name"])

    trigger.SFN.meta.events.register_first(START_EXECUTION_PARAMS, record)
    return names


def refuse_publish(trigger: ModuleType) -> Callable[..., None]:
    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "KMSThrottlingException", "Message": "slow down"}}, "Publish")

    trigger.SNS.meta.events.register("before-parameter-build.sns.Publish", refuse)
    return refuse


S3_TEST_EVENT = {
    "Service": "Amazon S3",
    "Event": "s3:TestEvent",
    "Time": "2026-01-15T10:20:30.123Z",
    "Bucket": BUCKET,
    "RequestId": "5582815E1AEA5ADF",
    "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR",
}


def test_a_batch_of_notifications_starts_one_execution_each_and_deletes_every_message(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given a batch of two queue messages, each one S3 notification
    event = sqs_event(
        s3_event(s3_record("a.csv", sequencer="01")), s3_event(s3_record("b.csv", sequencer="02"))
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then both start, and Powertools' partial batch response reports nothing failed
    assert response == {"batchItemFailures": []}
    assert sorted(execution["key"] for execution in executions(sfn, state_machine_arn).values()) == [
        "a.csv",
        "b.csv",
    ]
    assert alert_topic.received() == []
    output = read_output()
    assert output.metrics == {
        "StartedExecutions": 2,
        "DuplicateExecutions": 0,
        "FailedStarts": 0,
        "RejectedKeys": 0,
        "IgnoredRecords": 0,
        "IgnoredFolderMarkers": 0,
        "InvalidMessages": 0,
        "FailedMessages": 0,
        "DeadlineDeferred": 0,
        "AlertPublishFailures": 0,
    }
    [summary] = output.lines("Batch summary")
    assert summary["summary"]["messages"] == 2
    assert summary["summary"]["started"] == 2
    assert summary["summary"]["throttle_waits"] == 0  # logged, not a metric (above)
    assert summary["batch_item_failures"] == []
    assert summary["workflow_type"] == "STANDARD"  # WORKFLOW_TYPE unset: older deployments


def test_the_log_lines_of_a_message_carry_its_message_id(
    trigger: ModuleType, lambda_context: FakeLambdaContext, read_output: Callable[[], Output]
) -> None:
    event = sqs_event(s3_event(s3_record("a.csv", sequencer="01")), s3_event(s3_record("..", sequencer="02")))

    trigger.lambda_handler(event, lambda_context)

    output = read_output()
    [started] = output.lines("Started execution")
    [rejected] = output.lines("Rejected S3 object key")
    assert (started["message_id"], started["key"]) == ("message-0", "a.csv")
    assert (rejected["message_id"], rejected["key"]) == ("message-1", "..")
    [summary] = output.lines("Batch summary")
    assert "message_id" not in summary


@pytest.mark.parametrize("event", [{"Records": []}, sqs_event()], ids=["empty-records", "helper"])
def test_an_empty_batch_reports_nothing_failed(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    event: dict[str, Any],
) -> None:
    assert trigger.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert executions(sfn, state_machine_arn) == {}


def test_s3s_test_event_on_the_queue_is_ignored_and_deleted(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    response = trigger.lambda_handler(sqs_event(S3_TEST_EVENT), lambda_context)

    assert response == {"batchItemFailures": []}
    assert executions(sfn, state_machine_arn) == {}
    assert alert_topic.received() == []
    output = read_output()
    assert (output.metrics["IgnoredRecords"], output.metrics["InvalidMessages"]) == (1, 0)


# --- failed starts: only that message comes back ------------------------------------------------


def test_a_throttled_start_reports_only_its_message_failed(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    # Given StartExecution is throttled (beyond the client's retries, and the trigger's waits) for
    # one key of three
    refuse_start_for(trigger, "throttled.csv")
    event = sqs_event(
        s3_event(s3_record("first.csv", sequencer="01")),
        s3_event(s3_record("throttled.csv", sequencer="02")),
        s3_event(s3_record("last.csv", sequencer="03")),
    )

    # When the trigger handles the batch, it does not raise
    response = trigger.lambda_handler(event, lambda_context)

    # Then only that message is reported failed, and the others started
    assert failures(response) == ["message-1"]
    assert sorted(execution["key"] for execution in executions(sfn, state_machine_arn).values()) == [
        "first.csv",
        "last.csv",
    ]
    assert alert_topic.received() == []
    output = read_output()
    assert (output.metrics["FailedStarts"], output.metrics["FailedMessages"]) == (1, 1)
    [error] = output.lines("StartExecution failed")
    assert (error["message_id"], error["error_code"], error["level"]) == (
        "message-1",
        "ThrottlingException",
        "ERROR",
    )
    waits = simulated_time.waited_ms
    assert (error["attempts"], error["waited_ms"]) == (len(waits) + 1, sum(waits))


def test_a_batch_whose_every_start_is_throttled_returns_its_failures_instead_of_raising(
    trigger: ModuleType, lambda_context: FakeLambdaContext, read_output: Callable[[], Output]
) -> None:
    # Raising would make the invocation a Lambda error, and fire the trigger-errors alarm on a throttle.
    refuse_start_for(trigger, "a.csv")
    refuse_start_for(trigger, "b.csv")
    event = sqs_event(
        s3_event(s3_record("a.csv", sequencer="01")), s3_event(s3_record("b.csv", sequencer="02"))
    )

    response = trigger.lambda_handler(event, lambda_context)

    assert failures(response) == ["message-0", "message-1"]
    assert read_output().metrics["FailedMessages"] == 2


def test_a_redelivered_message_starts_its_object_without_starting_anything_twice(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    # Given a message of two records, one of them throttled: the message failed, the other started
    body = s3_event(s3_record("flaky.csv", sequencer="01"), s3_record("fine.csv", sequencer="02"))
    refusal = refuse_start_for(trigger, "flaky.csv", code="ServiceUnavailable")
    assert failures(trigger.lambda_handler(sqs_event(body), lambda_context)) == ["message-0"]
    trigger.SFN.meta.events.unregister(START_EXECUTION_PARAMS, refusal)
    for execution in sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])

    # When the message comes back after its visibility timeout
    response = trigger.lambda_handler(sqs_event(body), lambda_context)

    # Then the failed key starts and the other is a duplicate (ExecutionAlreadyExists), not a second run
    assert response == {"batchItemFailures": []}
    assert sorted(execution["key"] for execution in executions(sfn, state_machine_arn).values()) == [
        "fine.csv",
        "flaky.csv",
    ]


def test_execution_already_exists_is_a_duplicate_and_the_message_is_deleted(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given the object was started (by the trigger or a reconcile re-drive) and its execution closed
    event = sqs_event(s3_event(s3_record("report.csv")))
    trigger.lambda_handler(event, lambda_context)
    [execution] = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    read_output()

    response = trigger.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": []}
    assert len(executions(sfn, state_machine_arn)) == 1
    metrics = read_output().metrics
    assert (metrics["DuplicateExecutions"], metrics["StartedExecutions"]) == (1, 0)


def test_a_throttled_message_whose_execution_another_delivery_started_is_deleted(
    trigger: ModuleType, sfn: Any, state_machine_arn: str, lambda_context: FakeLambdaContext
) -> None:
    trigger.lambda_handler(sqs_event(s3_event(s3_record("twice.csv"))), lambda_context)
    refuse_start_for(trigger, "twice.csv")

    response = trigger.lambda_handler(sqs_event(s3_event(s3_record("twice.csv"))), lambda_context)

    assert response == {"batchItemFailures": []}
    assert len(executions(sfn, state_machine_arn)) == 1


def test_a_start_that_times_out_reports_its_message_failed(
    trigger: ModuleType,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    # A client-side error (no AWS error code) is no throttle: the message fails, without a wait.
    def time_out(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com")

    trigger.SFN.meta.events.register(START_EXECUTION_PARAMS, time_out)
    trigger.SFN.meta.events.register("before-parameter-build.sfn.DescribeExecution", time_out)

    response = trigger.lambda_handler(sqs_event(s3_event(s3_record("slow.csv"))), lambda_context)

    assert failures(response) == ["message-0"]
    output = read_output()
    [error] = output.lines("StartExecution failed")
    assert (error["error_code"], error["attempts"], error["waited_ms"]) == ("ReadTimeoutError", 1, 0)
    [describe] = output.lines("DescribeExecution failed")
    assert describe["error_code"] == "ReadTimeoutError"
    assert simulated_time.waits == []


def test_an_unexpected_error_reports_the_message_failed_and_is_logged(
    trigger: ModuleType, lambda_context: FakeLambdaContext, read_output: Callable[[], Output]
) -> None:
    def break_down(**_: Any) -> None:
        raise RuntimeError("a bug")

    trigger.SFN.meta.events.register(START_EXECUTION_PARAMS, break_down)
    event = sqs_event(s3_event(s3_record("a.csv")), S3_TEST_EVENT)

    response = trigger.lambda_handler(event, lambda_context)

    assert failures(response) == ["message-0"]
    [log] = read_output().lines("Unexpected error; the message comes back after its visibility timeout")
    assert log["message_id"] == "message-0"
    assert "RuntimeError: a bug" in log["exception"]


# --- throttled starts: waited out while the invocation has time ----------------------------------


def name_of(trigger: ModuleType, key: str) -> str:
    """The execution name of :func:`s3_record`'s (versioned) object ``key``."""
    return trigger.execution_name(BUCKET, key, "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd", None)


@pytest.mark.parametrize("code", ["ThrottlingException", "KmsThrottlingException"])
def test_a_start_throttled_twice_waits_and_its_message_succeeds(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
    code: str,
) -> None:
    # Given StartExecution is throttled twice for one key (beyond botocore's own attempts)
    throttle_start_for(trigger, "busy.csv", times=2, code=code)
    calls = count_starts(trigger)
    describes = record_describes(trigger)
    event = sqs_event(
        s3_event(s3_record("busy.csv", sequencer="01")), s3_event(s3_record("calm.csv", sequencer="02"))
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then the trigger waited twice and started it under the same name: no message comes back
    assert response == {"batchItemFailures": []}
    busy, calm = name_of(trigger, "busy.csv"), name_of(trigger, "calm.csv")
    assert calls == [busy, busy, busy, calm]
    assert set(executions(sfn, state_machine_arn)) == {busy, calm}
    assert describes == []
    # And the waits follow the backoff: full jitter below 0.25 s, then below 0.5 s
    first, second = simulated_time.waited_ms
    assert 0 <= first < 250
    assert 0 <= second < 500
    # And one INFO line tells the attempts and the time waited; no error is logged
    output = read_output()
    [log] = output.lines("StartExecution answered after throttle waits")
    assert (log["level"], log["message_id"], log["execution_name"], log["key"]) == (
        "INFO",
        "message-0",
        busy,
        "busy.csv",
    )
    assert (log["attempts"], log["waited_ms"]) == (3, first + second)
    assert output.lines("StartExecution failed") == []
    [summary] = output.lines("Batch summary")
    assert (summary["summary"]["throttle_waits"], summary["summary"]["started"]) == (2, 2)
    assert summary["summary"]["failed_messages"] == 0
    # And the waits are no metric
    assert set(output.metrics) == set(trigger.METRIC_NAMES.values())


def test_a_start_throttled_until_the_deadline_margin_fails_without_crossing_it(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    # Given StartExecution stays throttled for one key, and every wait is its cap (jitter at its top)
    simulated_time.fraction = 1.0
    refuse_start_for(trigger, "stuck.csv")
    calls = count_starts(trigger)
    margin = trigger.CONFIG.deadline_margin_ms
    event = sqs_event(
        s3_event(s3_record("stuck.csv", sequencer="01")), s3_event(s3_record("next.csv", sequencer="02"))
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then it waited 0.25, 0.5, 1 s, then 2 s each time, while the margin remained after the wait
    assert simulated_time.waited_ms == [250, 500, 1_000] + [2_000] * 11
    assert all(left - waited >= margin for left, waited in simulated_time.waits)
    # And stopped when the next wait would have crossed the margin: 30 - 23.75 = 6.25 s left
    assert simulated_time.remaining_ms == 6_250
    assert simulated_time.remaining_ms - 2_000 < margin
    # And its message is reported failed (it comes back), while the next message still started
    assert failures(response) == ["message-0"]
    assert calls.count(name_of(trigger, "stuck.csv")) == 15
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["next.csv"]
    output = read_output()
    [error] = output.lines("StartExecution failed")
    assert (error["level"], error["error_code"], error["attempts"], error["waited_ms"]) == (
        "ERROR",
        "ThrottlingException",
        15,
        23_750,
    )
    assert output.lines("StartExecution answered after throttle waits") == []
    [summary] = output.lines("Batch summary")
    assert (summary["summary"]["throttle_waits"], summary["summary"]["failed_starts"]) == (14, 1)


def test_a_throttled_start_with_no_time_to_wait_fails_at_once(
    trigger: ModuleType,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    # Given the message is attempted with just the margin left: any wait would cross it
    simulated_time.remaining_ms = trigger.CONFIG.deadline_margin_ms
    simulated_time.fraction = 0.5
    refuse_start_for(trigger, "late.csv")

    response = trigger.lambda_handler(sqs_event(s3_event(s3_record("late.csv"))), lambda_context)

    assert failures(response) == ["message-0"]
    assert simulated_time.waits == []
    [error] = read_output().lines("StartExecution failed")
    assert (error["attempts"], error["waited_ms"]) == (1, 0)


@pytest.mark.parametrize(
    "code", ["ServiceUnavailable", "ExecutionLimitExceeded", "InvalidExecutionInput", "AccessDeniedException"]
)
def test_a_start_failing_otherwise_than_throttled_is_not_tried_again(
    trigger: ModuleType,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
    code: str,
) -> None:
    refuse_start_for(trigger, "broken.csv", code=code)
    calls = count_starts(trigger)
    describes = record_describes(trigger)

    response = trigger.lambda_handler(sqs_event(s3_event(s3_record("broken.csv"))), lambda_context)

    # Then one call, no wait, and as before: DescribeExecution (STANDARD), the message failed
    assert failures(response) == ["message-0"]
    assert len(calls) == 1
    assert simulated_time.waits == []
    assert len(describes) == 1
    output = read_output()
    [error] = output.lines("StartExecution failed")
    assert (error["error_code"], error["attempts"], error["waited_ms"]) == (code, 1, 0)
    [summary] = output.lines("Batch summary")
    assert summary["summary"]["throttle_waits"] == 0


def test_execution_already_exists_after_a_throttle_wait_is_a_duplicate(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given the object's execution was started and has closed
    event = sqs_event(s3_event(s3_record("report.csv")))
    trigger.lambda_handler(event, lambda_context)
    [execution] = sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])
    read_output()
    # When a redelivery's start is throttled once, then answered ExecutionAlreadyExists
    throttle_start_for(trigger, "report.csv", times=1)

    response = trigger.lambda_handler(event, lambda_context)

    # Then it is a duplicate, and the message is deleted
    assert response == {"batchItemFailures": []}
    assert len(executions(sfn, state_machine_arn)) == 1
    output = read_output()
    [waited] = output.lines("StartExecution answered after throttle waits")
    assert waited["attempts"] == 2
    assert len(output.lines("Execution already exists; duplicate notification")) == 1
    [summary] = output.lines("Batch summary")
    assert (summary["summary"]["duplicates"], summary["summary"]["throttle_waits"]) == (1, 1)


def test_a_direct_invocation_waits_out_a_throttle_too(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    throttle_start_for(trigger, "busy.csv", times=2)

    summary = trigger.lambda_handler(s3_event(s3_record("busy.csv")), lambda_context)

    assert (summary["started"], summary["throttle_waits"]) == (1, 2)
    assert len(simulated_time.waits) == 2
    assert list(executions(sfn, state_machine_arn)) == [name_of(trigger, "busy.csv")]
    [line] = read_output().lines("Invocation summary")
    assert line["summary"]["throttle_waits"] == 2


@pytest.mark.parametrize(
    ("wait", "cap_ms"),
    [(1, 250), (2, 500), (3, 1_000), (4, 2_000), (5, 2_000), (100_000, 2_000)],
)
def test_throttle_waits_double_from_a_quarter_second_up_to_two_seconds_with_full_jitter(
    trigger_functions: ModuleType, wait: int, cap_ms: int
) -> None:
    assert (trigger_functions.THROTTLE_WAIT_BASE_SECONDS, trigger_functions.THROTTLE_WAIT_CAP_SECONDS) == (
        0.25,
        2.0,
    )
    assert trigger_functions.throttle_wait_ms(wait, 0.0) == 0
    assert trigger_functions.throttle_wait_ms(wait, 0.5) == cap_ms // 2
    assert trigger_functions.throttle_wait_ms(wait, 0.999_999) == cap_ms - 1


def test_the_throttling_codes_are_step_functions_own(trigger_functions: ModuleType) -> None:
    # botocore's one throttling code that Step Functions sends, and its modeled KMS throttle
    codes = trigger_functions.THROTTLING_ERROR_CODES
    assert isinstance(codes, frozenset)
    assert codes == {"ThrottlingException", "KmsThrottlingException"}


def test_a_run_without_a_clock_never_waits(trigger: ModuleType) -> None:
    # A Run built outside a Lambda invocation (a benchmark, a tool) has no time to wait in: a
    # throttled start fails as soon as botocore's attempts are spent (no real sleep here).
    refuse_start_for(trigger, "a.csv")
    run = trigger.Run(trigger.SFN, trigger.CONFIG, trigger.logger)

    outcome = trigger.process_records([s3_record("a.csv")], run)

    assert [failure.error_code for failure in outcome.failed] == ["ThrottlingException"]
    assert run.throttle_waits == 0


def test_a_clock_that_stands_still_still_runs_out_of_time(trigger: ModuleType) -> None:
    # Given a context whose remaining time never moves (a test double), the waits count against it
    refuse_start_for(trigger, "a.csv")
    slept: list[float] = []
    clock = trigger.Clock(remaining_ms=lambda: 30_000, sleep=slept.append, jitter=lambda: 1.0)
    run = trigger.Run(trigger.SFN, trigger.CONFIG, trigger.logger, clock=clock)

    outcome = trigger.process_records([s3_record("a.csv")], run)

    assert len(outcome.failed) == 1
    assert slept == [0.25, 0.5, 1.0] + [2.0] * 11
    assert run.throttle_waits == 14


# --- two notifications of one object in a batch -------------------------------------------------


def test_two_messages_for_one_execution_call_start_execution_once(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given S3 delivered one notification twice (another sequencer, same object version)
    calls = count_starts(trigger)
    event = sqs_event(
        s3_event(s3_record("report.csv", sequencer="01")), s3_event(s3_record("report.csv", sequencer="02"))
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then StartExecution is called once, and the second message is a duplicate
    assert response == {"batchItemFailures": []}
    assert len(calls) == 1
    assert len(executions(sfn, state_machine_arn)) == 1
    output = read_output()
    assert (output.metrics["StartedExecutions"], output.metrics["DuplicateExecutions"]) == (1, 1)
    [log] = output.lines("An earlier notification of this batch started the execution; duplicate")
    assert log["message_id"] == "message-1"


def test_the_second_message_for_an_execution_fails_with_the_first(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
) -> None:
    refuse_start_for(trigger, "report.csv")
    calls = count_starts(trigger)
    event = sqs_event(
        s3_event(s3_record("report.csv", sequencer="01")),
        s3_event(s3_record("other.csv", sequencer="02")),
        s3_event(s3_record("report.csv", sequencer="03")),
    )

    response = trigger.lambda_handler(event, lambda_context)

    assert failures(response) == ["message-0", "message-2"]
    # report.csv once and once after each wait (all in message-0), other.csv once
    assert len(calls) == len(simulated_time.waits) + 2
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["other.csv"]


# --- EXPRESS workflows: no execution names kept, no DescribeExecution ---------------------------


@pytest.fixture
def express_state_machine_arn(sfn: Any) -> str:
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return sfn.create_state_machine(
        name="ingestion-express",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/ingestion-state-machine",
        type="EXPRESS",
    )["stateMachineArn"]


@pytest.fixture
def express_trigger(
    load_function: Callable[..., ModuleType],
    express_state_machine_arn: str,
    alert_topic: SubscribedTopic,
    simulated_time: SimulatedTime,
    monkeypatch: pytest.MonkeyPatch,
) -> ModuleType:
    """The trigger of an EXPRESS state machine (``WORKFLOW_TYPE=EXPRESS``, as Terraform sets it)."""
    module = load_function(
        "lambda_trigger",
        STATE_MACHINE_ARN=express_state_machine_arn,
        ALERT_TOPIC_ARN=alert_topic.arn,
        UPLOAD_BUCKET=BUCKET,
        WORKFLOW_TYPE="EXPRESS",
    )
    module.logger.logger_handler.setStream(CurrentStdout())
    simulate_time(module, simulated_time, monkeypatch)
    return module


def record_describes(trigger: ModuleType) -> list[str]:
    """The ARNs of every DescribeExecution call the module's client makes from now on."""
    arns: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        arns.append(params["executionArn"])

    trigger.SFN.meta.events.register_first("before-parameter-build.sfn.DescribeExecution", record)
    return arns


def test_an_express_start_that_fails_reports_its_message_failed_without_describing_it(
    express_trigger: ModuleType,
    sfn: Any,
    express_state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    # Given an earlier delivery started the object's execution (STANDARD would find it with
    # DescribeExecution and call this delivery a duplicate), and StartExecution is now throttled
    event = sqs_event(s3_event(s3_record("twice.csv")))
    assert express_trigger.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    read_output()
    describes = record_describes(express_trigger)
    refuse_start_for(express_trigger, "twice.csv")

    # When a second delivery of the notification arrives
    response = express_trigger.lambda_handler(event, lambda_context)

    # Then its message is reported failed (it comes back), and no DescribeExecution was called
    assert failures(response) == ["message-0"]
    assert describes == []
    assert len(executions(sfn, express_state_machine_arn)) == 1
    output = read_output()
    [error] = output.lines("StartExecution failed")
    assert (error["message_id"], error["error_code"], error["level"]) == (
        "message-0",
        "ThrottlingException",
        "ERROR",
    )
    assert output.lines("DescribeExecution failed") == []
    [summary] = output.lines("Batch summary")
    assert summary["workflow_type"] == "EXPRESS"
    assert (summary["summary"]["failed_starts"], summary["summary"]["duplicates"]) == (1, 0)
    # after the trigger waited (EXPRESS too) until the deadline margin
    assert summary["summary"]["throttle_waits"] == len(simulated_time.waits) > 0
    assert (output.metrics["FailedStarts"], output.metrics["FailedMessages"]) == (1, 1)


def test_an_express_start_throttled_twice_waits_and_its_message_succeeds(
    express_trigger: ModuleType,
    sfn: Any,
    express_state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    simulated_time: SimulatedTime,
    read_output: Callable[[], Output],
) -> None:
    throttle_start_for(express_trigger, "busy.csv", times=2)
    describes = record_describes(express_trigger)

    response = express_trigger.lambda_handler(sqs_event(s3_event(s3_record("busy.csv"))), lambda_context)

    assert response == {"batchItemFailures": []}
    assert len(executions(sfn, express_state_machine_arn)) == 1
    assert describes == []
    assert len(simulated_time.waits) == 2
    output = read_output()
    [log] = output.lines("StartExecution answered after throttle waits")
    assert (log["attempts"], log["waited_ms"]) == (3, sum(simulated_time.waited_ms))
    [summary] = output.lines("Batch summary")
    assert summary["workflow_type"] == "EXPRESS"
    assert (summary["summary"]["started"], summary["summary"]["throttle_waits"]) == (1, 2)


def test_an_express_start_that_times_out_fails_without_describing_it(
    express_trigger: ModuleType, lambda_context: FakeLambdaContext, read_output: Callable[[], Output]
) -> None:
    # A client-side error (no AWS error code): STANDARD would look the execution up, EXPRESS cannot.
    def time_out(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://states.us-east-1.amazonaws.com")

    express_trigger.SFN.meta.events.register(START_EXECUTION_PARAMS, time_out)
    describes = record_describes(express_trigger)

    response = express_trigger.lambda_handler(sqs_event(s3_event(s3_record("slow.csv"))), lambda_context)

    assert failures(response) == ["message-0"]
    assert describes == []
    [error] = read_output().lines("StartExecution failed")
    assert error["error_code"] == "ReadTimeoutError"


def test_an_express_direct_invocation_whose_start_fails_raises_without_describing(
    express_trigger: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    refuse_start_for(express_trigger, "throttled.csv")
    describes = record_describes(express_trigger)

    with pytest.raises(
        express_trigger.StartExecutionError, match=r"'throttled\.csv' \(ThrottlingException\)"
    ):
        express_trigger.lambda_handler(s3_event(s3_record("throttled.csv")), lambda_context)

    assert describes == []


def test_an_express_batch_with_one_notification_twice_calls_start_execution_once(
    express_trigger: ModuleType,
    sfn: Any,
    express_state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given S3 delivered one notification twice into one batch (Express would start both)
    calls = count_starts(express_trigger)
    event = sqs_event(
        s3_event(s3_record("report.csv", sequencer="01")), s3_event(s3_record("report.csv", sequencer="02"))
    )

    response = express_trigger.lambda_handler(event, lambda_context)

    # Then StartExecution is called once, and the second message is a duplicate
    assert response == {"batchItemFailures": []}
    assert len(calls) == 1
    assert len(executions(sfn, express_state_machine_arn)) == 1
    output = read_output()
    assert (output.metrics["StartedExecutions"], output.metrics["DuplicateExecutions"]) == (1, 1)
    [summary] = output.lines("Batch summary")
    assert summary["workflow_type"] == "EXPRESS"


def test_in_express_the_second_message_for_an_execution_fails_with_the_first(
    express_trigger: ModuleType, lambda_context: FakeLambdaContext, simulated_time: SimulatedTime
) -> None:
    refuse_start_for(express_trigger, "report.csv")
    calls = count_starts(express_trigger)
    describes = record_describes(express_trigger)
    event = sqs_event(
        s3_event(s3_record("report.csv", sequencer="01")),
        s3_event(s3_record("other.csv", sequencer="02")),
        s3_event(s3_record("report.csv", sequencer="03")),
    )

    response = express_trigger.lambda_handler(event, lambda_context)

    assert failures(response) == ["message-0", "message-2"]
    # report.csv once and once after each wait (all in message-0), other.csv once
    assert len(calls) == len(simulated_time.waits) + 2
    assert describes == []


def test_an_express_direct_invocation_logs_its_workflow_type(
    express_trigger: ModuleType, lambda_context: FakeLambdaContext, read_output: Callable[[], Output]
) -> None:
    summary = express_trigger.lambda_handler(s3_event(s3_record("a.csv")), lambda_context)

    assert summary["started"] == 1
    [line] = read_output().lines("Invocation summary")
    assert (line["workflow_type"], line["summary"]["started"]) == ("EXPRESS", 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "STANDARD", id="unset"),
        pytest.param("", "STANDARD", id="empty"),
        pytest.param("STANDARD", "STANDARD", id="standard"),
        pytest.param("EXPRESS", "EXPRESS", id="express"),
    ],
)
def test_the_workflow_type_setting_and_its_default(
    load_function: Callable[..., ModuleType], value: str | None, expected: str
) -> None:
    settings = {
        "STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
        "ALERT_TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:unused",
        "UPLOAD_BUCKET": BUCKET,
    }
    if value is not None:
        settings["WORKFLOW_TYPE"] = value

    trigger = load_function("lambda_trigger", **settings)

    assert trigger.CONFIG.workflow_type is trigger.WorkflowType(expected)


@pytest.mark.parametrize("value", ["express", "Standard", "EXPRESS ", "BOTH"])
def test_an_unknown_workflow_type_is_a_configuration_error_naming_the_allowed_values(
    load_function: Callable[..., ModuleType], value: str
) -> None:
    with pytest.raises(RuntimeError) as caught:
        load_function(
            "lambda_trigger",
            STATE_MACHINE_ARN=f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
            ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:123456789012:unused",
            UPLOAD_BUCKET=BUCKET,
            WORKFLOW_TYPE=value,
        )

    assert type(caught.value).__name__ == "ConfigurationError"
    assert str(caught.value) == f"WORKFLOW_TYPE must be STANDARD or EXPRESS (unset: STANDARD), got {value!r}"


# --- invalid messages: alerted once, deleted ----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param("not json {", "the message body is not JSON (Expecting value", id="not-json"),
        pytest.param("", "the message body is not JSON (Expecting value", id="empty"),
        pytest.param("[1, 2]", "the message body is a JSON array, not an S3 event", id="array"),
        pytest.param('"text"', "the message body is a JSON string, not an S3 event", id="string"),
        pytest.param("null", "the message body is a JSON null, not an S3 event", id="null"),
        pytest.param(
            '{"Message": "x"}',
            "the message body has no 'Records' array and is not an s3:TestEvent",
            id="no-records",
        ),
        pytest.param(
            '{"Records": {}}',
            "the message body's 'Records' is a JSON object, not an array",
            id="records-object",
        ),
        pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deeply-nested"),
    ],
)
def test_a_message_that_is_not_an_s3_event_is_logged_alerted_and_deleted(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
    body: str,
    reason: str,
) -> None:
    event = sqs_event(s3_event(s3_record("fine.csv")), body)

    response = trigger.lambda_handler(event, lambda_context)

    # Then it is deleted (never retried forever), and the valid message still starts
    assert response == {"batchItemFailures": []}
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["fine.csv"]
    # And it is logged once with its message id and the reason
    output = read_output()
    [log] = output.lines("Invalid message: not an S3 event notification")
    assert (log["message_id"], log["level"]) == ("message-1", "WARNING")
    assert log["reason"].startswith(reason) or reason in log["reason"]
    assert output.metrics["InvalidMessages"] == 1
    # And alerted once
    [alert] = alert_topic.received()
    assert alert["Subject"] == "Ingestion deleted 1 invalid queue message(s)"
    assert "- message id: message-1\n" in alert["Message"]
    assert f"  reason: {log['reason']}\n" in alert["Message"]


def test_a_message_without_a_body_is_invalid(
    trigger: ModuleType, alert_topic: SubscribedTopic, lambda_context: FakeLambdaContext
) -> None:
    event = sqs_event("{}")
    del event["Records"][0]["body"]

    assert trigger.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    [alert] = alert_topic.received()
    assert "reason: the message body is a null, not a string\n" in alert["Message"]


def test_one_alert_per_batch_lists_the_rejected_keys_and_the_invalid_messages(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given a batch with a rejected key, an invalid message, a good key, and a throttled message that
    # also carries a rejected key
    refusal = refuse_start_for(trigger, "throttled.csv")
    event = sqs_event(
        s3_event(s3_record("..%2Fetc%2Fpasswd", sequencer="01")),
        "garbage\u202e",
        s3_event(s3_record("fine.csv", sequencer="03")),
        s3_event(s3_record("throttled.csv", sequencer="04"), s3_record("back%5Cslash.csv", sequencer="05")),
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then only the throttled message comes back
    assert failures(response) == ["message-3"]
    # And one alert lists the messages that completed; the failed one is alerted when it completes
    [alert] = alert_topic.received()
    message = alert["Message"]
    assert alert["Subject"] == (
        f"Ingestion rejected 1 S3 object key(s) in {BUCKET} and deleted 1 invalid queue message(s)"
    )
    assert '  key: "../etc/passwd"\n' in message
    assert "- message id: message-1\n  reason: the message body is not JSON" in message
    assert '  body: "garbage\\u202e"\n' in message
    assert "back" not in message
    metrics = read_output().metrics
    assert (metrics["RejectedKeys"], metrics["InvalidMessages"], metrics["FailedMessages"]) == (1, 1, 1)

    # When the throttled message comes back and starts
    trigger.SFN.meta.events.unregister(START_EXECUTION_PARAMS, refusal)
    redelivery = {"Records": [event["Records"][3]]}
    assert trigger.lambda_handler(redelivery, lambda_context) == {"batchItemFailures": []}

    # Then its rejected key is alerted then, once
    [late_alert] = alert_topic.received()
    assert '  key: "back\\\\slash.csv"\n' in late_alert["Message"]
    assert "passwd" not in late_alert["Message"]


def test_when_the_alert_cannot_be_published_its_messages_come_back(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given SNS refuses the alert
    refusal = refuse_publish(trigger)
    event = sqs_event(
        s3_event(s3_record("..", sequencer="01")),
        s3_event(s3_record("fine.csv", sequencer="02")),
        "not json",
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then the messages the alert covered are reported failed (nothing is silently dropped) ...
    assert failures(response) == ["message-0", "message-2"]
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["fine.csv"]
    output = read_output()
    [error] = output.lines(
        "Alert could not be published; the messages it covered are reported failed and come back"
    )
    assert (error["error_code"], error["message_ids"]) == (
        "KMSThrottlingException",
        ["message-0", "message-2"],
    )
    metrics = output.metrics
    assert (metrics["AlertPublishFailures"], metrics["FailedMessages"]) == (1, 2)
    assert (metrics["RejectedKeys"], metrics["InvalidMessages"]) == (0, 0)

    # ... and alerted when they come back
    trigger.SNS.meta.events.unregister("before-parameter-build.sns.Publish", refusal)
    redelivery = {"Records": [event["Records"][0], event["Records"][2]]}
    assert trigger.lambda_handler(redelivery, lambda_context) == {"batchItemFailures": []}
    [alert] = alert_topic.received()
    assert "rejected 1 S3 object key(s)" in alert["Subject"]
    assert "deleted 1 invalid queue message(s)" in alert["Subject"]


# --- records of another origin: rejected, alerted, deleted ---------------------------------------


def s3_record_with(
    raw_key: str, sequencer: str, bucket: str, fields: dict[str, str | None]
) -> dict[str, Any]:
    """:func:`s3_record` of ``bucket`` with top-level ``fields`` set (None: removed)."""
    record = s3_record(raw_key, bucket=bucket, sequencer=sequencer)
    for name, value in fields.items():
        if value is None:
            del record[name]
        else:
            record[name] = value
    return record


OTHER_BUCKET_REASON = "bucket 'someone-elses-bucket' is not the pipeline's upload bucket 'uploads-bucket'"
OTHER_REGION_REASON = f"awsRegion '{OTHER_REGION}' is not the stack's region '{REGION}'"


@pytest.mark.parametrize(
    ("bucket", "fields", "reason"),
    [
        pytest.param(
            BUCKET,
            {"eventSource": "aws:sqs"},
            "eventSource 'aws:sqs' is not S3's 'aws:s3'",
            id="other-event-source",
        ),
        pytest.param(
            BUCKET,
            {"eventSource": None},
            "eventSource is missing (S3 always sends it; expected S3's 'aws:s3')",
            id="missing-event-source",
        ),
        pytest.param("someone-elses-bucket", {}, OTHER_BUCKET_REASON, id="other-bucket"),
        pytest.param(BUCKET, {"awsRegion": OTHER_REGION}, OTHER_REGION_REASON, id="other-region"),
        pytest.param(
            BUCKET,
            {"awsRegion": None},
            f"awsRegion is missing (S3 always sends it; expected the stack's region '{REGION}')",
            id="missing-region",
        ),
        pytest.param(
            "someone-elses-bucket",
            {"eventSource": "aws:kinesis", "awsRegion": OTHER_REGION},
            f"eventSource 'aws:kinesis' is not S3's 'aws:s3'; {OTHER_REGION_REASON}; {OTHER_BUCKET_REASON}",
            id="all-three",
        ),
    ],
)
def test_a_record_of_another_origin_starts_nothing_and_is_alerted_and_deleted(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    alert_topic: SubscribedTopic,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
    bucket: str,
    fields: dict[str, str | None],
    reason: str,
) -> None:
    # Given a batch whose first message carries a record that is not S3's notification of the
    # pipeline's bucket in the stack's region, beside a valid record, and a second valid message
    calls = count_starts(trigger)
    event = sqs_event(
        s3_event(
            s3_record_with("forged+row.csv", "01", bucket, fields), s3_record("beside.csv", sequencer="02")
        ),
        s3_event(s3_record("next.csv", sequencer="03")),
    )

    response = trigger.lambda_handler(event, lambda_context)

    # Then nothing starts for it and no message comes back (retrying cannot help)
    assert response == {"batchItemFailures": []}
    assert sorted(execution["key"] for execution in executions(sfn, state_machine_arn).values()) == [
        "beside.csv",
        "next.csv",
    ]
    assert len(calls) == 2
    # And it is logged once with its message id and the reason
    output = read_output()
    [log] = output.lines("Rejected S3 object key")
    assert (log["message_id"], log["bucket"], log["key"], log["reason"], log["level"]) == (
        "message-0",
        bucket,
        "forged row.csv",
        reason,
        "WARNING",
    )
    assert (output.metrics["RejectedKeys"], output.metrics["StartedExecutions"]) == (1, 2)
    assert output.metrics["FailedMessages"] == 0
    # And one alert lists its key with the reason
    [alert] = alert_topic.received()
    assert alert["Subject"] == f"Ingestion rejected 1 S3 object key(s) in {bucket}"
    assert f'  key: "forged row.csv"\n  reason: {reason}\n' in alert["Message"]
    assert "beside.csv" not in alert["Message"]


# --- the deadline ---------------------------------------------------------------------------------


def test_messages_are_not_attempted_when_the_invocation_is_almost_over(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
) -> None:
    # Given the first message takes the invocation below the deadline margin
    calls = count_starts(trigger)
    margin = trigger.CONFIG.deadline_margin_ms
    context = CountdownContext(remaining=[20_000, margin - 1])
    event = sqs_event(*(s3_event(s3_record(f"{index}.csv", sequencer=f"0{index}")) for index in range(4)))

    response = trigger.lambda_handler(event, context)

    # Then the other messages are reported failed without being attempted
    assert failures(response) == ["message-1", "message-2", "message-3"]
    assert len(calls) == 1
    assert [execution["key"] for execution in executions(sfn, state_machine_arn).values()] == ["0.csv"]
    # And this is logged once, with the count
    output = read_output()
    [log] = output.lines(
        "Deadline near: messages not attempted; they come back after their visibility timeout"
    )
    assert (log["deferred"], log["margin_ms"], log["level"]) == (3, margin, "WARNING")
    assert (output.metrics["DeadlineDeferred"], output.metrics["FailedMessages"]) == (3, 3)


def test_the_default_deadline_margin_and_its_setting(
    load_function: Callable[..., ModuleType], state_machine_arn: str, alert_topic: SubscribedTopic
) -> None:
    settings = {
        "STATE_MACHINE_ARN": state_machine_arn,
        "ALERT_TOPIC_ARN": alert_topic.arn,
        "UPLOAD_BUCKET": BUCKET,
    }
    default = load_function("lambda_trigger", **settings)
    assert default.CONFIG.deadline_margin_ms == default.DEFAULT_DEADLINE_MARGIN_MS == 5_000

    configured = load_function("lambda_trigger", **settings, DEADLINE_MARGIN_MS="750")
    assert configured.CONFIG.deadline_margin_ms == 750

    context = FakeLambdaContext(remaining_time_in_millis=1_000)
    assert configured.lambda_handler(sqs_event(S3_TEST_EVENT), context) == {"batchItemFailures": []}


@pytest.mark.parametrize("value", ["-1", "2s", "1.5", "٣"])
def test_a_bad_deadline_margin_is_a_configuration_error(
    load_function: Callable[..., ModuleType], value: str
) -> None:
    with pytest.raises(RuntimeError, match="DEADLINE_MARGIN_MS must be a whole number") as caught:
        load_function(
            "lambda_trigger",
            STATE_MACHINE_ARN=f"arn:aws:states:{REGION}:123456789012:stateMachine:unused",
            ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:123456789012:unused",
            UPLOAD_BUCKET=BUCKET,
            DEADLINE_MARGIN_MS=value,
        )

    assert type(caught.value).__name__ == "ConfigurationError"


def test_the_step_functions_client_paces_itself_and_gives_up_early(trigger_functions: ModuleType) -> None:
    config = trigger_functions.SFN.meta.config

    # adaptive: client-side rate limiting that backs off on ThrottlingException; 4 calls in all
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (2, 3)
    assert trigger_functions.SNS.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


# --- events that are neither a batch nor an S3 event ----------------------------------------------


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        pytest.param(
            {"detail": {}}, "the event has no 'Records' array and is not an s3:TestEvent", id="no-records"
        ),
        pytest.param(
            {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:s3"}]},
            "the event's 'Records' are neither all SQS messages",
            id="mixed",
        ),
        pytest.param({"Records": [{"eventSource": "aws:kinesis"}]}, "neither all SQS messages", id="kinesis"),
        pytest.param({"Records": [{"s3": {}}]}, "neither all SQS messages", id="no-event-source"),
    ],
)
def test_an_event_that_is_neither_a_batch_nor_an_s3_event_is_a_typed_error(
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: FakeLambdaContext,
    read_output: Callable[[], Output],
    event: dict[str, Any],
    problem: str,
) -> None:
    with pytest.raises(trigger.InvalidEventError, match=re.escape(problem)):
        trigger.lambda_handler(event, lambda_context)

    assert executions(sfn, state_machine_arn) == {}
    assert read_output().metrics == {"InvalidEvents": 1}


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        pytest.param({"Records": []}, "SQS_BATCH", id="empty"),
        pytest.param(sqs_event("x"), "SQS_BATCH", id="sqs"),
        pytest.param(s3_event(s3_record("a.csv")), "S3_EVENT", id="s3"),
        pytest.param(s3_event(s3_record("a.csv"), "not-a-record"), "S3_EVENT", id="s3-with-junk"),
        pytest.param(S3_TEST_EVENT, "S3_EVENT", id="test-event"),
    ],
)
def test_event_kinds(trigger_functions: ModuleType, event: dict[str, Any], kind: str) -> None:
    assert trigger_functions.event_kind(event) is trigger_functions.EventKind[kind]


# --- the alert's format with invalid messages ------------------------------------------------------


def test_an_invalid_messages_body_is_shown_escaped_and_shortened(trigger_functions: ModuleType) -> None:
    message = trigger_functions.InvalidMessage(message_id="m\u202e1", reason="bad", body="\u200b" + "x" * 500)

    subject, text = trigger_functions.build_alert([], [message])

    assert subject == "Ingestion deleted 1 invalid queue message(s)"
    assert '- message id: "m\\u202e1"\n' in text
    assert '  body: "\\u200b' + "x" * 199 + '..."\n' in text
    assert "\u202e" not in text
    assert "\u200b" not in text
    assert "Only the upload bucket's notifications belong on the queue" in text


def test_an_alert_of_many_invalid_messages_is_truncated_below_the_sns_limit(
    trigger_functions: ModuleType,
) -> None:
    rejections = [
        trigger_functions.Rejection(bucket=BUCKET, key="k" * 1000, reason="bad", event_time=EVENT_TIME)
    ] * 100
    invalid = [
        trigger_functions.InvalidMessage(message_id=f"m-{index}", reason="bad", body="x" * 10_000)
        for index in range(2000)
    ]

    _, text = trigger_functions.build_alert(rejections, invalid)

    assert len(text.encode("utf-8")) <= trigger_functions.MAX_ALERT_BYTES
    assert text.count("\n- bucket: ") == 100
    listed = text.count("\n- message id: ")
    assert text.endswith(f"\n... and {2000 - listed} more\n")
