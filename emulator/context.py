"""The running emulator, as the patched moto code sees it.

Every patch module reads what it needs (the endpoint, the Lambda runner, the asynchronous invoker,
the emulator's settings) from :func:`active`. This module imports nothing else of the emulator and
nothing of moto, so patch modules can import it without cycles (its annotation-only imports name
modules that do not import it back; the SQS message move tasks, whose patches read them from here,
are a :class:`MoveTaskService` Protocol instead); :mod:`emulator.registry` installs the patches when
an :class:`~emulator.server.Emulator` activates a runtime and removes them when it deactivates it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from emulator.faults import FaultRegistry
    from emulator.lambda_async import AsyncInvoker
    from emulator.lambda_runtime import LocalLambdaRunner
    from emulator.sqs_event_sources import EventSources


class EmulatorNotActiveError(RuntimeError):
    """A patched code path ran while no :class:`~emulator.server.Emulator` is active."""


@dataclass
class S3Settings:
    """S3 behaviour switches (set through the admin API)."""

    # How many times each S3 -> Lambda or SQS notification is delivered (AWS: at least once).
    notification_copies: int = 1


class MoveTaskService(Protocol):
    """The SQS message move tasks (:class:`emulator.sqs_move_tasks.MoveTasks`, which reads them from
    here: a Protocol, not an import of that module, so there is no import cycle)."""

    def start(self, source_arn: str, destination_arn: str | None, rate: int | None) -> Any: ...

    def list(self, source_arn: str, max_results: int | None) -> list[dict[str, Any]]: ...

    def cancel(self, handle: str) -> Any: ...

    def stop(self, timeout: float = 5.0) -> None: ...


@dataclass
class ActiveRuntime:
    """What the patched moto code needs from the running emulator."""

    endpoint_url: str
    runner: LocalLambdaRunner
    async_invoker: AsyncInvoker
    faults: FaultRegistry
    s3: S3Settings = field(default_factory=S3Settings)
    event_sources: EventSources | None = None
    move_tasks: MoveTaskService | None = None


_ACTIVE: ActiveRuntime | None = None
_LOCK = threading.Lock()


def activate(runtime: ActiveRuntime) -> None:
    """Make ``runtime`` the process's emulator; raises if another one is active."""
    global _ACTIVE
    with _LOCK:
        if _ACTIVE is not None:
            raise RuntimeError("another Emulator is already running in this process")
        _ACTIVE = runtime


def deactivate() -> None:
    global _ACTIVE
    with _LOCK:
        _ACTIVE = None


def active() -> ActiveRuntime:
    runtime = _ACTIVE
    if runtime is None:
        raise EmulatorNotActiveError("no Emulator is running in this process")
    return runtime


def is_active() -> bool:
    return _ACTIVE is not None


def client(service: str, region: str) -> Any:
    """A boto3 client for the active emulator (dummy credentials, no retries)."""
    session = boto3.session.Session(
        aws_access_key_id="emulator",
        aws_secret_access_key="emulator",  # noqa: S106 - dummy credentials for the local emulator
        region_name=region,
    )
    return session.client(
        service,  # type: ignore[call-overload]
        endpoint_url=active().endpoint_url,
        config=Config(retries={"total_max_attempts": 1}),
    )
