"""The state machine's type and executions (DescribeStateMachine, ListExecutions, DescribeExecution)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ingestion_reconcile.clients import StateMachine, pagination
from ingestion_reconcile.errors import UnsupportedWorkflowError, aws_errors, error_code
from ingestion_reconcile.progress import Progress
from lambda_common.naming import WorkflowType, parse_execution_name


def running_digests(
    sfn: Any, machine: StateMachine, progress: Progress, page_size: int | None = None
) -> set[str]:
    """The objects (digests) that a RUNNING execution of the state machine is for."""
    progress.phase("listing running executions")
    digests: set[str] = set()
    paginator = sfn.get_paginator("list_executions")
    with aws_errors("states:ListExecutions", f"state machine {machine.arn!r}"):
        for page in paginator.paginate(
            stateMachineArn=machine.arn, statusFilter="RUNNING", PaginationConfig=pagination(page_size)
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
