"""Trigger Lambda: S3 ObjectCreated notifications, through the upload queue -> one Step Functions
execution per object.

S3 sends every notification to the upload queue (``sqs.tf``); the queue's event source mapping
invokes this function with a batch of messages and ``ReportBatchItemFailures``. Powertools'
``BatchProcessor`` handles the messages one after another and returns the partial batch response
(``{"batchItemFailures": [...]}``): a message reported failed comes back after its visibility
timeout (and ends in the dead-letter queue after ``queue_max_receive_count`` receives); every
other message is deleted.

parse -> validate -> act, per message, then report, per batch, one layer each under ``trigger/``
(:mod:`trigger.config`, :mod:`trigger.events`, :mod:`trigger.start`, :mod:`trigger.process`,
:mod:`trigger.report`, the two entry points in :mod:`trigger.invocation`):

- deadline: a message is not attempted when less than ``deadline_margin_ms``
  (:data:`DEFAULT_DEADLINE_MARGIN_MS`, ``DEADLINE_MARGIN_MS``) of the invocation remain; it is
  reported failed, so a slow, throttled batch never times out the invocation. The same margin
  bounds the waits of a throttled start (below): a wait is made only when at least the margin
  remains after it. The remaining time and the waits go through the run's :class:`Clock` (Lambda's
  context and ``time.sleep``; tests simulate both);
- parse: a body that is not an S3 event notification (not JSON, not an object, no ``Records``
  array) is logged with the message id and the reason, listed in the batch's alert and deleted
  (retrying cannot help); S3's ``s3:TestEvent`` is ignored;
- validate: every ObjectCreated record is parsed (one without a bucket, key or event time is
  malformed); then its origin is checked (:func:`origin_problems`): its ``eventSource`` must be
  S3's (``aws:s3``), its ``awsRegion`` the stack's region (Lambda's own ``AWS_REGION``; the upload
  bucket is in the stack's region) and its bucket the configured upload bucket
  (``UPLOAD_BUCKET``), so a record of another source, region or bucket (a hand-made event, a
  bucket or a service wired to the queue by mistake) starts nothing. These fields are the sender's
  word, not a signature: a forger who copies them gets through, and only who may send to the
  queue (its policy) and invoke the function keeps forgers out. S3 always sends ``eventSource``
  and ``awsRegion``: a record lacking either does not match, and its reason says the field is
  missing; the reason names every field that does not match. Then its key is decoded and
  validated; folder markers (a key ending in ``/``, size 0) are ignored and counted. A rejected
  record (malformed, of another origin, or with an invalid key) starts nothing, is never retried
  (its message is deleted) and is listed with its reason in the batch's alert. A record that is
  not ObjectCreated is ignored, whatever its origin;
- act: an accepted key starts the state machine under its object version's deterministic
  execution name (``lambda_common/naming.py``: the reconcile tool computes the same name) with
  the contract's input (``lambda_common/contract.py``). A throttle is not a fault: a start still
  refused with a throttling code (:data:`THROTTLING_ERROR_CODES`) after the client's own attempts
  waits (full jitter exponential backoff, :data:`THROTTLE_WAIT_BASE_SECONDS` doubling up to
  :data:`THROTTLE_WAIT_CAP_SECONDS`) and starts the same execution name again, over and over, as
  long as ``deadline_margin_ms`` would remain after the wait, for either workflow type; the
  batch's summary counts the waits (``throttle_waits``), and a start answered after waits logs
  its attempts and the milliseconds waited. A start that still fails then (out of time), or that
  fails otherwise (a timeout, a missing state machine...), is a failed start, whose meaning
  depends on the workflow type (``WORKFLOW_TYPE``, :class:`WorkflowType`; unset: ``STANDARD``):

  - ``STANDARD``: ``ExecutionAlreadyExists`` is a duplicate, so a redelivered or re-driven message
    never starts a second execution (after throttle waits too); another failure (a throttle that
    outlasted the invocation's time, a timeout...) is a duplicate too when DescribeExecution shows
    that another delivery started the execution, else the message is reported failed;
  - ``EXPRESS``: Step Functions keeps no execution names (the same name starts another execution,
    ``ExecutionAlreadyExists`` never comes) and cannot describe an Express execution, so a failed
    start is simply failed, with no DescribeExecution call, and the message comes back after its
    visibility timeout. A message delivered again in a later batch starts another execution of
    its object (counted ``started``, not ``duplicates``); it carries the same input, so the
    writer's conditional put (``attribute_not_exists(Filename)`` on the item keyed by the same
    Filename and event time) writes no second row.

  Either way, two messages of one batch for one execution name (S3 is at-least-once) call
  StartExecution once: the second is a duplicate, or fails with the first;
- report: the batch's summary line (and a direct invocation's) carries ``workflow_type`` and
  ``throttle_waits`` (a count in the line, no metric); one SNS alert per batch lists the rejected
  keys and invalid messages of the messages that otherwise succeeded (a failed message is alerted
  when it finally completes, never twice); when the alert cannot be published those messages are
  reported failed instead. A batch whose every message failed returns its failures too: raising
  would count as a Lambda error and fire the trigger-errors alarm on a mere throttle.

A direct invocation with an S3 event notification (at least one ``Records[].eventSource`` is
``"aws:s3"`` and none is ``"aws:sqs"``, or an ``s3:TestEvent``; tests and operators) runs the same
code as one message, the same checks included (each ObjectCreated record of it without S3's
``eventSource``, or of another region or bucket, is rejected), and returns an
:class:`InvocationSummary`; there, rejections alert and failed starts raise
:class:`StartExecutionError` after everything else is done. A throttled start waits there as in a
batch, under the same margin of the invocation's remaining time; no record is deferred (there is
no queue to hand it back to: a start still throttled near the deadline fails and raises, and the
caller retries the invocation). An event that is neither an SQS batch nor an S3 event raises
:class:`InvalidEventError`.

This module is the handler: the logger, the metrics, the configuration, the clients, the batch
processor and the clock are created once per container, and ``lambda_handler`` walks the layers
with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final, cast

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from trigger.config import (
    DEFAULT_DEADLINE_MARGIN_MS,
    SFN_CLIENT_CONFIG,
    SNS_CLIENT_CONFIG,
    ConfigurationError,
    TriggerConfig,
    WorkflowType,
)
from trigger.events import (
    EventKind,
    InvalidEventError,
    event_kind,
    is_object_created,
    origin_problems,
    parse_record,
)
from trigger.invocation import handle_s3_event, handle_sqs_batch
from trigger.process import decode_s3_key, execution_name, process_records, validate_key
from trigger.report import (
    MAX_ALERT_BYTES,
    METRIC_NAMES,
    InvocationSummary,
    build_alert,
    publish_alert,
    safe_subject,
)
from trigger.run import Clock, InvalidMessage, Rejection, Run, StartExecutionError
from trigger.start import (
    THROTTLE_WAIT_BASE_SECONDS,
    THROTTLE_WAIT_CAP_SECONDS,
    THROTTLING_ERROR_CODES,
    throttle_wait_ms,
)

__all__ = [  # the handler, and what the tests and benchmarks drive the layers with
    "CLOCK",
    "CONFIG",
    "DEFAULT_DEADLINE_MARGIN_MS",
    "MAX_ALERT_BYTES",
    "METRIC_NAMES",
    "PROCESSOR",
    "SFN",
    "SNS",
    "THROTTLE_WAIT_BASE_SECONDS",
    "THROTTLE_WAIT_CAP_SECONDS",
    "THROTTLING_ERROR_CODES",
    "Clock",
    "ConfigurationError",
    "EventKind",
    "InvalidEventError",
    "InvalidMessage",
    "Rejection",
    "Run",
    "StartExecutionError",
    "WorkflowType",
    "build_alert",
    "decode_s3_key",
    "event_kind",
    "execution_name",
    "is_object_created",
    "lambda_handler",
    "logger",
    "metrics",
    "origin_problems",
    "parse_record",
    "process_records",
    "publish_alert",
    "safe_subject",
    "throttle_wait_ms",
    "validate_key",
]

# Powertools has no built-in correlation path for S3 notifications; S3's request id ties the log
# lines of a direct invocation to the PutObject call in CloudTrail and S3 access logs. A queue
# message's log lines carry its ``message_id`` instead.
S3_REQUEST_ID_PATH: Final = 'Records[0].responseElements."x-amz-request-id"'

logger = Logger()
metrics = Metrics()

CONFIG: Final = TriggerConfig.from_env(os.environ)
SFN: Final = boto3.client("stepfunctions", config=SFN_CLIENT_CONFIG)
SNS: Final = boto3.client("sns", config=SNS_CLIENT_CONFIG)
PROCESSOR: Final = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
CLOCK = Clock()
"""Real sleeps and jitter; each invocation gives it Lambda's remaining time. Tests replace it."""


@logger.inject_lambda_context(correlation_id_path=S3_REQUEST_ID_PATH)
@metrics.log_metrics
def lambda_handler(event: object, context: LambdaContext) -> PartialItemFailureResponse | InvocationSummary:
    try:
        kind = event_kind(event)
    except InvalidEventError as err:
        logger.error("Invalid event", extra={"received": err.received, "reason": str(err)})
        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        raise
    checked = cast(Mapping[str, Any], event)  # event_kind made sure it is an object
    run = Run(SFN, CONFIG, logger, clock=CLOCK.for_invocation(context))
    if kind is EventKind.SQS_BATCH:
        return handle_sqs_batch(checked["Records"], PROCESSOR, run, SNS, metrics)
    return handle_s3_event(checked, run, SNS, metrics)
