"""The two entry points: a direct invocation's S3 event notification, and a batch of queue messages
(Powertools' ``BatchProcessor``, partial batch response). The handler gives each the invocation's
:class:`~trigger.run.Run`, its SNS client and its metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from botocore.client import BaseClient

from trigger.events import s3_event_records
from trigger.process import handle_message, process_records
from trigger.report import (
    InvocationSummary,
    alert_completed,
    publish_alert,
    record_metrics,
    summarize,
    summarize_batch,
)
from trigger.run import Run, StartExecutionError


def handle_s3_event(
    event: Mapping[str, Any], run: Run, sns: BaseClient, metrics: Metrics
) -> InvocationSummary:
    """A direct invocation: one S3 event notification, handled like one queue message (throttled
    starts wait under the same margin of ``run.clock``'s time; no record is deferred); rejections alert,
    and failed starts raise after everything else is done."""
    config, logger = run.config, run.logger
    outcome = process_records(s3_event_records(event), run)
    summary = summarize(outcome, run.throttle_waits)
    record_metrics(metrics, {**summary, "failed_starts": len(outcome.failed)})
    if outcome.rejected:
        publish_alert(logger, sns, config.alert_topic_arn, outcome.rejected)
    if outcome.failed:
        raise StartExecutionError(outcome.failed)
    logger.info("Invocation summary", extra={"summary": summary, "workflow_type": config.workflow_type})
    return summary


def handle_sqs_batch(
    records: list[dict[str, Any]],
    processor: BatchProcessor,
    run: Run,
    sns: BaseClient,
    metrics: Metrics,
) -> PartialItemFailureResponse:
    """A batch of queue messages; Powertools' partial batch response lists the ones to retry.
    ``run.clock`` tells the invocation's remaining time (deadline, throttle waits) and waits."""
    config, logger = run.config, run.logger
    with processor(records, functools.partial(handle_message, run=run)):
        results = processor.process()
        completed = [
            (record, run.outcomes[record["messageId"]])
            for status, _, record in results
            if status == "success"
        ]
        alert_sent = alert_completed(processor, completed, sns, config.alert_topic_arn, logger)
    response = processor.response()
    if run.deferred:
        logger.warning(
            "Deadline near: messages not attempted; they come back after their visibility timeout",
            extra={"deferred": len(run.deferred), "margin_ms": config.deadline_margin_ms},
        )
    deleted = [outcome for _, outcome in completed if alert_sent or not outcome.has_findings]
    failures = response["batchItemFailures"]
    summary = summarize_batch(len(records), run, deleted, len(failures), 0 if alert_sent else 1)
    record_metrics(metrics, summary)
    logger.info(
        "Batch summary",
        extra={
            "summary": summary,
            "workflow_type": config.workflow_type,
            "batch_item_failures": failures,
        },
    )
    return response
