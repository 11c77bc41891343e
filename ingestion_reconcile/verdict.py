"""Classify an object version without a row: by its executions (STANDARD) or its age (EXPRESS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ingestion_reconcile.clients import StateMachine
from ingestion_reconcile.executions import describe_execution
from ingestion_reconcile.findings import Status
from ingestion_reconcile.objects import ObjectVersion
from lambda_common.naming import MAX_ATTEMPT

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
