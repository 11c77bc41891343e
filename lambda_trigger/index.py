"""Trigger Lambda: S3 ObjectCreated notifications -> one Step Functions execution per object.

parse -> validate -> act -> report:
an event that is not a JSON object raises ``InvalidEventError``; every record is parsed, its bucket
checked against the configured upload bucket and its key decoded and validated; an accepted key
starts the state machine under its object version's deterministic execution name
(``lambda_common/naming.py``: S3's at-least-once redeliveries are idempotent, and the reconcile
tool computes the same name) with the contract's input (``lambda_common/contract.py``); folder
markers (a key ending in ``/``, size 0) are ignored and counted; rejected records start nothing and
are reported together in one SNS alert; failed starts make the invocation fail after everything
else is done, so Lambda retries it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from lambda_common.alerts import (
    MAX_ALERT_BYTES,
    MAX_SUBJECT_CHARS,
    display_name,
    display_text,
    truncate_listing,
)
from lambda_common.contract import ExecutionInput
from lambda_common.key_validation import InvalidKeyError, decode_s3_key, is_folder_marker, validate_key
from lambda_common.naming import execution_arn, execution_name

# Powertools has no built-in correlation path for S3 notifications; S3's request id ties the log
# lines to the PutObject call in CloudTrail and S3 access logs.
S3_REQUEST_ID_PATH: Final = 'Records[0].responseElements."x-amz-request-id"'

_SHOWN_EVENT_CHARS: Final = 100
_JSON_TYPE_NAMES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}

logger = Logger()
metrics = Metrics()


class ConfigurationError(RuntimeError):
    """The function's environment is missing a setting it cannot run without."""


class InvalidEventError(ValueError):
    """The invocation's event is not an S3 notification (a JSON object); nothing was started.

    ``received`` names the JSON type that came instead (``array``, ``string``, ``null``...).
    """

    def __init__(self, problem: str, value: object) -> None:
        self.received = _JSON_TYPE_NAMES.get(type(value), type(value).__name__)
        shown = json.dumps(value, ensure_ascii=True, default=repr)
        if len(shown) > _SHOWN_EVENT_CHARS:
            shown = f"{shown[:_SHOWN_EVENT_CHARS]}..."
        super().__init__(f"{problem}; received a JSON {self.received}: {shown}")


class StartExecutionError(RuntimeError):
    """StartExecution failed for at least one accepted key; the invocation must be retried."""

    def __init__(self, failures: list[FailedStart]) -> None:
        listed = ", ".join(f"{failure.key!r} ({failure.error_code})" for failure in failures)
        super().__init__(
            f"could not start the state machine for {len(failures)} object(s): {listed}; "
            "the invocation fails so that Lambda retries it (execution names are deterministic)"
        )
        self.failures = failures


