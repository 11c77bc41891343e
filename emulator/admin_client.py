"""The one HTTP client for the emulator's admin API (``/_emulator/...``).

Every caller (the CLI, the devkit, tests, :func:`add_fault` and friends) goes through
:class:`AdminClient`, which never uses a proxy: ``HTTP_PROXY`` set in a developer's shell would
otherwise route loopback admin calls to the proxy.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from emulator.faults import DEFAULT_ERROR_CODE, DEFAULT_MESSAGE, DEFAULT_STATUS, rule_fields

HEALTH_PATH = "/_emulator/health"


class AdminError(RuntimeError):
    """An admin API call failed; the message says which call and what the emulator answered."""


class EmulatorUnreachableError(AdminError):
    """Nothing answered at the endpoint, or it was not healthy in time."""


class AdminClient:
    """``AdminClient(endpoint_url).call("POST", "/_emulator/faults", {...})`` -> parsed JSON."""

    def __init__(self, endpoint_url: str, timeout: float = 30.0) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, payload: Any = None, timeout: float | None = None) -> Any:
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is the caller's emulator endpoint
            self.endpoint_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(request, timeout=timeout or self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace")
            raise AdminError(f"{method} {path} failed with HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise EmulatorUnreachableError(f"{method} {self.endpoint_url}{path}: {exc}") from exc

    def health(self, timeout: float = 2.0) -> dict[str, Any]:
        return dict(self.call("GET", HEALTH_PATH, timeout=timeout))

    def evaluate_alarms(self) -> list[dict[str, Any]]:
        """Evaluate the SQS alarms now instead of at the next ``alarm_interval``; the state changes."""
        return list(self.call("POST", "/_emulator/alarms/evaluate")["transitions"])

    def alarms(self) -> dict[str, Any]:
        """The alarm evaluator's settings and each alarm's last evaluation (or why it is skipped)."""
        return dict(self.call("GET", "/_emulator/alarms"))

    def event_sources(self) -> dict[str, Any]:
        """Every SQS event source mapping's settings and counters, and whether all are drained."""
        return dict(self.call("GET", "/_emulator/event-sources"))

    def wait_for_event_sources(self, timeout: float = 60.0) -> bool:
        """Wait until every queue of an enabled SQS event source mapping is drained."""
        path = f"/_emulator/event-sources/wait?timeout={timeout}"
        return bool(self.call("POST", path, timeout=timeout + 10)["drained"])

    def wait_until_idle(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until no async invocation is pending and every mapped queue is drained; ``idle``
        says whether that happened within ``timeout``."""
        return dict(self.call("POST", f"/_emulator/wait?timeout={timeout}", timeout=timeout + 10))

    def wait_until_healthy(self, timeout: float = 30.0, interval: float = 0.1) -> dict[str, Any]:
        """Poll the health endpoint until it answers; returns its JSON."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.health()
            except (AdminError, json.JSONDecodeError) as exc:
                last_error = str(exc)
            if time.monotonic() >= deadline:
                raise EmulatorUnreachableError(
                    f"emulator at {self.endpoint_url} not healthy after {timeout:.0f}s: {last_error}"
                )
            time.sleep(interval)


def wait_until_healthy(endpoint_url: str, timeout: float = 30.0, interval: float = 0.1) -> dict[str, Any]:
    return AdminClient(endpoint_url).wait_until_healthy(timeout, interval)


def add_fault(
    endpoint_url: str,
    target: str,
    match: str | None = None,
    status: int = DEFAULT_STATUS,
    error_code: str = DEFAULT_ERROR_CODE,
    message: str = DEFAULT_MESSAGE,
    times: int | None = None,
    probability: float | None = None,
    seed: int | None = None,
) -> str:
    """Add a fault rule to the emulator at ``endpoint_url``; returns the rule id."""
    rule = rule_fields(target, match, status, error_code, message, times, probability, seed)
    return str(AdminClient(endpoint_url).call("POST", "/_emulator/faults", rule)["id"])


def list_faults(endpoint_url: str) -> list[dict[str, Any]]:
    return list(AdminClient(endpoint_url).call("GET", "/_emulator/faults")["faults"])


def clear_faults(endpoint_url: str) -> int:
    return int(AdminClient(endpoint_url).call("DELETE", "/_emulator/faults")["cleared"])


def remove_fault(endpoint_url: str, rule_id: str) -> bool:
    return bool(AdminClient(endpoint_url).call("DELETE", f"/_emulator/faults/{rule_id}")["removed"])
