"""Trigger Lambda against moto: S3 notification in, Step Functions executions and SNS alerts out."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from tests.conftest import FakeLambdaContext, SubscribedTopic

REGION = "us-east-1"
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
    """One record as S3 sends it (the key form-URL-encoded)."""
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


@pytest.fixture
def trigger(
    load_function: Callable[..., ModuleType], state_machine_arn: str, alert_topic: SubscribedTopic
) -> ModuleType:
    return load_function(
        "lambda_trigger",
        STATE_MACHINE_ARN=state_machine_arn,
        ALERT_TOPIC_ARN=alert_topic.arn,
        UPLOAD_BUCKET=BUCKET,
    )


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
    """Make StartExecution fail with ``code`` for one key (injected on the module's own client)."""

    def refuse(params: dict[str, Any], **_: Any) -> None:
        if json.loads(params["input"])["key"] == key:
            raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "StartExecution")

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


def test_a_bucket_name_that_is_not_plain_ascii_is_shown_escaped(trigger_functions: ModuleType) -> None:
    rejection = trigger_functions.Rejection(
        bucket="evil\u202ebucket", key="a.csv", reason="bad", event_time="2026\u2028-01-01"
    )

    _, message = trigger_functions.build_rejection_alert([rejection])

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
        f"the trigger expects an S3 event notification, a JSON object; received a JSON {received}: {shown}"
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
        "executions": [],
    }
    assert executions(sfn, state_machine_arn) == {}
    assert alert_topic.received() == []
    assert "Ignoring event without Records" in caplog.messages


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
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given StartExecution is throttled for one key, and another key is invalid
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

    subject, _ = trigger_functions.build_rejection_alert([rejection])

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

    _, message = trigger.build_rejection_alert(rejections)

    assert len(message.encode("utf-8")) <= trigger.MAX_ALERT_BYTES < 256 * 1024
    listed = message.count("\n- bucket: ")
    assert 0 < listed < 400
    assert message.endswith(f"\n... and {400 - listed} more\n")
    # And SNS accepts it
    trigger.publish_rejections(trigger.SNS, alert_topic.arn, rejections)
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