@dataclass(frozen=True)
class TriggerConfig:
    state_machine_arn: str
    alert_topic_arn: str
    upload_bucket: str
    """The one bucket whose notifications start executions; a record for any other is rejected."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TriggerConfig:
        required = ("STATE_MACHINE_ARN", "ALERT_TOPIC_ARN", "UPLOAD_BUCKET")
        missing = [name for name in required if not environ.get(name)]
        if missing:
            raise ConfigurationError(f"environment variable(s) not set: {', '.join(missing)}")
        return cls(
            state_machine_arn=environ["STATE_MACHINE_ARN"],
            alert_topic_arn=environ["ALERT_TOPIC_ARN"],
            upload_bucket=environ["UPLOAD_BUCKET"],
        )


class InvocationSummary(TypedDict):
    started: int
    duplicates: int
    rejected: int
    ignored: int
    folder_markers: int
    executions: list[str]


@dataclass(frozen=True)
class ObjectCreated:
    """One ObjectCreated record, key still form-URL-encoded as S3 sent it."""

    bucket: str
    raw_key: str
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: str
    event_name: str


@dataclass(frozen=True)
class Rejection:
    bucket: str
    key: str
    reason: str
    event_time: str


@dataclass(frozen=True)
class FailedStart:
    key: str
    execution_name: str
    error_code: str


@dataclass
class Outcome:
    started: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    failed: list[FailedStart] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    ignored: int = 0
    folder_markers: int = 0


class MalformedRecordError(ValueError):
    """An ObjectCreated record without the fields every S3 notification carries."""

    def __init__(self, reason: str, *, bucket: str, key: str, event_time: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bucket = bucket
        self.key = key
        self.event_time = event_time


# --- parse -------------------------------------------------------------------------------------


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_record(record: Mapping[str, Any]) -> ObjectCreated:
    """Extract the fields the pipeline uses from one S3 notification record."""
    s3 = record.get("s3") if isinstance(record.get("s3"), Mapping) else {}
    bucket_info = s3.get("bucket") if isinstance(s3.get("bucket"), Mapping) else {}
    object_info = s3.get("object") if isinstance(s3.get("object"), Mapping) else {}
    bucket = bucket_info.get("name")
    raw_key = object_info.get("key")
    event_time = record.get("eventTime")
    problems = [
        f"{path} is missing, empty or not a string"
        for path, value in (("s3.bucket.name", bucket), ("s3.object.key", raw_key), ("eventTime", event_time))
        if not isinstance(value, str) or not value
    ]
    if problems:
        raise MalformedRecordError(
            f"malformed S3 notification record: {'; '.join(problems)}",
            bucket=bucket if isinstance(bucket, str) else "",
            key=raw_key if isinstance(raw_key, str) else "",
            event_time=event_time if isinstance(event_time, str) else "",
        )
    size = object_info.get("size")
    return ObjectCreated(
        bucket=bucket,
        raw_key=raw_key,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=_optional_str(object_info.get("eTag")),
        version_id=_optional_str(object_info.get("versionId")),
        sequencer=_optional_str(object_info.get("sequencer")),
        event_time=event_time,
        event_name=record["eventName"],
    )


def is_object_created(record: object) -> bool:
    event_name = record.get("eventName") if isinstance(record, Mapping) else None
    return isinstance(event_name, str) and event_name.startswith("ObjectCreated:")


# --- act ---------------------------------------------------------------------------------------


def build_execution_input(event: ObjectCreated, key: str) -> ExecutionInput:
    return ExecutionInput(
        bucket=event.bucket,
        key=key,
        size=event.size,
        etag=event.etag,
        version_id=event.version_id,
        sequencer=event.sequencer,
        event_time=event.event_time,
        event_name=event.event_name,
    )


def start_execution(sfn: BaseClient, state_machine_arn: str, name: str, payload: ExecutionInput) -> bool:
    """Start one execution; return False when it already exists (a duplicate notification)."""
    try:
        sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload, ensure_ascii=False)
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return False
        raise
    return True


def execution_exists(sfn: BaseClient, state_machine_arn: str, name: str) -> bool:
    """Whether execution ``name`` exists: another delivery of the same event may have started it.

    S3 delivers an event at least once; when this delivery's StartExecution keeps failing (e.g.
    throttled beyond botocore's retries) while another delivery already started the execution, the
    object is being ingested and this delivery is a duplicate, not a failure to alert about.
    """
    try:
        sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code != "ExecutionDoesNotExist":
            logger.warning("DescribeExecution failed", extra={"execution_name": name, "error_code": code})
        return False
    return True


def _reject(outcome: Outcome, rejection: Rejection) -> None:
    logger.warning(
        "Rejected S3 object key",
        extra={
            "bucket": rejection.bucket,
            "key": rejection.key,
            "reason": rejection.reason,
            "event_time": rejection.event_time,
        },
    )
    outcome.rejected.append(rejection)


def _decoded_for_display(raw_key: str) -> str:
    try:
        return decode_s3_key(raw_key)
    except InvalidKeyError:
        return raw_key


def process_record(
    record: Mapping[str, Any], sfn: BaseClient, config: TriggerConfig, outcome: Outcome
) -> None:
    try:
        event = parse_record(record)
    except MalformedRecordError as err:
        _reject(outcome, Rejection(err.bucket, err.key, err.reason, err.event_time))
        return
    if event.bucket != config.upload_bucket:
        reason = f"bucket {event.bucket!r} is not the pipeline's upload bucket {config.upload_bucket!r}"
        _reject(
            outcome, Rejection(event.bucket, _decoded_for_display(event.raw_key), reason, event.event_time)
        )
        return
    try:
        key = validate_key(decode_s3_key(event.raw_key))
    except InvalidKeyError as err:
        _reject(outcome, Rejection(event.bucket, err.key, err.reason, event.event_time))
        return
    if is_folder_marker(key, event.size):
        logger.info("Ignoring folder marker", extra={"bucket": event.bucket, "key": key})
        outcome.folder_markers += 1
        return

    name = execution_name(event.bucket, key, event.version_id, event.sequencer)
    log_fields = {"bucket": event.bucket, "key": key, "execution_name": name}
    try:
        started = start_execution(sfn, config.state_machine_arn, name, build_execution_input(event, key))
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if execution_exists(sfn, config.state_machine_arn, name):
            logger.info(
                "StartExecution failed, but another delivery started the execution; duplicate",
                extra={**log_fields, "error_code": code},
            )
            outcome.executions.append(name)
            outcome.duplicates.append(name)
            return
        logger.error("StartExecution failed", extra={**log_fields, "error_code": code, "error": str(err)})
        outcome.failed.append(FailedStart(key=key, execution_name=name, error_code=code))
        return
    outcome.executions.append(name)
    if started:
        logger.info("Started execution", extra=log_fields)
        outcome.started.append(name)
    else:
        logger.info("Execution already exists; duplicate notification", extra=log_fields)
        outcome.duplicates.append(name)


def process_event(event: object, sfn: BaseClient, config: TriggerConfig) -> Outcome:
    """Handle every record; raise :class:`InvalidEventError` for an event that is not a JSON object,
    or whose ``Records`` is not an array (before anything is started)."""
    if not isinstance(event, Mapping):
        raise InvalidEventError("the trigger expects an S3 event notification, a JSON object", event)
    outcome = Outcome()
    if "Records" not in event:  # S3's s3:TestEvent, sent when notifications are configured
        logger.info("Ignoring event without Records", extra={"event_type": event.get("Event")})
        outcome.ignored += 1
        return outcome
    records = event["Records"]
    if not isinstance(records, list):
        raise InvalidEventError("the event's 'Records' must be an array of S3 notification records", records)
    for record in records:
        if not is_object_created(record):
            event_name = record.get("eventName") if isinstance(record, Mapping) else None
            logger.info(
                "Ignoring record that is not an ObjectCreated event", extra={"event_name": event_name}
            )
            outcome.ignored += 1
            continue
        process_record(record, sfn, config, outcome)
    return outcome


# --- report ------------------------------------------------------------------------------------


def safe_subject(text: str) -> str:
    """An SNS subject: ASCII, no control characters, at most 100 characters."""
    ascii_text = "".join(char if " " <= char <= "~" else "?" for char in text)
    if len(ascii_text) <= MAX_SUBJECT_CHARS:
        return ascii_text
    return ascii_text[: MAX_SUBJECT_CHARS - 3] + "..."


def build_rejection_alert(rejections: list[Rejection], max_bytes: int = MAX_ALERT_BYTES) -> tuple[str, str]:
    """Subject and plain-text body of the one alert listing every rejected key."""
    buckets = sorted({rejection.bucket for rejection in rejections})
    where = f" in {buckets[0]}" if len(buckets) == 1 else ""
    subject = safe_subject(f"Ingestion rejected {len(rejections)} S3 object key(s){where}")
    header = (
        f"The ingestion trigger rejected {len(rejections)} S3 object key(s); nothing was started for them.\n"
        "Rename each object to a valid key (or delete it) and upload it again.\n"
    )
    entries = [
        f"\n- bucket: {display_name(rejection.bucket)}\n  key: {display_text(rejection.key)}\n"
        f"  reason: {rejection.reason}\n  event time: {display_name(rejection.event_time)}\n"
        for rejection in rejections
    ]
    return subject, truncate_listing(header, entries, max_bytes, footer_prefix="\n")


def publish_rejections(sns: BaseClient, topic_arn: str, rejections: list[Rejection]) -> None:
    subject, message = build_rejection_alert(rejections)
    response = sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    logger.info(
        "Alert sent for rejected keys",
        extra={"rejected": len(rejections), "message_id": response.get("MessageId")},
    )


def record_metrics(outcome: Outcome) -> None:
    for name, value in (
        ("StartedExecutions", len(outcome.started)),
        ("DuplicateExecutions", len(outcome.duplicates)),
        ("RejectedKeys", len(outcome.rejected)),
        ("IgnoredRecords", outcome.ignored),
        ("IgnoredFolderMarkers", outcome.folder_markers),
        ("FailedStarts", len(outcome.failed)),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def summarize(outcome: Outcome) -> InvocationSummary:
    return InvocationSummary(
        started=len(outcome.started),
        duplicates=len(outcome.duplicates),
        rejected=len(outcome.rejected),
        ignored=outcome.ignored,
        folder_markers=outcome.folder_markers,
        executions=outcome.executions,
    )


CONFIG: Final = TriggerConfig.from_env(os.environ)
SFN: Final = boto3.client("stepfunctions")
SNS: Final = boto3.client("sns")


@logger.inject_lambda_context(correlation_id_path=S3_REQUEST_ID_PATH)
@metrics.log_metrics
def lambda_handler(event: object, context: LambdaContext) -> InvocationSummary:
    try:
        outcome = process_event(event, SFN, CONFIG)
    except InvalidEventError as err:
        logger.error("Invalid event", extra={"received": err.received, "reason": str(err)})
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        raise
    record_metrics(outcome)
    if outcome.rejected:
        publish_rejections(SNS, CONFIG.alert_topic_arn, outcome.rejected)
    if outcome.failed:
        raise StartExecutionError(outcome.failed)
    summary = summarize(outcome)
    logger.info("Invocation summary", extra={"summary": summary})
    return summary
