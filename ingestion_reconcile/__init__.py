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

    .venv/bin/ingestion-reconcile --bucket B --table T --state-machine-arn ARN \\
        [--endpoint-url URL] [--region R] [--redrive] [--settle-seconds S]

``.venv/bin/python scripts/reconcile.py`` and ``.venv/bin/python -m ingestion_reconcile`` are the
same command (:func:`ingestion_reconcile.cli.main`); ``make venv`` installs the console script.

After the summary, notes about the run (an EXPRESS re-drive's, above) go to stderr, each line
``reconcile: note: ...``.

Credentials come from the default chain; ``--endpoint-url`` points every client at an emulator.
The IAM policy it needs is the Terraform output ``reconcile_operator_policy_json``. The Python API
is :func:`reconcile` with :class:`Clients`, returning a :class:`Summary`.

Modules: :mod:`~ingestion_reconcile.objects` (the bucket's object versions),
:mod:`~ingestion_reconcile.rows` (the table), :mod:`~ingestion_reconcile.executions` (the state
machine), :mod:`~ingestion_reconcile.verdict` (classifying a version without a row),
:mod:`~ingestion_reconcile.redrive` (starting it), :mod:`~ingestion_reconcile.run` (one run),
:mod:`~ingestion_reconcile.cli` (the command line); :mod:`~ingestion_reconcile.errors`,
:mod:`~ingestion_reconcile.findings`, :mod:`~ingestion_reconcile.progress` and
:mod:`~ingestion_reconcile.clients` serve them.
"""

from __future__ import annotations

from ingestion_reconcile.clients import DEFAULT_WORKERS, Clients, StateMachine
from ingestion_reconcile.errors import (
    AccessDeniedError,
    AwsCallError,
    AwsUnavailableError,
    ReconcileError,
    ResourceNotFoundError,
    UnsupportedWorkflowError,
)
from ingestion_reconcile.findings import Action, Finding, Status, Summary
from ingestion_reconcile.objects import ObjectVersion
from ingestion_reconcile.progress import Progress
from ingestion_reconcile.run import reconcile
from ingestion_reconcile.verdict import DEFAULT_SETTLE_SECONDS
from lambda_common.naming import WorkflowType

__all__ = [
    "DEFAULT_SETTLE_SECONDS",
    "DEFAULT_WORKERS",
    "AccessDeniedError",
    "Action",
    "AwsCallError",
    "AwsUnavailableError",
    "Clients",
    "Finding",
    "ObjectVersion",
    "Progress",
    "ReconcileError",
    "ResourceNotFoundError",
    "StateMachine",
    "Status",
    "Summary",
    "UnsupportedWorkflowError",
    "WorkflowType",
    "reconcile",
]
