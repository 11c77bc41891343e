#!/usr/bin/env python3
"""Audit: find uploads that never became a metadata row, and re-drive them through the state machine.

S3 notifies a durable queue; the trigger consumes it, and a notification whose start keeps failing
stays queued, then sits in the dead-letter queue (alarmed; README's one command re-drives it). So
this tool should find nothing missing. It is the audit that proves it, and the repair for what no
queue can hold: an object whose notification was never sent (notifications configured after the
upload, a notification lost outside the stack, a dead-letter message deleted by hand or expired
after 14 days). It first reads the state machine's type (DescribeStateMachine: ``STANDARD`` or
``EXPRESS``), then compares the bucket's object versions with the metadata table and, for a
STANDARD workflow, the state machine's executions, classifies every object version and, with
``--redrive``, starts the missing ones exactly as the trigger would have.

STANDARD:

- ``ingested``: a row with the version's Filename and VersionId exists (or an execution of it has
  SUCCEEDED: its writer wrote the row, or found it, after the table was read);
- ``in_flight``: an execution of it is RUNNING, under the trigger's name or a re-drive's;
- ``missing``: neither; ``--redrive`` starts it under the trigger's deterministic name
  (``lambda_common.naming``), or, when earlier executions of it ended FAILED, TIMED_OUT or ABORTED,
  under the next re-drive name (``-r1``, ``-r2``...), with the trigger's input contract
  (``lambda_common.contract``: LastModified as ``event_time``, ``ObjectCreated:Redrive``, no
  sequencer). Step Functions refuses a second execution of a name (``ExecutionAlreadyExists``, which
  counts as in flight), so running the tool twice, or while events are still being delivered, never
  starts one object twice and never writes a second row. An execution ABORTED or TIMED_OUT less
  than ``--settle-seconds`` ago (default 900, Lambda's maximum timeout) counts as in flight: the
  writer invocation it was waiting for may still write the row.

EXPRESS (no ListExecutions or DescribeExecution: Step Functions does not serve them for an Express
state machine, and this tool calls neither, nor is the operator granted them):

- ``ingested``: a row with the version's Filename and VersionId exists;
- ``in_flight``: no row, but the object is younger than ``--settle-seconds`` (by its LastModified):
  its notification may still be on its way (waiting in the upload queue, retried after a failed
  start, its execution still running);
- ``missing``: no row and older than that; ``--redrive`` starts one execution per missing version
  under the trigger's name for it (``lambda_common.naming``: at most 80 characters of
  ``[A-Za-z0-9_-]``) with the same input contract as above. Express keeps no execution names: the
  same name starts another execution, so running the tool again before the row is written
  re-drives the version again. That is safe: both executions carry the same input, and the
  writer's conditional put (``attribute_not_exists(Filename)`` on the item keyed by Filename and
  LastModified) writes one row. It is not safe against the trigger: a notification of the same
  version still to come (a backlog older than ``--settle-seconds``, a message in the dead-letter
  queue re-driven later) carries S3's event time, not LastModified, so its row has another key.
  Re-drive an Express workflow once the upload queue and its dead-letter queue are empty. The run
  says so (``notes`` of the :class:`Summary`, on stderr).

Every listed version counts, also one hidden by a later delete marker: the table records uploads,
and the trigger would have ingested that upload before the delete. Delete markers are not object
versions; a version deleted for good is no longer listed.

Keys the validator rejects and folder markers (a zero-byte key ending in ``/``) are not ingestible:
they are counted apart (``rejected``, ``folder_markers``) and never re-driven. An object without a
version id (written while versioning was off) is reported missing but not re-driven: the trigger's
name for it digests the notification's sequencer, which no listing shows, so a re-drive could not
be told apart from a late delivery. The upload bucket of this stack is versioned. A re-drive's row
is keyed by LastModified, which S3 lists to the second; when that key is already another version's
row, the writer stores the re-drive under the tie-broken key ``<LastModified>#<version id>``, and
rows are matched to versions by VersionId, whatever their UploadTimestamp. Only a version whose
(key, LastModified) is a row with neither VersionId nor Sequencer is reported, not re-driven (the
writer cannot tell the two apart and would keep that row only): upload it again.

Output: one JSON line per missing or rejected object version on stdout, then, last, the summary
``objects=N ingested=N in_flight=N missing=N redriven=N rejected=N folder_markers=N failed=N``
(``objects`` counts every object version listed; ``failed``: starts that failed, still missing).
A progress bar goes to stderr on long runs. Exit status: 0 when nothing is missing at the end (a
version re-driven by this run counts as no longer missing), 1 otherwise, 2 on an error that stops
the run (bucket, table or state machine not found, access denied, AWS unreachable).

    .venv/bin/python scripts/reconcile.py --bucket B --table T --state-machine-arn ARN \\
        [--endpoint-url URL] [--region R] [--redrive] [--settle-seconds S]

After the summary, notes about the run (an EXPRESS re-drive's, above) go to stderr, each line
``reconcile: note: ...``.

Credentials come from the default chain; ``--endpoint-url`` points every client at an emulator.
The IAM policy it needs is the Terraform output ``reconcile_operator_policy_json``. The Python API
is :func:`reconcile` with :class:`Clients`, returning a :class:`Summary`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TextIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from any directory: lambda_common is at the root
    sys.path.insert(0, str(REPO_ROOT))

from lambda_common.contract import ExecutionInput  # noqa: E402
from lambda_common.key_validation import InvalidKeyError, is_folder_marker, validate_key  # noqa: E402
from lambda_common.naming import (  # noqa: E402
    MAX_ATTEMPT,
    WorkflowType,
    execution_arn,
    execution_name,
    has_version_id,
    object_digest,
    parse_execution_name,
)

REDRIVE_EVENT_NAME: Final = "ObjectCreated:Redrive"
DEFAULT_WORKERS: Final = 8
IN_FLIGHT_STATUSES: Final = frozenset({"RUNNING", "PENDING_REDRIVE"})
CLOSED_WITHOUT_ROW: Final = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
INTERRUPTED: Final = frozenset({"TIMED_OUT", "ABORTED"})
"""Closed without waiting for the task: a writer invocation may outlive the execution."""
DEFAULT_SETTLE_SECONDS: Final = 900.0
"""STANDARD: how long an interrupted execution counts as in flight (Lambda's maximum function
timeout). EXPRESS: how long an object without a row counts as in flight: about the longest its
notification takes with the stack's defaults (5 receives, 181 s of visibility timeout apart: the
last start about 724 s after the first, then an execution of at most 174 s with the default writer
retries). A backlog in the upload queue, or longer retry settings, need more."""
NOT_FOUND_CODES: Final = frozenset(
    {"NoSuchBucket", "ResourceNotFoundException", "StateMachineDoesNotExist", "404"}
)
ACCESS_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "403",
    }
)
_STATE_MACHINE_ARN: Final = re.compile(
    r"arn:(?P<partition>[a-z-]+):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"stateMachine:(?P<name>[A-Za-z0-9_-]{1,80})"
)

T = TypeVar("T")
R = TypeVar("R")


# --- errors ------------------------------------------------------------------------------------


class ReconcileError(RuntimeError):
    """An error that stops the run (exit status 2); the message says what to do."""


class ResourceNotFoundError(ReconcileError):
    """The bucket, table or state machine does not exist (in this account and region)."""


class AccessDeniedError(ReconcileError):
    """The credentials may not make a call the tool needs (see reconcile_operator_policy_json)."""


class AwsUnavailableError(ReconcileError):
    """No credentials or region, or the endpoint cannot be reached."""


class AwsCallError(ReconcileError):
    """Any other AWS error that stops the run."""


class UnsupportedWorkflowError(ReconcileError):
    """DescribeStateMachine named a workflow type this tool does not know."""


def _error_for(err: ClientError, action: str, resource: str) -> ReconcileError:
    code = str(err.response.get("Error", {}).get("Code", "Unknown"))
    message = err.response.get("Error", {}).get("Message") or str(err)
    if code in NOT_FOUND_CODES:
        return ResourceNotFoundError(f"{resource} not found ({action}: {code}: {message})")
    if code in ACCESS_DENIED_CODES:
        return AccessDeniedError(
            f"access denied to {resource} ({action}: {code}: {message}); the tool needs the "
            "Terraform output reconcile_operator_policy_json"
        )
    return AwsCallError(f"{action} on {resource} failed: {code}: {message}")


@contextmanager
def aws_errors(action: str, resource: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into :class:`ReconcileError` subclasses."""
    try:
        yield
    except ClientError as err:
        raise _error_for(err, action, resource) from err
    except (NoCredentialsError, NoRegionError) as err:
        raise AwsUnavailableError(f"{action}: {err}; configure credentials and a region") from err
    except EndpointConnectionError as err:
        raise AwsUnavailableError(f"{action}: {err}") from err
    except BotoCoreError as err:
        raise AwsCallError(f"{action} on {resource} failed: {err}") from err


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateMachine:
    """A state machine ARN, and the ARNs of its executions."""

    arn: str
    partition: str
    region: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> StateMachine:
        match = _STATE_MACHINE_ARN.fullmatch(arn)
        if match is None:
            raise ValueError(
                f"not a state machine ARN: {arn!r} (expected arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
            )
        return cls(arn=arn, **match.groupdict())

    def execution_arn(self, execution: str) -> str:
        return execution_arn(self.arn, execution)  # the trigger builds it the same way


