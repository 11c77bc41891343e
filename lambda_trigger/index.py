"""Trigger Lambda: S3 ObjectCreated notifications, through the upload queue -> one Step Functions
execution per object.

S3 sends every notification to the upload queue (``sqs.tf``); the queue's event source mapping
invokes this function with a batch of messages and ``ReportBatchItemFailures``. Powertools'
``BatchProcessor`` handles the messages one after another and returns the partial batch response
(``{"batchItemFailures": [...]}``): a message reported failed comes back after its visibility
timeout (and ends in the dead-letter queue after ``queue_max_receive_count`` receives); every
other message is deleted.

parse -> validate -> act, per message, then report, per batch:

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
"""

from __future__ import annotations

import functools
import json
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Final, Literal, TypedDict, cast

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_common.alerts import (
    MAX_ALERT_BYTES,
    MAX_SUBJECT_CHARS,
    display_name,
    display_text,
    truncate_listing,
)
from lambda_common.contract import ExecutionInput
from lambda_common.key_validation import InvalidKeyError, decode_s3_key, is_folder_marker, validate_key
from lambda_common.naming import WorkflowType, execution_arn, execution_name

# Powertools has no built-in correlation path for S3 notifications; S3's request id ties the log
# lines of a direct invocation to the PutObject call in CloudTrail and S3 access logs. A queue
# message's log lines carry its ``message_id`` instead.
S3_REQUEST_ID_PATH: Final = 'Records[0].responseElements."x-amz-request-id"'

S3_EVENT_SOURCE: Final = "aws:s3"
SQS_EVENT_SOURCE: Final = "aws:sqs"
S3_TEST_EVENT: Final = "s3:TestEvent"
"""What S3 sends (as ``Event``, with no ``Records``) when a notification configuration is saved."""

DEFAULT_DEADLINE_MARGIN_MS: Final = 5_000
"""Below this many milliseconds left in the invocation, a message is not attempted (it comes back
after its visibility timeout), and a throttled start makes no wait that would leave less. Set
``DEADLINE_MARGIN_MS`` to change it. It covers one throttled StartExecution call (botocore's backoff
between the 4 attempts is up to 1 + 2 + 4 s, half that on average, plus a DescribeExecution call)
and the batch's alert; keep it well below the function's timeout (30 s)."""

SFN_CLIENT_CONFIG: Final = Config(
    retries={"mode": "adaptive", "total_max_attempts": 4}, connect_timeout=2, read_timeout=3
)
"""Adaptive mode paces StartExecution calls client-side and slows down on ThrottlingException; few
attempts and short timeouts keep a throttled or hung call from eating the invocation (a start still
throttled after them is waited out by the trigger while the invocation has time,
:func:`start_execution_through_throttles`; any other failure comes back from the queue).
StartExecution answers in tens of milliseconds."""

THROTTLING_ERROR_CODES: Final = frozenset({"ThrottlingException", "KmsThrottlingException"})
"""StartExecution's "slow down" answers, waited out and tried again (a throttle is not a fault).
``ThrottlingException`` is Step Functions' API rate limit: the one code of botocore's throttling
list (``botocore.retries.standard.ThrottlingErrorDetector``) that Step Functions sends (the others
are other services': ``Throttling`` of Query APIs, ``SlowDown`` of S3, ``RequestLimitExceeded``
of EC2, ``ProvisionedThroughputExceededException`` of DynamoDB...). ``KmsThrottlingException`` is
StartExecution's modeled error for KMS throttling the state machine's customer managed key
(``step_functions.tf``); botocore neither lists nor retries it. ``ExecutionLimitExceeded`` (too
many open executions) is no rate: waiting seconds does not clear it, so it is not here."""

