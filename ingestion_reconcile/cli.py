"""The command line: ``.venv/bin/ingestion-reconcile``, ``python -m ingestion_reconcile`` or
``scripts/reconcile.py``, all the same :func:`main`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from ingestion_reconcile.clients import DEFAULT_WORKERS, Clients, StateMachine
from ingestion_reconcile.errors import ReconcileError
from ingestion_reconcile.progress import Progress
from ingestion_reconcile.run import reconcile
from ingestion_reconcile.verdict import DEFAULT_SETTLE_SECONDS

PROG = "ingestion-reconcile"
"""The console script's name (pyproject.toml's ``[project.scripts]``), shown in usage and errors."""


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


def parse_args(argv: Sequence[str] | None, prog: str = PROG) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
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
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    *,
    prog: str = PROG,
) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = parse_args(argv, prog)
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