@dataclass(frozen=True)
class Clients:
    """The three boto3 clients the tool uses (thread-safe; shared by the workers)."""

    s3: Any
    dynamodb: Any
    stepfunctions: Any

    @classmethod
    def create(
        cls,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.session.Session | None = None,
        max_pool_connections: int = DEFAULT_WORKERS * 2,
    ) -> Clients:
        """Clients from the default credential chain (or ``session``); ``endpoint_url`` for an emulator.

        Throttled calls are retried with backoff (botocore's standard mode, up to 10 attempts).
        """
        session = session or boto3.session.Session()
        config = Config(
            retries={"mode": "standard", "max_attempts": 10},
            max_pool_connections=max_pool_connections,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )

        def client(service: str) -> Any:
            return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)

        with aws_errors("creating clients", "the AWS configuration"):
            return cls(s3=client("s3"), dynamodb=client("dynamodb"), stepfunctions=client("stepfunctions"))


@dataclass(frozen=True)
class ObjectVersion:
    """One object version of the bucket, as ListObjectVersions shows it."""

    bucket: str
    key: str
    version_id: str | None
    """None for S3's ``"null"`` version (written while versioning was off or suspended)."""
    last_modified: datetime
    etag: str | None
    size: int

    @property
    def has_version(self) -> bool:
        return self.version_id is not None

    @property
    def is_folder_marker(self) -> bool:
        """The trigger's rule, from the one place it is written (``lambda_common.key_validation``)."""
        return is_folder_marker(self.key, self.size)

    def name(self, attempt: int = 0) -> str:
        return execution_name(self.bucket, self.key, self.version_id, None, attempt=attempt)

    @property
    def digest(self) -> str:
        return object_digest(self.bucket, self.key, self.version_id)

    def execution_input(self) -> ExecutionInput:
        """What the trigger would have started it with; LastModified stands in for the event time."""
        return ExecutionInput(
            bucket=self.bucket,
            key=self.key,
            size=self.size,
            etag=self.etag,
            version_id=self.version_id,
            sequencer=None,
            event_time=iso_timestamp(self.last_modified),
            event_name=REDRIVE_EVENT_NAME,
        )