THROTTLE_WAIT_BASE_SECONDS: Final = 0.25
"""The cap of the first wait after a throttled start; each further wait's cap doubles. A quarter of
a second is about one token of a throttled bucket at a slow refill (the system benchmark's 5 a
second: one every 0.2 s; Step Functions' own refill, 150-300 a second, is far faster), so the first
retry comes as soon as a token is likely back; doubling spreads the retries of the concurrent
batches (``trigger_maximum_concurrency``) that compete for the same tokens."""

THROTTLE_WAIT_CAP_SECONDS: Final = 2.0
"""The longest wait after a throttled start. A token is never more than a fraction of a second away
at the refill rates above, so longer waits would only leave the quota idle (the very tail these
waits remove); 2 s still keeps a dozen tries within a 30 s invocation's margin-bounded time, and
full jitter (each wait uniform between 0 and its cap) keeps the batches from retrying in step."""

SNS_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5
)

_SHOWN_EVENT_CHARS: Final = 100
_SHOWN_FIELD_CHARS: Final = 64
_SHOWN_BODY_CHARS: Final = 200
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


def json_type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


class ConfigurationError(RuntimeError):
    """The function's environment is missing a setting it cannot run without, or has a bad one."""


def parse_workflow_type(value: str | None) -> WorkflowType:
    """``WORKFLOW_TYPE`` as a :class:`WorkflowType`; unset or empty is ``STANDARD`` (older
    deployments set nothing). Raise :class:`ConfigurationError` for any other value."""
    if not value:
        return WorkflowType.STANDARD
    try:
        return WorkflowType(value)
    except ValueError:
        allowed = " or ".join(kind.value for kind in WorkflowType)
        raise ConfigurationError(
            f"WORKFLOW_TYPE must be {allowed} (unset: STANDARD), got {value!r}"
        ) from None


class InvalidEventError(ValueError):
    """The invocation's event is neither an SQS batch nor an S3 event notification; nothing was
    started.

    ``received`` names the JSON type that came instead (``array``, ``string``, ``null``...).
    """

    def __init__(self, problem: str, value: object) -> None:
        self.received = json_type_name(value)
        shown = json.dumps(value, ensure_ascii=True, default=repr)
        if len(shown) > _SHOWN_EVENT_CHARS:
            shown = f"{shown[:_SHOWN_EVENT_CHARS]}..."
        super().__init__(f"{problem}; received a JSON {self.received}: {shown}")


class InvalidMessageError(ValueError):
    """A queue message's body is not an S3 event notification; retrying cannot help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StartExecutionError(RuntimeError):
    """StartExecution failed for at least one accepted key of a direct invocation."""

    def __init__(self, failures: list[FailedStart]) -> None:
        super().__init__(
            f"could not start the state machine for {_listed(failures)}; the invocation fails so that "
            "its caller retries it (execution names are deterministic)"
        )
        self.failures = failures


class MessageFailedError(RuntimeError):
    """StartExecution failed for at least one accepted key of a queue message: the message is
    reported failed and comes back after its visibility timeout."""

    def __init__(self, failures: list[FailedStart]) -> None:
        super().__init__(
            f"could not start the state machine for {_listed(failures)}; the message comes back after "
            "its visibility timeout (execution names are deterministic)"
        )
        self.failures = failures


class DeadlineDeferredError(RuntimeError):
    """Too little of the invocation was left to attempt a queue message; it comes back."""

    def __init__(self, remaining_ms: int, margin_ms: int) -> None:
        super().__init__(
            f"{remaining_ms} ms of the invocation remained, less than the {margin_ms} ms margin; "
            "the message was not attempted"
        )


@dataclass(frozen=True)
class TriggerConfig:
    state_machine_arn: str
    alert_topic_arn: str
    upload_bucket: str
    """The one bucket whose notifications start executions; a record for any other is rejected."""
    region: str
    """The stack's region (Lambda's ``AWS_REGION``), where the upload bucket is: a record whose
    ``awsRegion`` is another (or missing) is rejected."""
    deadline_margin_ms: int = DEFAULT_DEADLINE_MARGIN_MS
    workflow_type: WorkflowType = WorkflowType.STANDARD
    """EXPRESS: a failed start is not looked up with DescribeExecution."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TriggerConfig:
        required = ("STATE_MACHINE_ARN", "ALERT_TOPIC_ARN", "UPLOAD_BUCKET", "AWS_REGION")
        missing = [name for name in required if not environ.get(name)]
        if missing:
            raise ConfigurationError(f"environment variable(s) not set: {', '.join(missing)}")
        margin = environ.get("DEADLINE_MARGIN_MS") or str(DEFAULT_DEADLINE_MARGIN_MS)
        if not margin.isascii() or not margin.isdigit():
            raise ConfigurationError(
                f"DEADLINE_MARGIN_MS must be a whole number of milliseconds >= 0, got {margin!r}"
            )
        return cls(
            state_machine_arn=environ["STATE_MACHINE_ARN"],
            alert_topic_arn=environ["ALERT_TOPIC_ARN"],
            upload_bucket=environ["UPLOAD_BUCKET"],
            region=environ["AWS_REGION"],
            deadline_margin_ms=int(margin),
            workflow_type=parse_workflow_type(environ.get("WORKFLOW_TYPE")),
        )


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


