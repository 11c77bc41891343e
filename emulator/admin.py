"""The emulator's admin API: ``/_emulator/...`` endpoints beside the AWS APIs.

| Method and path | Body / query | Answer |
|---|---|---|
| ``GET /_emulator/health`` | | status, endpoint, pid, moto version, settings |
| ``GET /_emulator/patches`` | | the patch registry (target, why, module) |
| ``GET, POST, DELETE /_emulator/faults`` | a fault rule (see :mod:`emulator.faults`) | rules / the rule / cleared count |
| ``DELETE /_emulator/faults/<id>`` | | ``{"removed": bool}`` |
| ``GET, POST, DELETE /_emulator/throttles`` | ``{"target", "capacity", "refill_per_second"}`` | token buckets |
| ``GET, POST /_emulator/s3/notifications`` | ``{"copies": N}`` | each Lambda or SQS notification delivered N times |
| ``GET /_emulator/s3/policy`` | | bucket-policy statements the evaluator could not evaluate |
| ``GET, POST /_emulator/lambda`` | ``{"warm": bool, "idle_timeout": s, "max_per_function": n}`` | invocation counters, environments; settings |
| ``POST /_emulator/lambda/wait`` | ``?timeout=S`` | ``{"idle": bool, ...}`` once no async invocation is pending |
| ``GET /_emulator/event-sources`` | | SQS event source mappings: settings, counters; ``drained`` |
| ``POST /_emulator/event-sources/wait`` | ``?timeout=S`` | ``{"drained": bool, "mappings": [...]}`` once every mapped queue is drained |
| ``POST /_emulator/wait`` | ``?timeout=S`` | ``{"idle": bool, ...}`` once no async invocation is pending and every mapped queue is drained |
| ``POST /_emulator/events/trigger`` | ``{"rule", "region"?, "event_bus"?, "event"?}`` | the event sent to the rule's targets |
| ``GET /_emulator/alarms`` | | alarm evaluator settings, each alarm's last evaluation |
| ``POST /_emulator/alarms/evaluate`` | | ``{"transitions": [...]}``: the SQS alarms evaluated now |
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator import faults, registry, s3_policy

if TYPE_CHECKING:
    from emulator.control import EmulatorControl

LOG = logging.getLogger("emulator")
ADMIN_PREFIX = "/_emulator"


class BadRequestError(ValueError):
    """The admin request is malformed (HTTP 400)."""


class NotFoundError(LookupError):
    """The admin request names something that does not exist (HTTP 404)."""


@dataclass(frozen=True)
class AdminRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as exc:
            raise BadRequestError(f"the body is not JSON: {exc}") from exc

    def number(self, name: str, default: float) -> float:
        try:
            return float(self.query.get(name, [default])[0])
        except ValueError as exc:
            raise BadRequestError(f"'{name}' must be a number") from exc


Answer = tuple[int, Any]
Handler = Callable[["EmulatorControl", AdminRequest], Answer]


@dataclass(frozen=True)
class _RuleCollection:
    """Fault rules or throttles: listed (GET), cleared (DELETE), added from a JSON body (POST)."""

    name: str
    parse: Callable[[Any], Any]
    add: Callable[[faults.FaultRegistry, Any], Any]
    listed: Callable[[faults.FaultRegistry], list[dict[str, Any]]]
    clear: Callable[[faults.FaultRegistry], int]

    def __call__(self, emulator: EmulatorControl, request: AdminRequest) -> Answer:
        registry = emulator.faults
        if request.method == "GET":
            return 200, {self.name: self.listed(registry)}
        if request.method == "DELETE":
            return 200, {"cleared": self.clear(registry)}
        try:
            item = self.add(registry, self.parse(request.json()))
        except faults.FaultRuleError as exc:
            raise BadRequestError(str(exc)) from exc
        LOG.info("%s: added %s", self.name, item.to_dict())
        return 201, item.to_dict()


_faults = _RuleCollection(
    "faults",
    faults.FaultRule.from_dict,
    faults.FaultRegistry.add,
    faults.FaultRegistry.list,
    faults.FaultRegistry.clear,
)
_throttles = _RuleCollection(
    "throttles",
    faults.Throttle.from_dict,
    faults.FaultRegistry.set_throttle,
    faults.FaultRegistry.list_throttles,
    faults.FaultRegistry.clear_throttles,
)


def _s3_notifications(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    if request.method == "POST":
        copies = request.json().get("copies")
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 10:
            raise BadRequestError("'copies' must be an integer from 1 to 10")
        emulator.s3_settings.notification_copies = copies
        LOG.info("S3 notifications are now delivered %d time(s) each", copies)
    return 200, {"copies": emulator.s3_settings.notification_copies}


def _lambda(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    if request.method == "POST":
        data = request.json()
        try:
            emulator.configure_lambda(
                warm=data.get("warm"),
                idle_timeout=data.get("idle_timeout"),
                max_per_function=data.get("max_per_function"),
            )
        except ValueError as exc:
            raise BadRequestError(str(exc)) from exc
    return 200, emulator.lambda_stats()


def _lambda_wait(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    idle = emulator.wait_for_async_invocations(request.number("timeout", 60.0))
    return 200, {"idle": idle, **emulator.lambda_stats()}


def _event_sources_wait(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    drained = emulator.wait_for_event_sources(request.number("timeout", 60.0))
    return 200, {**emulator.event_source_stats(), "drained": drained}


def _wait(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    idle = emulator.wait_until_idle(request.number("timeout", 60.0))
    pending = emulator.async_invoker.pending if emulator.async_invoker else 0
    return 200, {"idle": idle, "async_pending": pending, "event_sources": emulator.event_source_stats()}


def _trigger(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    from moto.events.exceptions import ResourceNotFoundException

    data = request.json()
    if not isinstance(data, dict) or not data.get("rule"):
        raise BadRequestError("'rule' is required")
    try:
        result = emulator.trigger_rule(
            str(data["rule"]),
            region=str(data.get("region", "us-east-1")),
            event_bus=str(data.get("event_bus", "default")),
            event=data.get("event"),
        )
    except ResourceNotFoundException as exc:
        raise NotFoundError(exc.message) from exc
    return 200, result


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/health"): lambda emulator, _request: (200, emulator.health()),
    ("GET", "/patches"): lambda _emulator, _request: (200, {"patches": registry.describe()}),
    ("GET", "/s3/policy"): lambda _emulator, _request: (
        200,
        {"unevaluable_statements": s3_policy.unevaluable_statements()},
    ),
    **{(method, "/faults"): _faults for method in ("GET", "POST", "DELETE")},
    **{(method, "/throttles"): _throttles for method in ("GET", "POST", "DELETE")},
    **{(method, "/s3/notifications"): _s3_notifications for method in ("GET", "POST")},
    **{(method, "/lambda"): _lambda for method in ("GET", "POST")},
    ("POST", "/lambda/wait"): _lambda_wait,
    ("POST", "/events/trigger"): _trigger,
    ("GET", "/event-sources"): lambda emulator, _request: (200, emulator.event_source_stats()),
    ("POST", "/event-sources/wait"): _event_sources_wait,
    ("POST", "/wait"): _wait,
    ("GET", "/alarms"): lambda emulator, _request: (200, emulator.alarm_status()),
    ("POST", "/alarms/evaluate"): lambda emulator, _request: (
        200,
        {"transitions": emulator.evaluate_alarms()},
    ),
}


def handle(emulator: EmulatorControl, request: AdminRequest) -> Answer:
    """Route one admin request; errors become 400/404/405 answers."""
    path = request.path.removeprefix(ADMIN_PREFIX) or "/"
    try:
        if path.startswith("/faults/") and request.method == "DELETE":
            removed = emulator.faults.remove(path.rsplit("/", 1)[-1])
            return (200 if removed else 404), {"removed": removed}
        handler = ROUTES.get((request.method, path))
        if handler is None:
            known = any(route_path == path for _, route_path in ROUTES)
            status = 405 if known else 404
            return status, {"error": f"no emulator endpoint {request.method} {request.path}"}
        return handler(emulator, request)
    except BadRequestError as exc:
        return 400, {"error": str(exc)}
    except NotFoundError as exc:
        return 404, {"error": str(exc)}
