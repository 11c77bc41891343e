"""What the admin API and the WSGI layer need of a running emulator: the :class:`EmulatorControl`
Protocol, which :class:`~emulator.server.Emulator` satisfies.

:mod:`emulator.admin` and :mod:`emulator.app` depend on this instead of on :mod:`emulator.server`,
which imports them: no import cycle (not even an annotation-only one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from emulator.context import S3Settings
    from emulator.faults import FaultRegistry
    from emulator.lambda_async import AsyncInvoker


class EmulatorControl(Protocol):
    """The running emulator as its admin routes and its WSGI front see it."""

    faults: FaultRegistry
    s3_settings: S3Settings
    async_invoker: AsyncInvoker | None

    def health(self) -> dict[str, Any]: ...

    def lambda_stats(self) -> dict[str, Any]: ...

    def configure_lambda(
        self, warm: bool | None = None, idle_timeout: float | None = None, max_per_function: int | None = None
    ) -> None: ...

    def wait_for_async_invocations(self, timeout: float = 60.0) -> bool: ...

    def wait_for_event_sources(self, timeout: float = 60.0) -> bool: ...

    def event_source_stats(self) -> dict[str, Any]: ...

    def wait_until_idle(self, timeout: float = 60.0) -> bool: ...

    def trigger_rule(
        self,
        name: str,
        region: str = "us-east-1",
        event_bus: str = "default",
        event: dict[str, Any] | None = None,
        account_id: str = "123456789012",
    ) -> dict[str, Any]: ...

    def evaluate_alarms(self) -> list[dict[str, Any]]: ...

    def alarm_status(self) -> dict[str, Any]: ...