class EventKind(Enum):
    SQS_BATCH = "sqs-batch"
    S3_EVENT = "s3-event"


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
class InvalidMessage:
    """A queue message deleted because its body is not an S3 event notification."""

    message_id: str
    reason: str
    body: str


@dataclass(frozen=True)
class FailedStart:
    key: str
    execution_name: str
    error_code: str


@dataclass(frozen=True)
class StartResult:
    """How one execution name fared in this invocation."""

    status: Literal["started", "duplicate", "failed"]
    error_code: str | None = None


@dataclass
class Outcome:
    """What one message (or a direct invocation's event) came to."""

    started: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    failed: list[FailedStart] = field(default_factory=list)
    invalid: list[InvalidMessage] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    ignored: int = 0
    folder_markers: int = 0

    @property
    def has_findings(self) -> bool:
        """Whether the batch's alert lists something of this message."""
        return bool(self.rejected or self.invalid)


def _no_time_left() -> int:
    return 0


@dataclass(frozen=True)
class Clock:
    """The invocation's time as the trigger sees it: how much is left, and how to wait.

    :data:`CLOCK` (real sleeps) is given each invocation's remaining time by
    :meth:`for_invocation`; tests replace it to simulate time without sleeping. The default has no
    time left, so a :class:`Run` built without a clock (a benchmark, a tool) never waits: a throttled
    start fails as soon as botocore's attempts are spent.
    """

    remaining_ms: Callable[[], int] = _no_time_left
    """Milliseconds left in the invocation (Lambda's ``get_remaining_time_in_millis``)."""
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random  # full jitter spreads the retries; not cryptography
    """A fraction in [0, 1): how much of a wait's cap is waited."""

    def for_invocation(self, context: LambdaContext) -> Clock:
        return replace(self, remaining_ms=context.get_remaining_time_in_millis)