def iso_timestamp(moment: datetime) -> str:
    """``2026-01-15T10:20:30.000Z``: the format of an S3 event's eventTime."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- outputs -----------------------------------------------------------------------------------


class Status(StrEnum):
    INGESTED = "ingested"
    IN_FLIGHT = "in_flight"
    MISSING = "missing"
    REJECTED = "rejected"
    FOLDER_MARKER = "folder_marker"


class Action(StrEnum):
    """What became of a missing object version."""

    REPORTED = "reported"  # no --redrive
    REDRIVEN = "redriven"
    START_FAILED = "start_failed"
    UNVERSIONED = "cannot_redrive_unversioned"  # see the module docstring
    TOO_MANY_ATTEMPTS = "cannot_redrive_too_many_attempts"
    TIMESTAMP_TAKEN = "cannot_redrive_timestamp_taken"  # see Reconciliation.with_free_slots


@dataclass(frozen=True)
class Finding:
    """A missing or rejected object version, and what was done about it."""

    status: Status
    key: str
    version_id: str | None
    action: Action | None = None
    execution_name: str | None = None
    reason: str | None = None

    def to_json(self) -> str:
        fields = {
            "status": str(self.status),
            "key": self.key,
            "version_id": self.version_id,
            "action": str(self.action) if self.action else None,
            "execution_name": self.execution_name,
            "reason": self.reason,
        }
        return json.dumps({name: value for name, value in fields.items() if value is not None})


@dataclass(frozen=True)
class Summary:
    objects: int
    ingested: int
    in_flight: int
    missing: int
    redriven: int
    rejected: int
    folder_markers: int
    failed: int
    findings: tuple[Finding, ...] = ()
    redriven_executions: tuple[str, ...] = ()
    """Names of the executions this run started."""
    workflow_type: WorkflowType = WorkflowType.STANDARD
    notes: tuple[str, ...] = ()
    """What the operator should know about this run (printed to stderr after the summary)."""

    @property
    def still_missing(self) -> int:
        return self.missing - self.redriven

    @property
    def exit_status(self) -> int:
        return 0 if self.still_missing == 0 else 1

    def line(self) -> str:
        counts = (
            ("objects", self.objects),
            ("ingested", self.ingested),
            ("in_flight", self.in_flight),
            ("missing", self.missing),
            ("redriven", self.redriven),
            ("rejected", self.rejected),
            ("folder_markers", self.folder_markers),
            ("failed", self.failed),
        )
        return " ".join(f"{name}={value}" for name, value in counts)


# --- progress ----------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on ``stream``, shown only once a run has lasted ``delay`` seconds.

    Thread-safe; redrawn at most every ``interval`` seconds. Disabled, it does nothing.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        delay: float = 1.0,
        interval: float = 0.1,
        width: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._delay = delay
        self._interval = interval
        self._width = width
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._label = ""
        self._total: int | None = None
        self._count = 0
        self._drawn_at: float | None = None
        self._shown = 0

    @classmethod
    def disabled(cls) -> Progress:
        return cls(enabled=False)

    def phase(self, label: str, total: int | None = None) -> None:
        with self._lock:
            self._label, self._total, self._count = label, total, 0
            self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._count += count
            self._draw(force=False)

    def close(self) -> None:
        with self._lock:
            if self._shown:
                self._stream.write("\r" + " " * self._shown + "\r")
                self._stream.flush()
                self._shown = 0

    def render(self) -> str:
        if self._total is None:
            return f"{self._label}: {self._count}"
        done = min(self._count, self._total)
        filled = self._width * done // self._total if self._total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        return f"{self._label} [{bar}] {done}/{self._total}"

    def _draw(self, *, force: bool) -> None:
        if not self._enabled:
            return
        now = self._clock()
        if now - self._started < self._delay:
            return
        if not force and self._drawn_at is not None and now - self._drawn_at < self._interval:
            return
        text = self.render()
        self._stream.write("\r" + text.ljust(self._shown))
        self._stream.flush()
        self._shown = max(self._shown, len(text))
        self._drawn_at = now


# --- read --------------------------------------------------------------------------------------


def _pagination(page_size: int | None) -> dict[str, Any]:
    return {"PageSize": page_size} if page_size else {}


def list_object_versions(
    s3: Any, bucket: str, progress: Progress, page_size: int | None = None
) -> list[ObjectVersion]:
    """Every object version of the bucket, those hidden by a delete marker included (still
    uploads); delete markers themselves are not objects."""
    progress.phase("listing object versions")
    versions: list[ObjectVersion] = []
    paginator = s3.get_paginator("list_object_versions")
    with aws_errors("s3:ListBucketVersions", f"bucket {bucket!r}"):
        for page in paginator.paginate(Bucket=bucket, PaginationConfig=_pagination(page_size)):
            listed = page.get("Versions", [])
            versions.extend(
                ObjectVersion(
                    bucket=bucket,
                    key=entry["Key"],
                    version_id=entry["VersionId"] if has_version_id(entry.get("VersionId")) else None,
                    last_modified=entry["LastModified"],
                    etag=entry["ETag"].strip('"') if entry.get("ETag") else None,
                    size=int(entry.get("Size", 0)),
                )
                for entry in listed
            )
            progress.advance(len(listed))
    return versions


@dataclass(frozen=True)
class Rows:
    """What the metadata table holds, as far as reconciling goes."""

    versions: frozenset[tuple[str, str | None]]
    """(Filename, VersionId) of every row; VersionId None when the row has none (or S3's "null").
    A version's row is found by these whatever its UploadTimestamp: the event time, LastModified,
    or either with the writer's tie-break suffix (``#`` and the version id or sequencer)."""
    anonymous_slots: frozenset[tuple[str, str]]
    """(Filename, UploadTimestamp) of the rows with neither VersionId nor Sequencer: the writer
    takes any version written under such a key for the one the row records, and keeps that row."""


def scan_rows(dynamodb: Any, table: str, progress: Progress, page_size: int | None = None) -> Rows:
    """One consistent Scan of the table, projected on the four attributes used."""
    progress.phase("reading the metadata table")
    versions: set[tuple[str, str | None]] = set()
    anonymous: set[tuple[str, str]] = set()
    paginator = dynamodb.get_paginator("scan")
    with aws_errors("dynamodb:Scan", f"table {table!r}"):
        for page in paginator.paginate(
            TableName=table,
            ProjectionExpression="#filename, #timestamp, #version, #sequencer",
            ExpressionAttributeNames={
                "#filename": "Filename",
                "#timestamp": "UploadTimestamp",
                "#version": "VersionId",
                "#sequencer": "Sequencer",
            },
            ConsistentRead=True,
            PaginationConfig=_pagination(page_size),
        ):
            for item in page.get("Items", []):
                filename = item["Filename"]["S"]
                version = item.get("VersionId", {}).get("S")
                versions.add((filename, version if has_version_id(version) else None))
                if not has_version_id(version) and not item.get("Sequencer", {}).get("S"):
                    anonymous.add((filename, item["UploadTimestamp"]["S"]))
            progress.advance(len(page.get("Items", [])))
    return Rows(frozenset(versions), frozenset(anonymous))


def running_digests(
    sfn: Any, machine: StateMachine, progress: Progress, page_size: int | None = None
) -> set[str]:
    """The objects (digests) that a RUNNING execution of the state machine is for."""
    progress.phase("listing running executions")
    digests: set[str] = set()
    paginator = sfn.get_paginator("list_executions")
    with aws_errors("states:ListExecutions", f"state machine {machine.arn!r}"):
        for page in paginator.paginate(
            stateMachineArn=machine.arn, statusFilter="RUNNING", PaginationConfig=_pagination(page_size)
        ):
            for execution in page.get("executions", []):
                parts = parse_execution_name(execution["name"])
                if parts is not None:
                    digests.add(parts.digest)
            progress.advance(len(page.get("executions", [])))
    return digests


def describe_workflow_type(sfn: Any, machine: StateMachine) -> WorkflowType:
    """The state machine's type; raise :class:`UnsupportedWorkflowError` for one this tool does not know."""
    with aws_errors("states:DescribeStateMachine", f"state machine {machine.arn!r}"):
        described = sfn.describe_state_machine(stateMachineArn=machine.arn)
    kind = described.get("type")
    try:
        return WorkflowType(kind)
    except ValueError:
        known = ", ".join(WorkflowType)
        raise UnsupportedWorkflowError(
            f"state machine {machine.arn!r} is of type {kind!r}; this tool knows {known}"
        ) from None


@dataclass(frozen=True)
class ExecutionState:
    status: str
    stop_date: datetime | None


def describe_execution(sfn: Any, machine: StateMachine, name: str) -> ExecutionState | None:
    """The status (and stop date) of the execution of that name, or None when there is none."""
    arn = machine.execution_arn(name)
    with aws_errors("states:DescribeExecution", f"execution {arn!r}"):
        try:
            described = sfn.describe_execution(executionArn=arn)
        except ClientError as err:
            if error_code(err) == "ExecutionDoesNotExist":
                return None
            raise
    return ExecutionState(status=str(described["status"]), stop_date=described.get("stopDate"))


# --- classify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What the executions say about an object version that has no row."""

    status: Status
    attempt: int = 0
    """For MISSING: the attempt whose name a re-drive uses (0: the trigger's own name)."""


def judge_by_executions(
    sfn: Any,
    machine: StateMachine,
    obj: ObjectVersion,
    settle_seconds: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Verdict:
    """Walk the object's names (the trigger's, then ``-r1``, ``-r2``...) until one is unused.

    A RUNNING one means in flight; a SUCCEEDED one means ingested (its row was written after the
    table was read); a name whose execution ended FAILED, TIMED_OUT or ABORTED is taken, so the
    next one is tried. An execution stopped (ABORTED) or timed out less than ``settle_seconds`` ago
    counts as in flight: its writer invocation may still be running and write the row.
    """
    for attempt in range(MAX_ATTEMPT + 1):
        state = describe_execution(sfn, machine, obj.name(attempt))
        if state is None:
            return Verdict(Status.MISSING, attempt)
        if state.status in IN_FLIGHT_STATUSES:
            return Verdict(Status.IN_FLIGHT)
        if state.status not in CLOSED_WITHOUT_ROW:  # SUCCEEDED
            return Verdict(Status.INGESTED)
        if state.status in INTERRUPTED and _recently(state.stop_date, settle_seconds, now()):
            return Verdict(Status.IN_FLIGHT)
    return Verdict(Status.MISSING, MAX_ATTEMPT + 1)


def _recently(moment: datetime | None, seconds: float, now: datetime) -> bool:
    return moment is None or (now - moment).total_seconds() < seconds


def judge_by_age(obj: ObjectVersion, settle_seconds: float, now: datetime) -> Status:
    """EXPRESS: a version without a row is in flight while its object is younger than
    ``settle_seconds`` (its notification may still be on its way), missing after that."""
    return Status.IN_FLIGHT if _recently(obj.last_modified, settle_seconds, now) else Status.MISSING


def ingestibility(obj: ObjectVersion) -> tuple[Status | None, str | None]:
    """(REJECTED, reason), (FOLDER_MARKER, None), or (None, None) for an ingestible version."""
    try:
        validate_key(obj.key)
    except InvalidKeyError as err:
        return Status.REJECTED, err.reason
    if obj.is_folder_marker:
        return Status.FOLDER_MARKER, None
    return None, None


# --- act ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartOutcome:
    status: Status
    action: Action | None
    reason: str | None = None


def start_redrive(sfn: Any, machine: StateMachine, obj: ObjectVersion, name: str) -> StartOutcome:
    """Start the object under ``name``; ExecutionAlreadyExists means someone else just did."""
    payload = json.dumps(obj.execution_input(), ensure_ascii=False)
    with aws_errors("states:StartExecution", f"state machine {machine.arn!r}"):
        try:
            sfn.start_execution(stateMachineArn=machine.arn, name=name, input=payload)
        except ClientError as err:
            code = error_code(err)
            if code == "ExecutionAlreadyExists":
                return StartOutcome(Status.IN_FLIGHT, None)
            if code in NOT_FOUND_CODES or code in ACCESS_DENIED_CODES:
                raise
            return StartOutcome(Status.MISSING, Action.START_FAILED, f"{code}: {err}")
    return StartOutcome(Status.MISSING, Action.REDRIVEN)


def run_concurrently(
    function: Callable[[T], R], items: Sequence[T], workers: int, progress: Progress
) -> list[R]:
    """``function`` over ``items`` on ``workers`` threads, results in order; the first error stops it."""
    if not items:
        return []

    def tracked(item: T) -> R:
        result = function(item)
        progress.advance()
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(tracked, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:
            for future in futures:  # after an error, start nothing more (a no-op for finished ones)
                future.cancel()


# --- the whole run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    workers: int = DEFAULT_WORKERS
    """Concurrent DescribeExecution/StartExecution calls."""
    page_size: int | None = None
    """Items per listing page (the services' default when None)."""
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    """STANDARD: how long an ABORTED or TIMED_OUT execution still counts as in flight. EXPRESS: how
    long an object without a row still counts as in flight."""


@dataclass
class Tally:
    """The counts and findings of one run, kept by the main thread only."""

    objects: int = 0
    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(Status, 0))
    redriven: list[str] = field(default_factory=list)
    failed: int = 0
    findings: list[Finding] = field(default_factory=list)
    workflow_type: WorkflowType = WorkflowType.STANDARD
    notes: list[str] = field(default_factory=list)

    def count(self, status: Status, amount: int = 1) -> None:
        self.counts[status] += amount

    def summary(self) -> Summary:
        return Summary(
            objects=self.objects,
            ingested=self.counts[Status.INGESTED],
            in_flight=self.counts[Status.IN_FLIGHT],
            missing=self.counts[Status.MISSING],
            redriven=len(self.redriven),
            rejected=self.counts[Status.REJECTED],
            folder_markers=self.counts[Status.FOLDER_MARKER],
            failed=self.failed,
            findings=tuple(self.findings),
            redriven_executions=tuple(self.redriven),
            workflow_type=self.workflow_type,
            notes=tuple(self.notes),
        )


Missing = tuple[ObjectVersion, int]
"""A missing object version, and the attempt whose name a re-drive uses."""


@dataclass
class Reconciliation:
    """One run: the workflow type, then bucket, then table, then (STANDARD) executions, so that a
    write landing in between is seen."""

    clients: Clients
    machine: StateMachine
    options: Options
    progress: Progress
    tally: Tally = field(default_factory=Tally)

    def run(self, bucket: str, table: str, redrive: bool) -> Summary:
        workflow = describe_workflow_type(self.clients.stepfunctions, self.machine)
        self.tally.workflow_type = workflow
        versions = list_object_versions(self.clients.s3, bucket, self.progress, self.options.page_size)
        self.tally.objects = len(versions)
        rows = scan_rows(self.clients.dynamodb, table, self.progress, self.options.page_size)
        pending = self.without_rows(versions, rows)
        judged = self.judge_by_age(pending) if workflow is WorkflowType.EXPRESS else self.judge(pending)
        missing = self.with_free_slots(judged, rows)
        if redrive:
            self.redrive(missing)
            if workflow is WorkflowType.EXPRESS and self.tally.redriven:
                self.tally.notes.append(express_redrive_note(len(self.tally.redriven)))
        else:
            self.tally.findings.extend(
                Finding(Status.MISSING, obj.key, obj.version_id, Action.REPORTED, obj.name(attempt))
                for obj, attempt in missing
            )
        return self.tally.summary()

    def without_rows(self, versions: Iterable[ObjectVersion], rows: Rows) -> list[ObjectVersion]:
        """The ingestible versions without a row; counts the others."""
        pending = []
        for obj in versions:
            status, reason = ingestibility(obj)
            if status is Status.REJECTED:
                self.tally.findings.append(Finding(status, obj.key, obj.version_id, reason=reason))
            if status is None and (obj.key, obj.version_id) in rows.versions:
                status = Status.INGESTED
            if status is None:
                pending.append(obj)
            else:
                self.tally.count(status)
        return pending

    def judge(self, pending: list[ObjectVersion]) -> list[Missing]:
        """Classify the versions without a row by their executions; return the re-drivable missing
        ones. Versions that cannot be re-driven are counted missing and listed as findings."""
        versioned = [obj for obj in pending if obj.has_version]
        for obj in pending:
            if not obj.has_version:
                self.tally.count(Status.MISSING)
                self.tally.findings.append(Finding(Status.MISSING, obj.key, None, Action.UNVERSIONED))
        sfn = self.clients.stepfunctions
        # Listed even when nothing is pending: a wrong state machine ARN is an error, not a pass.
        running = running_digests(sfn, self.machine, self.progress, self.options.page_size)
        unexplained = [obj for obj in versioned if obj.digest not in running]
        self.tally.count(Status.IN_FLIGHT, len(versioned) - len(unexplained))
        self.progress.phase("checking executions", len(unexplained))
        verdicts = run_concurrently(
            lambda obj: judge_by_executions(sfn, self.machine, obj, self.options.settle_seconds),
            unexplained,
            self.options.workers,
            self.progress,
        )
        missing = []
        for obj, verdict in zip(unexplained, verdicts, strict=True):
            self.tally.count(verdict.status)
            if verdict.status is not Status.MISSING:
                continue
            if verdict.attempt > MAX_ATTEMPT:
                self.tally.findings.append(
                    Finding(Status.MISSING, obj.key, obj.version_id, Action.TOO_MANY_ATTEMPTS)
                )
            else:
                missing.append((obj, verdict.attempt))
        return missing

    def judge_by_age(self, pending: list[ObjectVersion]) -> list[Missing]:
        """EXPRESS: classify the versions without a row by their age (no execution can be asked
        for); return the re-drivable missing ones, under the trigger's name (attempt 0). A missing
        version without a version id is counted and listed as a finding, as in :meth:`judge`."""
        now = datetime.now(UTC)
        missing = []
        for obj in pending:
            status = judge_by_age(obj, self.options.settle_seconds, now)
            self.tally.count(status)
            if status is not Status.MISSING:
                continue
            if obj.has_version:
                missing.append((obj, 0))
            else:
                self.tally.findings.append(Finding(Status.MISSING, obj.key, None, Action.UNVERSIONED))
        return missing

    def with_free_slots(self, missing: list[Missing], rows: Rows) -> list[Missing]:
        """The missing versions the writer can store; lists the others.

        A re-drive's row is keyed by (Filename, LastModified). When that key holds another
        version's row, the writer stores the re-drive under the tie-broken key instead; but a row
        with neither VersionId nor Sequencer cannot be told apart from any version, so the writer
        would report the re-drive a duplicate and keep that row. Such versions are reported, to be
        uploaded again.
        """
        free = []
        for obj, attempt in missing:
            slot = (obj.key, iso_timestamp(obj.last_modified))
            if slot in rows.anonymous_slots:
                reason = (
                    f"a row of this key with UploadTimestamp {slot[1]} has neither VersionId nor "
                    "Sequencer, so the writer would take this version for it; upload the object "
                    "again to ingest it"
                )
                self.tally.findings.append(
                    Finding(Status.MISSING, obj.key, obj.version_id, Action.TIMESTAMP_TAKEN, reason=reason)
                )
                continue
            free.append((obj, attempt))
        return free

    def redrive(self, missing: list[Missing]) -> None:
        self.progress.phase("re-driving", len(missing))
        outcomes = run_concurrently(
            lambda item: start_redrive(
                self.clients.stepfunctions, self.machine, item[0], item[0].name(item[1])
            ),
            missing,
            self.options.workers,
            self.progress,
        )
        for (obj, attempt), outcome in zip(missing, outcomes, strict=True):
            name = obj.name(attempt)
            if outcome.status is Status.IN_FLIGHT:  # started meanwhile, by the trigger or another run
                self.tally.count(Status.MISSING, -1)
                self.tally.count(Status.IN_FLIGHT)
                continue
            if outcome.action is Action.REDRIVEN:
                self.tally.redriven.append(name)
            else:
                self.tally.failed += 1
            self.tally.findings.append(
                Finding(Status.MISSING, obj.key, obj.version_id, outcome.action, name, outcome.reason)
            )


def express_redrive_note(redriven: int) -> str:
    """What an operator must know after re-driving an EXPRESS workflow."""
    return (
        f"EXPRESS workflow: {redriven} execution(s) started. Express keeps no execution names, so "
        "running this tool again before their rows are written starts them again; that is safe, the "
        "writer's conditional put keeps one row per version (same Filename and LastModified). A "
        "notification of the same version still queued (a backlog, the dead-letter queue) would write "
        "a second row, keyed by S3's event time: re-drive only once both queues are empty."
    )


def reconcile(
    clients: Clients,
    bucket: str,
    table: str,
    state_machine_arn: str,
    redrive: bool = False,
    *,
    workers: int = DEFAULT_WORKERS,
    page_size: int | None = None,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    progress: Progress | None = None,
) -> Summary:
    """Classify every object version of ``bucket``; with ``redrive``, start the missing ones.

    The state machine's type (DescribeStateMachine) decides how: STANDARD asks its executions,
    EXPRESS never calls ListExecutions or DescribeExecution and judges by age (module docstring).
    Raises :class:`ReconcileError` (or ``ValueError`` for a malformed ARN) when the run cannot go
    on. See :class:`Options` for ``workers``, ``page_size`` and ``settle_seconds``.
    """
    progress = progress or Progress.disabled()
    run = Reconciliation(
        clients=clients,
        machine=StateMachine.parse(state_machine_arn),
        options=Options(workers=workers, page_size=page_size, settle_seconds=settle_seconds),
        progress=progress,
    )
    try:
        return run.run(bucket, table, redrive)
    finally:
        progress.close()


# --- command line ------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def state_machine_arn(text: str) -> str:
    try:
        return StateMachine.parse(text).arn
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="reconcile.py",
        description="Compare the upload bucket's object versions with the metadata table and (for a "
        "STANDARD state machine) its executions; with --redrive, start the missing ones under their "
        "deterministic names. An EXPRESS state machine's executions cannot be asked for: a version "
        "without a row is in flight while younger than --settle-seconds, else missing. "
        "Exit 0: nothing missing; 1: something missing; 2: error.",
    )
    parser.add_argument("--bucket", required=True, help="the upload bucket (output s3_bucket_name)")
    parser.add_argument("--table", required=True, help="the metadata table (output dynamodb_table_name)")
    parser.add_argument(
        "--state-machine-arn",
        required=True,
        type=state_machine_arn,
        help="the ingestion state machine (output step_function_arn)",
    )
    parser.add_argument("--endpoint-url", help="an AWS emulator's endpoint; default: AWS itself")
    parser.add_argument("--region", help="default: the state machine ARN's region")
    parser.add_argument(
        "--redrive",
        action="store_true",
        help="start the missing object versions (EXPRESS: one new execution per version and run; "
        "harmless when repeated, the writer keeps one row; re-drive once the upload queue and its "
        "dead-letter queue are empty)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=DEFAULT_WORKERS,
        help=f"concurrent Step Functions calls (default {DEFAULT_WORKERS})",
    )
    parser.add_argument("--page-size", type=positive_int, help="items per listing page (default: AWS's)")
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=DEFAULT_SETTLE_SECONDS,
        help="STANDARD: an execution ABORTED or TIMED_OUT less than this long ago still counts as in "
        "flight, since its writer invocation may still run. EXPRESS: an object without a row that is "
        "younger than this (by LastModified) counts as in flight, since its notification may still be "
        "queued, retried or running; raise it when the upload queue has a backlog "
        "(ApproximateAgeOfOldestMessage) or longer retry settings "
        f"(default {DEFAULT_SETTLE_SECONDS:.0f}: Lambda's maximum timeout, and about the longest a "
        "notification takes through the default queue retries and writer retries)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr: auto (when stderr is a terminal), always or never",
    )
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = parse_args(argv)
    enabled = args.progress == "always" or (args.progress == "auto" and stderr.isatty())
    progress = Progress(stderr, enabled=enabled)
    try:
        clients = Clients.create(
            region=args.region or StateMachine.parse(args.state_machine_arn).region,
            endpoint_url=args.endpoint_url,
            max_pool_connections=args.workers * 2,
        )
        summary = reconcile(
            clients,
            args.bucket,
            args.table,
            args.state_machine_arn,
            args.redrive,
            workers=args.workers,
            page_size=args.page_size,
            settle_seconds=args.settle_seconds,
            progress=progress,
        )
    except ReconcileError as err:
        print(f"reconcile: error: {err}", file=stderr)
        return 2
    for finding in summary.findings:
        print(finding.to_json(), file=stdout)
    print(summary.line(), file=stdout)
    for note in summary.notes:
        print(f"reconcile: note: {note}", file=stderr)
    return summary.exit_status


if __name__ == "__main__":
    sys.exit(main())
