"""Fault injection: make chosen AWS requests fail without touching handler code.

A rule matches a request by its ``X-Amz-Target`` header (``target``, e.g.
``DynamoDB_20120810.PutItem``; ``"*"`` matches any request) and, optionally, a substring of the raw
request body (``match``). A matching request gets an AWS-JSON-protocol error
(``{"__type": <error_code>, "message": <message>}`` with ``status``) instead of reaching moto. ``times``
limits how often a rule fires (``None``: always).

The default error is HTTP 400 ``InjectedFault``: botocore retries only throttling codes, transient
codes (``RequestTimeout``, ``PriorRequestNotComplete``...) and HTTP 500/502/503/504, so this error
reaches the handler on the first attempt and any retry is visible only at the Step Functions level.

Over HTTP (emulator started by the CLI): ``POST /_emulator/faults`` with the rule as JSON (returns
``{"id": ...}``), ``GET /_emulator/faults`` lists, ``DELETE /_emulator/faults`` clears,
``DELETE /_emulator/faults/<id>`` removes one. :func:`add_fault`, :func:`list_faults`,
:func:`clear_faults` and :func:`remove_fault` do the same from Python given an endpoint URL.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_STATUS = 400
DEFAULT_ERROR_CODE = "InjectedFault"
DEFAULT_MESSAGE = "Fault injected by the emulator"


class FaultRuleError(ValueError):
    """A fault rule is malformed."""


@dataclass
class FaultRule:
    """One fault injection rule (see the module docstring)."""

    target: str
    match: str | None = None
    status: int = DEFAULT_STATUS
    error_code: str = DEFAULT_ERROR_CODE
    message: str = DEFAULT_MESSAGE
    times: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict):
            raise FaultRuleError("a fault rule must be a JSON object")
        target = data.get("target")
        if not isinstance(target, str) or not target:
            raise FaultRuleError(
                "'target' (an X-Amz-Target value such as DynamoDB_20120810.PutItem) is required"
            )
        unknown = set(data) - {"target", "match", "status", "error_code", "message", "times"}
        if unknown:
            raise FaultRuleError(f"unknown field(s): {', '.join(sorted(unknown))}")
        status = data.get("status", DEFAULT_STATUS)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultRuleError("'status' must be an HTTP error status (400-599)")
        times = data.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise FaultRuleError("'times' must be null or a positive integer")
        match = data.get("match")
        if match is not None and not isinstance(match, str):
            raise FaultRuleError("'match' must be a string")
        return cls(
            target=target,
            match=match,
            status=status,
            error_code=str(data.get("error_code") or DEFAULT_ERROR_CODE),
            message=str(data.get("message") or DEFAULT_MESSAGE),
            times=times,
        )

    def matches(self, target: str | None, body: bytes) -> bool:
        if self.target != "*" and self.target != target:
            return False
        return self.match is None or self.match.encode("utf-8") in body

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        body = json.dumps({"__type": self.error_code, "message": self.message}).encode("utf-8")
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", self.error_code),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("Content-Length", str(len(body))),
        ]
        return self.status, headers, body


class FaultRegistry:
    """Thread-safe set of fault rules consulted for every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> int:
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
        return count

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [rule for rule in self._rules if rule.id != rule_id]
            return len(self._rules) != before

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def check(self, target: str | None, body: bytes) -> FaultRule | None:
        """The first live rule matching the request (its hit is counted), or ``None``."""
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(target, body):
                    rule.hits += 1
                    return rule
        return None


# ---------------------------------------------------------------------------- HTTP helpers


def _request(endpoint_url: str, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
    data = json.dumps(payload).encode("utf-8") if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - the URL is the caller's emulator endpoint
        endpoint_url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")
        raise FaultRuleError(f"{method} {path} failed with HTTP {exc.code}: {detail}") from exc


def add_fault(
    endpoint_url: str,
    target: str,
    match: str | None = None,
    status: int = DEFAULT_STATUS,
    error_code: str = DEFAULT_ERROR_CODE,
    message: str = DEFAULT_MESSAGE,
    times: int | None = None,
) -> str:
    """Add a rule to the emulator at ``endpoint_url``; returns the rule id."""
    rule = {
        "target": target,
        "match": match,
        "status": status,
        "error_code": error_code,
        "message": message,
        "times": times,
    }
    return str(_request(endpoint_url, "POST", "/_emulator/faults", rule)["id"])


def list_faults(endpoint_url: str) -> list[dict[str, Any]]:
    return list(_request(endpoint_url, "GET", "/_emulator/faults")["faults"])


def clear_faults(endpoint_url: str) -> int:
    return int(_request(endpoint_url, "DELETE", "/_emulator/faults")["cleared"])


def remove_fault(endpoint_url: str, rule_id: str) -> bool:
    return bool(_request(endpoint_url, "DELETE", f"/_emulator/faults/{rule_id}")["removed"])