@dataclass
class Run:
    """What the messages of one invocation share: clients, settings, and what happened so far."""

    sfn: BaseClient
    config: TriggerConfig
    clock: Clock = field(default_factory=Clock)
    throttle_waits: int = 0
    """Waits made for throttled starts so far."""
    attempted: dict[str, StartResult] = field(default_factory=dict)
    """Execution name -> the result of its one StartExecution in this invocation."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    """Message id -> the outcome of every message attempted."""
    deferred: list[str] = field(default_factory=list)
    """Ids of the messages not attempted for lack of time."""


class MalformedRecordError(ValueError):
    """An ObjectCreated record without the fields every S3 notification carries."""

    def __init__(self, reason: str, *, bucket: str, key: str, event_time: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bucket = bucket
        self.key = key
        self.event_time = event_time


def _listed(failures: Sequence[FailedStart]) -> str:
    listed = ", ".join(f"{failure.key!r} ({failure.error_code})" for failure in failures)
    return f"{len(failures)} object(s): {listed}"


# --- parse -------------------------------------------------------------------------------------


def event_kind(event: object) -> EventKind:
    """Tell an SQS batch from a direct S3 event; raise :class:`InvalidEventError` for anything else.

    An empty ``Records`` array is an (empty) SQS batch.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(
            "the trigger expects an SQS batch or an S3 event notification, a JSON object", event
        )
    if "Records" not in event:
        if event.get("Event") == S3_TEST_EVENT:
            return EventKind.S3_EVENT
        raise InvalidEventError(
            f"the event has no 'Records' array and is not an {S3_TEST_EVENT}", dict(event)
        )
    records = event["Records"]
    if not isinstance(records, list):
        raise InvalidEventError("the event's 'Records' must be an array of records", records)
    sources = {record.get("eventSource") if isinstance(record, Mapping) else None for record in records}
    if sources <= {SQS_EVENT_SOURCE}:
        return EventKind.SQS_BATCH
    if S3_EVENT_SOURCE in sources and SQS_EVENT_SOURCE not in sources:
        return EventKind.S3_EVENT
    raise InvalidEventError(
        f"the event's 'Records' are neither all SQS messages ({SQS_EVENT_SOURCE}) nor S3 "
        f"notification records ({S3_EVENT_SOURCE})",
        records,
    )


def parse_body(body: object) -> object:
    """The JSON document a queue message carries; raise :class:`InvalidMessageError` if none."""
    if not isinstance(body, str):
        raise InvalidMessageError(f"the message body is a {json_type_name(body)}, not a string")
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise InvalidMessageError(f"the message body is not JSON ({err})") from err
    except RecursionError as err:  # a body nested deeper than the parser's stack
        raise InvalidMessageError("the message body is JSON nested too deeply to parse") from err


def s3_event_records(document: object) -> list[object] | None:
    """The records of an S3 event notification, None for S3's ``s3:TestEvent``; raise
    :class:`InvalidMessageError` for any other document."""
    if not isinstance(document, Mapping):
        raise InvalidMessageError(
            f"the message body is a JSON {json_type_name(document)}, not an S3 event notification object"
        )
    if "Records" not in document:
        if document.get("Event") == S3_TEST_EVENT:
            return None
        raise InvalidMessageError(
            f"the message body has no 'Records' array and is not an {S3_TEST_EVENT}: not an S3 event "
            "notification"
        )
    records = document["Records"]
    if not isinstance(records, list):
        raise InvalidMessageError(
            f"the message body's 'Records' is a JSON {json_type_name(records)}, not an array"
        )
    return records


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


def shown_text(value: str) -> str:
    """A string of a record as a rejection reason shows it: quoted and escaped (``repr``), cut
    after :data:`_SHOWN_FIELD_CHARS` characters."""
    if len(value) > _SHOWN_FIELD_CHARS:
        return f"{value[:_SHOWN_FIELD_CHARS]!r}..."
    return repr(value)


def field_problem(record: Mapping[str, Any], name: str, expected: str, expected_as: str) -> str | None:
    """Why field ``name`` of a record is not ``expected`` (``expected_as`` names it), None when it is.

    S3 sends the field in every record, so a missing one does not match either."""
    if name not in record:
        return f"{name} is missing (S3 always sends it; expected {expected_as} {expected!r})"
    value = record[name]
    if value == expected:
        return None
    if not isinstance(value, str):
        return f"{name} is a JSON {json_type_name(value)}, not {expected_as} {expected!r}"
    return f"{name} {shown_text(value)} is not {expected_as} {expected!r}"


