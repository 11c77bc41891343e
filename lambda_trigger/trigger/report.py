"""Report: the summaries, the batch's one SNS alert (rejected keys and invalid messages) and the
metrics. The logger, metrics and SNS client are the handler's, passed in.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from lambda_common.alerts import (
    MAX_ALERT_BYTES,
    MAX_SUBJECT_CHARS,
    display_name,
    display_text,
    truncate_listing,
)
from trigger.run import InvalidMessage, Outcome, Rejection, Run
from trigger.start import error_code


class InvocationSummary(TypedDict):
    """What a direct invocation returns."""

    started: int
    duplicates: int
    rejected: int
    ignored: int
    folder_markers: int
    throttle_waits: int
    executions: list[str]


class BatchSummary(TypedDict):
    """The summary line of a queue batch (its return value is the partial batch response)."""

    messages: int
    failed_messages: int
    deadline_deferred: int
    alert_failures: int
    started: int
    duplicates: int
    failed_starts: int
    invalid_messages: int
    rejected: int
    ignored: int
    folder_markers: int
    throttle_waits: int
    """Waits made for throttled starts (logged only, not a metric)."""


_SHOWN_BODY_CHARS: Final = 200


def safe_subject(text: str) -> str:
    """An SNS subject: ASCII, no control characters, at most 100 characters."""
    ascii_text = "".join(char if " " <= char <= "~" else "?" for char in text)
    if len(ascii_text) <= MAX_SUBJECT_CHARS:
        return ascii_text
    return ascii_text[: MAX_SUBJECT_CHARS - 3] + "..."


def _shown_body(body: str) -> str:
    return body if len(body) <= _SHOWN_BODY_CHARS else f"{body[:_SHOWN_BODY_CHARS]}..."


def build_alert(
    rejections: Sequence[Rejection],
    invalid_messages: Sequence[InvalidMessage] = (),
    max_bytes: int = MAX_ALERT_BYTES,
) -> tuple[str, str]:
    """Subject and plain-text body of the one alert listing every rejected key and invalid message."""
    what: list[str] = []
    header = ""
    if rejections:
        buckets = sorted({rejection.bucket for rejection in rejections})
        where = f" in {buckets[0]}" if len(buckets) == 1 else ""
        what.append(f"rejected {len(rejections)} S3 object key(s){where}")
        header += (
            f"The ingestion trigger rejected {len(rejections)} S3 object key(s); nothing was started for "
            "them.\nRename each object to a valid key (or delete it) and upload it again.\n"
        )
    if invalid_messages:
        what.append(f"deleted {len(invalid_messages)} invalid queue message(s)")
        header += (
            f"The ingestion trigger deleted {len(invalid_messages)} upload-queue message(s) that are not "
            "S3 event notifications; nothing was started for them.\n"
            "Only the upload bucket's notifications belong on the queue: find what sent them.\n"
        )
    subject = safe_subject(f"Ingestion {' and '.join(what)}")
    entries = [
        f"\n- bucket: {display_name(rejection.bucket)}\n  key: {display_text(rejection.key)}\n"
        f"  reason: {rejection.reason}\n  event time: {display_name(rejection.event_time)}\n"
        for rejection in rejections
    ] + [
        f"\n- message id: {display_name(message.message_id)}\n  reason: {message.reason}\n"
        f"  body: {display_text(_shown_body(message.body))}\n"
        for message in invalid_messages
    ]
    return subject, truncate_listing(header, entries, max_bytes, footer_prefix="\n")


def publish_alert(
    logger: Logger,
    sns: BaseClient,
    topic_arn: str,
    rejections: Sequence[Rejection],
    invalid_messages: Sequence[InvalidMessage] = (),
) -> None:
    subject, message = build_alert(rejections, invalid_messages)
    response = sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    logger.info(
        "Alert sent",
        extra={
            "rejected": len(rejections),
            "invalid_messages": len(invalid_messages),
            "sns_message_id": response.get("MessageId"),
        },
    )


METRIC_NAMES: Final = {
    "started": "StartedExecutions",
    "duplicates": "DuplicateExecutions",
    "failed_starts": "FailedStarts",
    "rejected": "RejectedKeys",
    "ignored": "IgnoredRecords",
    "folder_markers": "IgnoredFolderMarkers",
    "invalid_messages": "InvalidMessages",
    "failed_messages": "FailedMessages",
    "deadline_deferred": "DeadlineDeferred",
    "alert_failures": "AlertPublishFailures",
}
"""Summary field -> the metric it is published as (a Count)."""


def record_metrics(metrics: Metrics, counts: Mapping[str, object]) -> None:
    for field_name, metric in METRIC_NAMES.items():
        value = counts.get(field_name)
        if isinstance(value, int):
            metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def summarize(outcome: Outcome, throttle_waits: int) -> InvocationSummary:
    return InvocationSummary(
        started=len(outcome.started),
        duplicates=len(outcome.duplicates),
        rejected=len(outcome.rejected),
        ignored=outcome.ignored,
        folder_markers=outcome.folder_markers,
        throttle_waits=throttle_waits,
        executions=outcome.executions,
    )


def summarize_batch(
    messages: int, run: Run, deleted: Sequence[Outcome], failed_messages: int, alert_failures: int
) -> BatchSummary:
    """Starts count for every message attempted; findings only for the messages deleted, so a
    message that comes back is counted once for them (when it is finally deleted)."""
    attempted = list(run.outcomes.values())
    return BatchSummary(
        messages=messages,
        failed_messages=failed_messages,
        deadline_deferred=len(run.deferred),
        alert_failures=alert_failures,
        started=sum(len(outcome.started) for outcome in attempted),
        duplicates=sum(len(outcome.duplicates) for outcome in attempted),
        failed_starts=sum(len(outcome.failed) for outcome in attempted),
        invalid_messages=sum(len(outcome.invalid) for outcome in deleted),
        rejected=sum(len(outcome.rejected) for outcome in deleted),
        ignored=sum(outcome.ignored for outcome in deleted),
        folder_markers=sum(outcome.folder_markers for outcome in deleted),
        throttle_waits=run.throttle_waits,
    )


def alert_completed(
    processor: BatchProcessor,
    completed: Sequence[tuple[dict[str, Any], Outcome]],
    sns: BaseClient,
    topic_arn: str,
    logger: Logger,
) -> bool:
    """Publish the batch's one alert; when that fails, report the messages it covered failed.

    Returns whether every finding was alerted (True when there was none). Call it inside the
    processor's context: Powertools builds the response when the context exits.
    """
    alerted = [(record, outcome) for record, outcome in completed if outcome.has_findings]
    if not alerted:
        return True
    try:
        publish_alert(
            logger,
            sns,
            topic_arn,
            [rejection for _, outcome in alerted for rejection in outcome.rejected],
            [message for _, outcome in alerted for message in outcome.invalid],
        )
    except (ClientError, BotoCoreError) as err:
        logger.error(
            "Alert could not be published; the messages it covered are reported failed and come back",
            extra={
                "error_code": error_code(err),
                "error": str(err),
                "message_ids": [record["messageId"] for record, _ in alerted],
            },
        )
        for record, _ in alerted:
            processor.failure_handler(record=SQSRecord(record), exception=sys.exc_info())
        return False
    return True
