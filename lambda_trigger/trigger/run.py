"""What the messages of one invocation share: the clients, the settings, the clock, the logger and
what happened so far; and what one message (or a direct invocation's event) came to.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient

from trigger.config import TriggerConfig


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

    The handler's ``CLOCK`` (real sleeps) is given each invocation's remaining time by
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
    logger: Logger
    """The handler's logger: every line of the invocation goes through it."""
    clock: Clock = field(default_factory=Clock)
    throttle_waits: int = 0
    """Waits made for throttled starts so far."""
    attempted: dict[str, StartResult] = field(default_factory=dict)
    """Execution name -> the result of its one StartExecution in this invocation."""
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    """Message id -> the outcome of every message attempted."""
    deferred: list[str] = field(default_factory=list)
    """Ids of the messages not attempted for lack of time."""


def _listed(failures: Sequence[FailedStart]) -> str:
    listed = ", ".join(f"{failure.key!r} ({failure.error_code})" for failure in failures)
    return f"{len(failures)} object(s): {listed}"


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