def origin_problems(record: Mapping[str, Any], bucket: str, config: TriggerConfig) -> list[str]:
    """Why an ObjectCreated record may not come from the pipeline's upload bucket (empty: it may):
    its ``eventSource`` is not S3's, its ``awsRegion`` is not the stack's region, or its bucket is
    not the upload bucket. Each problem is listed; a missing field is one."""
    problems = [
        field_problem(record, "eventSource", S3_EVENT_SOURCE, "S3's"),
        field_problem(record, "awsRegion", config.region, "the stack's region"),
    ]
    if bucket != config.upload_bucket:
        problems.append(
            f"bucket {shown_text(bucket)} is not the pipeline's upload bucket {config.upload_bucket!r}"
        )
    return [problem for problem in problems if problem is not None]


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


def throttle_wait_ms(wait: int, fraction: float) -> int:
    """Milliseconds of wait number ``wait`` (1-based) of a throttled start: full jitter, ``fraction``
    (in [0, 1)) of ``min(cap, base * 2 ** (wait - 1))`` (:data:`THROTTLE_WAIT_BASE_SECONDS`,
    :data:`THROTTLE_WAIT_CAP_SECONDS`). The exponent is bounded, so no run of waits overflows."""
    cap = min(THROTTLE_WAIT_CAP_SECONDS, THROTTLE_WAIT_BASE_SECONDS * 2 ** min(wait - 1, 32))
    return int(fraction * cap * 1000)


def start_execution_through_throttles(
    sfn: BaseClient,
    state_machine_arn: str,
    name: str,
    payload: ExecutionInput,
    clock: Clock,
    margin_ms: int,
    waits: list[int],
) -> bool:
    """:func:`start_execution`, started again under the same name while it is throttled and the
    invocation has time.

    A start still refused with one of :data:`THROTTLING_ERROR_CODES` after botocore's attempts waits
    :func:`throttle_wait_ms` and tries again, as long as at least ``margin_ms`` remains after the
    wait; otherwise, and on any other error, the last error raises. Every wait made is appended to
    ``waits`` (milliseconds), whatever the outcome. The time left is the clock's, never more than
    what was left at the first throttle less the waits since, so a clock that stands still (a test
    double) still runs out as the waits add up.
    """
    first_left_ms: int | None = None
    while True:
        try:
            return start_execution(sfn, state_machine_arn, name, payload)
        except ClientError as err:
            if error_code(err) not in THROTTLING_ERROR_CODES:
                raise
            reported_ms = clock.remaining_ms()
            first_left_ms = reported_ms if first_left_ms is None else first_left_ms
            left_ms = min(reported_ms, first_left_ms - sum(waits))
            wait_ms = throttle_wait_ms(len(waits) + 1, clock.jitter())
            if left_ms - wait_ms < margin_ms:
                raise
        # throttled, and there is time: wait, then start the same name again
        waits.append(wait_ms)
        clock.sleep(wait_ms / 1000)


def _wait_fields(waits: Sequence[int]) -> dict[str, int]:
    return {"attempts": len(waits) + 1, "waited_ms": sum(waits)}


def execution_exists(sfn: BaseClient, state_machine_arn: str, name: str) -> bool:
    """Whether execution ``name`` exists: another delivery of the same event may have started it.

    S3 delivers an event at least once; when this delivery's StartExecution keeps failing (e.g.
    throttled beyond botocore's retries) while another delivery already started the execution, the
    object is being ingested and this delivery is a duplicate, not a failure to retry.
    """
    try:
        sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))
    except (ClientError, BotoCoreError) as err:
        code = error_code(err)
        if code != "ExecutionDoesNotExist":
            logger.warning("DescribeExecution failed", extra={"execution_name": name, "error_code": code})
        return False
    return True


