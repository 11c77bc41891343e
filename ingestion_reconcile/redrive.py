"""Start a missing object version as the trigger would have (StartExecution)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ingestion_reconcile.clients import StateMachine
from ingestion_reconcile.errors import ACCESS_DENIED_CODES, NOT_FOUND_CODES, aws_errors, error_code
from ingestion_reconcile.findings import Action, Status
from ingestion_reconcile.objects import ObjectVersion


@dataclass(frozen=True)
class StartOutcome:
    status: Status
    action: Action | None
    reason: str | None = None


def start_redrive(sfn: Any, machine: StateMachine, obj: ObjectVersion, name: str) -> StartOutcome:
    """Start the object under ``name``; ExecutionAlreadyExists means someone else just did."""
    payload = obj.upload_record().execution_input_json()
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


def express_redrive_note(redriven: int) -> str:
    """What an operator must know after re-driving an EXPRESS workflow."""
    return (
        f"EXPRESS workflow: {redriven} execution(s) started. Express keeps no execution names, so "
        "running this tool again before their rows are written starts them again; that is safe, the "
        "writer's conditional put keeps one row per version (same Filename and LastModified). A "
        "notification of the same version still queued (a backlog, the dead-letter queue) would write "
        "a second row, keyed by S3's event time: re-drive only once both queues are empty."
    )
