#!/usr/bin/env python3
"""Audit: find uploads that never became a metadata row, and re-drive them through the state machine.

The tool is the package :mod:`ingestion_reconcile` (its docstring says what it does); this script
is the README's command, the same as ``.venv/bin/ingestion-reconcile`` (``make venv`` installs the
package, editable, so it runs from any directory with the venv's Python):

    .venv/bin/python scripts/reconcile.py --bucket B --table T --state-machine-arn ARN \\
        [--endpoint-url URL] [--region R] [--redrive] [--settle-seconds S]

It re-exports the package's API for the code that imports it from here.
"""

from __future__ import annotations

import sys

from ingestion_reconcile import (
    DEFAULT_SETTLE_SECONDS,
    DEFAULT_WORKERS,
    AccessDeniedError,
    Action,
    AwsCallError,
    AwsUnavailableError,
    Clients,
    Finding,
    ObjectVersion,
    Progress,
    ReconcileError,
    ResourceNotFoundError,
    StateMachine,
    Status,
    Summary,
    UnsupportedWorkflowError,
    WorkflowType,
    reconcile,
)
from ingestion_reconcile.cli import main
from ingestion_reconcile.executions import describe_workflow_type
from ingestion_reconcile.objects import iso_timestamp
from ingestion_reconcile.verdict import judge_by_age

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
    "describe_workflow_type",
    "iso_timestamp",
    "judge_by_age",
    "main",
    "reconcile",
]

if __name__ == "__main__":
    sys.exit(main(prog="reconcile.py"))