def attempt_start(run: Run, name: str, payload: ExecutionInput, log_fields: Mapping[str, str]) -> StartResult:
    """StartExecution (botocore retries inside; throttles waited out while the invocation has time);
    if it failed, DescribeExecution (STANDARD only: an EXPRESS execution cannot be described, and a
    start that failed there is failed)."""
    sfn, config = run.sfn, run.config
    waits: list[int] = []
    try:
        started = start_execution_through_throttles(
            sfn, config.state_machine_arn, name, payload, run.clock, config.deadline_margin_ms, waits
        )
    except (ClientError, BotoCoreError) as err:  # throttled out of time, timed out...
        code = error_code(err)
        if config.workflow_type is WorkflowType.STANDARD and execution_exists(
            sfn, config.state_machine_arn, name
        ):
            logger.info(
                "StartExecution failed, but another delivery started the execution; duplicate",
                extra={**log_fields, "error_code": code, **_wait_fields(waits)},
            )
            return StartResult("duplicate")
        logger.error(
            "StartExecution failed",
            extra={**log_fields, "error_code": code, "error": str(err), **_wait_fields(waits)},
        )
        return StartResult("failed", code)
    finally:
        run.throttle_waits += len(waits)
    if waits:
        logger.info(
            "StartExecution answered after throttle waits", extra={**log_fields, **_wait_fields(waits)}
        )
    if started:
        logger.info("Started execution", extra=log_fields)
        return StartResult("started")
    logger.info("Execution already exists; duplicate notification", extra=log_fields)
    return StartResult("duplicate")


def start_once(run: Run, name: str, payload: ExecutionInput, log_fields: Mapping[str, str]) -> StartResult:
    """The result of execution ``name``: started now, or the earlier attempt of this invocation
    (another message carrying the same object version is a duplicate, or fails with it)."""
    earlier = run.attempted.get(name)
    if earlier is None:
        result = attempt_start(run, name, payload, log_fields)
        run.attempted[name] = result
        return result
    if earlier.status == "failed":
        logger.warning(
            "An earlier notification of this batch failed to start the execution; this one fails with it",
            extra={**log_fields, "error_code": earlier.error_code},
        )
        return earlier
    logger.info("An earlier notification of this batch started the execution; duplicate", extra=log_fields)
    return StartResult("duplicate")


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


def process_record(record: Mapping[str, Any], run: Run, outcome: Outcome) -> None:
    config = run.config
    try:
        event = parse_record(record)
    except MalformedRecordError as err:
        _reject(outcome, Rejection(err.bucket, err.key, err.reason, err.event_time))
        return
    problems = origin_problems(record, event.bucket, config)
    if problems:
        reason = "; ".join(problems)
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
    result = start_once(run, name, build_execution_input(event, key), log_fields)
    if result.status == "failed":
        outcome.failed.append(FailedStart(key=key, execution_name=name, error_code=result.error_code or ""))
        return
    outcome.executions.append(name)
    (outcome.started if result.status == "started" else outcome.duplicates).append(name)


def process_records(records: list[object] | None, run: Run) -> Outcome:
    """Handle the records of one S3 event notification (None: an ``s3:TestEvent``)."""
    outcome = Outcome()
    if records is None:
        logger.info(f"Ignoring S3's {S3_TEST_EVENT}")
        outcome.ignored += 1
        return outcome
    for record in records:
        if not is_object_created(record):
            event_name = record.get("eventName") if isinstance(record, Mapping) else None
            logger.info(
                "Ignoring record that is not an ObjectCreated event", extra={"event_name": event_name}
            )
            outcome.ignored += 1
            continue
        process_record(record, run, outcome)
    return outcome


def process_body(message_id: str, body: object, run: Run) -> Outcome:
    """Handle one queue message's body; an invalid body is an outcome (deleted after the alert)."""
    try:
        records = s3_event_records(parse_body(body))
    except InvalidMessageError as err:
        logger.warning("Invalid message: not an S3 event notification", extra={"reason": err.reason})
        shown = body if isinstance(body, str) else json.dumps(body, default=repr)
        return Outcome(invalid=[InvalidMessage(message_id=message_id, reason=err.reason, body=shown)])
    return process_records(records, run)


