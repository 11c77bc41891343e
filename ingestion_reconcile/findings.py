"""What a run reports: each object version's status, the findings, and the summary line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from lambda_common.naming import WorkflowType


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
