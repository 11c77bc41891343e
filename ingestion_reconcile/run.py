"""One run: list, scan, judge, and (with ``redrive``) start; :func:`reconcile` is the Python API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ingestion_reconcile.clients import DEFAULT_WORKERS, Clients, StateMachine
from ingestion_reconcile.executions import describe_workflow_type, running_digests
from ingestion_reconcile.findings import Action, Finding, Status, Summary
from ingestion_reconcile.objects import ObjectVersion, ingestibility, iso_timestamp, list_object_versions
from ingestion_reconcile.progress import Progress, run_concurrently
from ingestion_reconcile.redrive import express_redrive_note, start_redrive
from ingestion_reconcile.rows import Rows, scan_rows
from ingestion_reconcile.verdict import DEFAULT_SETTLE_SECONDS, judge_by_age, judge_by_executions
from lambda_common.naming import MAX_ATTEMPT, WorkflowType


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