def handle_message(record: SQSRecord, run: Run) -> Outcome:
    """Powertools' record handler: raising reports the message failed (it comes back)."""
    message_id = record.message_id
    with logger.append_context_keys(message_id=message_id):
        remaining = run.clock.remaining_ms()
        if remaining < run.config.deadline_margin_ms:
            run.deferred.append(message_id)
            raise DeadlineDeferredError(remaining, run.config.deadline_margin_ms)
        try:
            outcome = process_body(message_id, record.get("body"), run)
        except Exception:
            logger.exception("Unexpected error; the message comes back after its visibility timeout")
            raise
        run.outcomes[message_id] = outcome
        if outcome.failed:
            raise MessageFailedError(outcome.failed)
        return outcome


# --- report ------------------------------------------------------------------------------------


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


def error_code(err: ClientError | BotoCoreError) -> str:
    """AWS's error code, or the class of a client-side error (``ReadTimeoutError``...)."""
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", "Unknown"))
    return type(err).__name__


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


def record_metrics(counts: Mapping[str, object]) -> None:
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


# --- the two entry points ----------------------------------------------------------------------


def handle_s3_event(
    event: Mapping[str, Any], sfn: BaseClient, sns: BaseClient, config: TriggerConfig, clock: Clock
) -> InvocationSummary:
    """A direct invocation: one S3 event notification, handled like one queue message (throttled
    starts wait under the same margin of ``clock``'s time; no record is deferred); rejections alert,
    and failed starts raise after everything else is done."""
    run = Run(sfn, config, clock=clock)
    outcome = process_records(s3_event_records(event), run)
    summary = summarize(outcome, run.throttle_waits)
    record_metrics({**summary, "failed_starts": len(outcome.failed)})
    if outcome.rejected:
        publish_alert(sns, config.alert_topic_arn, outcome.rejected)
    if outcome.failed:
        raise StartExecutionError(outcome.failed)
    logger.info("Invocation summary", extra={"summary": summary, "workflow_type": config.workflow_type})
    return summary


def alert_completed(
    processor: BatchProcessor,
    completed: Sequence[tuple[dict[str, Any], Outcome]],
    sns: BaseClient,
    topic_arn: str,
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


def handle_sqs_batch(
    records: list[dict[str, Any]],
    processor: BatchProcessor,
    sfn: BaseClient,
    sns: BaseClient,
    config: TriggerConfig,
    clock: Clock,
) -> PartialItemFailureResponse:
    """A batch of queue messages; Powertools' partial batch response lists the ones to retry.
    ``clock`` tells the invocation's remaining time (deadline, throttle waits) and waits."""
    run = Run(sfn, config, clock=clock)
    with processor(records, functools.partial(handle_message, run=run)):
        results = processor.process()
        completed = [
            (record, run.outcomes[record["messageId"]])
            for status, _, record in results
            if status == "success"
        ]
        alert_sent = alert_completed(processor, completed, sns, config.alert_topic_arn)
    response = processor.response()
    if run.deferred:
        logger.warning(
            "Deadline near: messages not attempted; they come back after their visibility timeout",
            extra={"deferred": len(run.deferred), "margin_ms": config.deadline_margin_ms},
        )
    deleted = [outcome for _, outcome in completed if alert_sent or not outcome.has_findings]
    failures = response["batchItemFailures"]
    summary = summarize_batch(len(records), run, deleted, len(failures), 0 if alert_sent else 1)
    record_metrics(summary)
    logger.info(
        "Batch summary",
        extra={
            "summary": summary,
            "workflow_type": config.workflow_type,
            "batch_item_failures": failures,
        },
    )
    return response


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
    clock = CLOCK.for_invocation(context)
    if kind is EventKind.SQS_BATCH:
        return handle_sqs_batch(checked["Records"], PROCESSOR, SFN, SNS, CONFIG, clock)
    return handle_s3_event(checked, SFN, SNS, CONFIG, clock)
