"""Fault injection: make chosen AWS requests fail without touching handler code.

**Fault rules** match a request by its ``X-Amz-Target`` header (``target``, e.g.
``DynamoDB_20120810.PutItem``; ``"*"`` matches any request) and, optionally, a substring of the raw
request body (``match``). A matching request gets an AWS-JSON-protocol error
(``{"__type": <error_code>, "message": <message>}`` with ``status``) instead of reaching moto.
``times`` limits how often a rule fires (``None``: always); ``probability`` (0 < p <= 1) makes it
fire on that fraction of the matching requests (``seed`` makes the draw repeatable).

The default error is HTTP 400 ``InjectedFault``: botocore retries only throttling codes, transient
codes and HTTP 500/502/503/504, so this error reaches the handler on the first attempt and any retry
is visible only at the Step Functions level. A retryable fault for a burst is e.g.
``{"target": "DynamoDB_20120810.PutItem", "probability": 0.1, "error_code":
"ProvisionedThroughputExceededException"}``.

**Throttles** are token buckets per target: ``capacity`` requests at once, refilled at
``refill_per_second``; a request that finds the bucket empty gets HTTP 400 ``ThrottlingException``
"Rate exceeded" (what Step Functions answers an over-eager ``StartExecution``). Default: none.

Over HTTP: ``POST|GET|DELETE /_emulator/faults``, ``DELETE /_emulator/faults/<id>``,
``POST|GET|DELETE /_emulator/throttles`` (see :mod:`emulator.admin`); from Python,
:mod:`emulator.admin_client`.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_STATUS = 400
DEFAULT_ERROR_CODE = "InjectedFault"
DEFAULT_MESSAGE = "Fault injected by the emulator"
THROTTLING_ERROR_CODE = "ThrottlingException"


class FaultRuleError(ValueError):
    """A fault rule or throttle is malformed."""


def error_response(status: int, error_code: str, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An AWS-JSON-protocol error (what botocore parses for JSON services)."""
    body = json.dumps({"__type": error_code, "message": message}).encode("utf-8")
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-ErrorType", error_code),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return status, headers, body


def _check_fields(data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FaultRuleError("a rule must be a JSON object")
    unknown = set(data) - allowed
    if unknown:
        raise FaultRuleError(f"unknown field(s): {', '.join(sorted(unknown))}")
    target = data.get("target")
    if not isinstance(target, str) or not target:
        raise FaultRuleError("'target' (an X-Amz-Target value such as DynamoDB_20120810.PutItem) is required")
    return data


def _optional_probability(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise FaultRuleError("'probability' must be null or a number in (0, 1]")
    return float(value)


_FAULT_FIELDS = {"target", "match", "status", "error_code", "message", "times", "probability", "seed"}


def rule_fields(
    target: str,
    match: str | None = None,
    status: int = DEFAULT_STATUS,
    error_code: str = DEFAULT_ERROR_CODE,
    message: str = DEFAULT_MESSAGE,
    times: int | None = None,
    probability: float | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """A fault rule as the admin API takes it (every field; validated by :meth:`FaultRule.from_dict`)."""
    return {
        "target": target,
        "match": match,
        "status": status,
        "error_code": error_code,
        "message": message,
        "times": times,
        "probability": probability,
        "seed": seed,
    }


@dataclass
class FaultRule:
    """One fault injection rule (see the module docstring)."""

    target: str
    match: str | None = None
    status: int = DEFAULT_STATUS
    error_code: str = DEFAULT_ERROR_CODE
    message: str = DEFAULT_MESSAGE
    times: int | None = None
    probability: float | None = None
    seed: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0
    seen: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - fault sampling, not cryptography

    @classmethod
    def from_dict(cls, data: Any) -> FaultRule:
        data = _check_fields(data, _FAULT_FIELDS)
        status = data.get("status", DEFAULT_STATUS)
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise FaultRuleError("'status' must be an HTTP error status (400-599)")
        times = data.get("times")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise FaultRuleError("'times' must be null or a positive integer")
        match = data.get("match")
        if match is not None and not isinstance(match, str):
            raise FaultRuleError("'match' must be a string")
        seed = data.get("seed")
        if seed is not None and not isinstance(seed, int):
            raise FaultRuleError("'seed' must be null or an integer")
        return cls(
            target=data["target"],
            match=match,
            status=status,
            error_code=str(data.get("error_code") or DEFAULT_ERROR_CODE),
            message=str(data.get("message") or DEFAULT_MESSAGE),
            times=times,
            probability=_optional_probability(data.get("probability")),
            seed=seed,
        )

    def matches(self, target: str | None, body: bytes) -> bool:
        if self.target != "*" and self.target != target:
            return False
        return self.match is None or self.match.encode("utf-8") in body

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def fires(self) -> bool:
        """Whether this matching request fails (counted; call with the registry's lock held)."""
        self.seen += 1
        if self.probability is not None and self._random.random() >= self.probability:
            return False
        self.hits += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_random", None)
        return data

    def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        return error_response(self.status, self.error_code, self.message)


@dataclass
class Throttle:
    """A token bucket for one target (see the module docstring)."""

    target: str
    capacity: float
    refill_per_second: float
    message: str = "Rate exceeded"
    tokens: float = -1.0
    throttled: int = 0
    allowed: int = 0
    _updated: float = field(default_factory=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    @classmethod
    def from_dict(cls, data: Any) -> Throttle:
        data = _check_fields(data, {"target", "capacity", "refill_per_second", "message"})
        capacity, refill = data.get("capacity"), data.get("refill_per_second")
        for name, value in (("capacity", capacity), ("refill_per_second", refill)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultRuleError(f"'{name}' must be a number >= 0")
        if capacity < 1:  # type: ignore[operator]
            raise FaultRuleError("'capacity' must be at least 1")
        return cls(
            data["target"], float(capacity), float(refill), str(data.get("message") or "Rate exceeded")
        )  # type: ignore[arg-type]

    def take(self) -> bool:
        """Take a token if there is one (call with the registry's lock held)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.refill_per_second)
        self._updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            self.allowed += 1
            return True
        self.throttled += 1
        return False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_updated", None)
        return data

    def response(self) -> tuple[int, list[tuple[str, str]], bytes]:
        return error_response(400, THROTTLING_ERROR_CODE, self.message)


class FaultRegistry:
    """Thread-safe fault rules and throttles consulted for every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._throttles: dict[str, Throttle] = {}

    def __bool__(self) -> bool:
        return bool(self._rules or self._throttles)

    # --- fault rules
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

    # --- throttles
    def set_throttle(self, throttle: Throttle) -> Throttle:
        with self._lock:
            self._throttles[throttle.target] = throttle
        return throttle

    def clear_throttles(self) -> int:
        with self._lock:
            count = len(self._throttles)
            self._throttles.clear()
        return count

    def list_throttles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [throttle.to_dict() for throttle in self._throttles.values()]

    # --- the check
    def check(self, target: str | None, body: bytes) -> FaultRule | Throttle | None:
        """The first live rule that fails this request (its hit counted), else an empty bucket, else None."""
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(target, body) and rule.fires():
                    return rule
            throttle = self._throttles.get(target or "")
            if throttle is not None and not throttle.take():
                return throttle
        return None
