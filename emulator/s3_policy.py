"""Bucket policies evaluated on every object request, with their conditions, as S3 does.

moto 5.2.5 checks a bucket's policy on object requests (``FakeBucket.get_permission``) but cannot
evaluate ``Condition`` blocks (a statement with any condition counts as ``Deny``), and it names the
action after the HTTP method (``s3:PostObject`` for a POST). Here:

* **Action**: every request that writes an object is authorized as ``s3:PutObject``, as S3 does:
  PutObject, CopyObject, CreateMultipartUpload (``POST ?uploads``), UploadPart and UploadPartCopy
  (``PUT ?partNumber&uploadId``) and CompleteMultipartUpload (``POST ?uploadId``). HeadObject is
  authorized as ``s3:GetObject``, AbortMultipartUpload as ``s3:AbortMultipartUpload``, ListParts as
  ``s3:ListMultipartUploadParts``.
* **Request context**: only the headers present on *that* request: its ``x-amz-*`` headers become
  ``s3:x-amz-*`` keys (an UploadPart carries no ``x-amz-server-side-encryption``, so a policy that
  demands the header refuses the parts, exactly as AWS does), plus ``aws:SourceIp`` and
  ``aws:SecureTransport`` (``true``: the emulator serves loopback HTTP and counts it as TLS;
  otherwise every ``DenyInsecureTransport`` statement would deny everything).
* **Operators**: ``StringEquals``/``StringNotEquals`` (and ``IgnoreCase``), ``StringLike``/
  ``StringNotLike``, ``ArnEquals``/``ArnLike`` and their negations, ``Bool``, ``Null``,
  ``Numeric*``, ``IpAddress``/``NotIpAddress``; the ``...IfExists`` forms; the set prefixes
  ``ForAnyValue:``/``ForAllValues:``. A key missing from the request makes a plain positive operator
  false and a negated one true, ``...IfExists`` true, ``ForAllValues`` true and ``ForAnyValue``
  false, as IAM defines them.
* **Unknown operators** are never skipped silently: the statement is logged at ERROR level, counted
  in :func:`unevaluable_statements`, and treated as matching for a Deny (fail closed) and as not
  matching for an Allow. Every statement's operators are checked when the policy is stored
  (PutBucketPolicy) and on every evaluation before any statement is evaluated, so neither a Deny
  that decides first, nor a false condition before it, nor an Action/Resource that does not match
  the request hides one.
* **Principals**: only ``"*"`` / ``{"AWS": "*"}`` statements apply (the emulator does not enforce
  IAM and does not know callers).

The request comes from a thread-local that the WSGI layer sets for each request
(:func:`request_context`; werkzeug serves each connection in its own thread).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from emulator.patch import Patch

LOG = logging.getLogger("emulator.s3")

PUT_OBJECT = "s3:PutObject"


@dataclass
class RequestInfo:
    """What the policy evaluation needs to know about the request being served."""

    context: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    query: dict[str, list[str]] = field(default_factory=dict)


_CURRENT = threading.local()
_UNEVALUABLE_LOCK = threading.Lock()
_UNEVALUABLE: list[dict[str, str]] = []


def unevaluable_statements() -> list[dict[str, str]]:
    """Statements met so far whose operators the emulator could not evaluate."""
    with _UNEVALUABLE_LOCK:
        return list(_UNEVALUABLE)


def request_info(environ: dict[str, Any]) -> RequestInfo:
    """The policy-relevant view of a WSGI request."""
    context: dict[str, str] = {
        "aws:securetransport": "true",
        "aws:sourceip": str(environ.get("REMOTE_ADDR", "127.0.0.1")),
    }
    for key, value in environ.items():
        if key.startswith("HTTP_X_AMZ_"):
            context["s3:" + key[5:].replace("_", "-").lower()] = str(value)
    return RequestInfo(
        context=context,
        method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
        query=parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True),
    )


@contextmanager
def request_context(environ: dict[str, Any]) -> Iterator[None]:
    """Make the request in ``environ`` the one policies are evaluated against."""
    _CURRENT.info = request_info(environ)
    try:
        yield
    finally:
        _CURRENT.info = None


def current_request() -> RequestInfo | None:
    return getattr(_CURRENT, "info", None)


def s3_action(moto_action: str, request: RequestInfo | None) -> str:
    """The IAM action S3 authorizes a request as, from moto's method-named action."""
    if request is None:
        return moto_action
    query = request.query
    if moto_action == "s3:HeadObject":
        return "s3:GetObject"
    if request.method == "POST" and ("uploads" in query or "uploadId" in query):
        return PUT_OBJECT  # CreateMultipartUpload, CompleteMultipartUpload
    if request.method == "DELETE" and "uploadId" in query:
        return "s3:AbortMultipartUpload"
    if request.method == "GET" and "uploadId" in query:
        return "s3:ListMultipartUploadParts"
    return moto_action


# ---------------------------------------------------------------------------- evaluation


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, str(p)) for p in _as_list(patterns))


def _principal_applies(statement: dict[str, Any]) -> bool:
    if "NotPrincipal" in statement:
        return False
    principal = statement.get("Principal", "*")
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS", []))


class UnsupportedConditionError(ValueError):
    """A condition operator the emulator cannot evaluate."""


def _in_network(actual: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


_NUMERIC = {
    "NumericEquals": lambda left, right: left == right,
    "NumericLessThan": lambda left, right: left < right,
    "NumericLessThanEquals": lambda left, right: left <= right,
    "NumericGreaterThan": lambda left, right: left > right,
    "NumericGreaterThanEquals": lambda left, right: left >= right,
}
_POSITIVE = {
    "StringEquals": lambda actual, expected: actual == expected,
    "StringEqualsIgnoreCase": lambda actual, expected: actual.lower() == expected.lower(),
    "StringLike": fnmatch.fnmatchcase,
    "ArnEquals": lambda actual, expected: actual == expected,
    "ArnLike": fnmatch.fnmatchcase,
    "Bool": lambda actual, expected: actual.lower() == expected.lower(),
    "IpAddress": _in_network,
}


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    return lambda actual, expected: compare(float(actual), float(expected))


_POSITIVE.update({name: _numeric(compare) for name, compare in _NUMERIC.items()})
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
    "NotIpAddress": "IpAddress",
}


@dataclass(frozen=True)
class Operator:
    """A parsed condition operator such as ``ForAnyValue:StringNotEqualsIfExists``."""

    base: str
    negated: bool
    if_exists: bool
    set_prefix: str  # "", "ForAnyValue" or "ForAllValues"

    @classmethod
    def parse(cls, operator: str) -> Operator:
        prefix, _, name = operator.rpartition(":")
        if prefix not in ("", "ForAnyValue", "ForAllValues"):
            raise UnsupportedConditionError(operator)
        if_exists = name.endswith("IfExists") and name != "IfExists"
        name = name.removesuffix("IfExists") if if_exists else name
        if name == "Null":
            return cls("Null", False, False, prefix)
        negated = name in _NEGATED
        base = _NEGATED.get(name, name)
        if base not in _POSITIVE:
            raise UnsupportedConditionError(operator)
        return cls(base, negated, if_exists, prefix)

    def holds(self, actual_values: list[str], expected: list[str]) -> bool:
        if self.base == "Null":
            return (not actual_values) == (expected[0].lower() == "true")
        if not actual_values:
            if self.if_exists or self.set_prefix == "ForAllValues":
                return True
            return self.negated and self.set_prefix != "ForAnyValue"
        compare = _POSITIVE[self.base]

        def value_holds(actual: str) -> bool:
            hit = any(compare(actual, value) for value in expected)
            return not hit if self.negated else hit

        if self.set_prefix == "ForAllValues":
            return all(value_holds(actual) for actual in actual_values)
        return any(value_holds(actual) for actual in actual_values)


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator_name, block in conditions.items():
        operator = Operator.parse(operator_name)
        for key, expected in block.items():
            actual = context.get(key.lower())
            actual_values = [] if actual is None else [actual]
            if not operator.holds(actual_values, [str(v) for v in _as_list(expected)]):
                return False
    return True


def _statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "NotAction" in statement:
        if _matches(statement["NotAction"], action):
            return False
    elif not _matches(statement.get("Action", []), action):
        return False
    if "NotResource" in statement:
        if _matches(statement["NotResource"], resource):
            return False
    elif not _matches(statement.get("Resource", "*"), resource):
        return False
    return _principal_applies(statement)


def unknown_operators(statement: Any) -> list[str]:
    """The condition operators of ``statement`` that the evaluator does not know, in policy order."""
    conditions = statement.get("Condition") if isinstance(statement, dict) else None
    if not isinstance(conditions, dict):
        return []
    unknown = []
    for name in conditions:
        try:
            Operator.parse(str(name))
        except UnsupportedConditionError:
            unknown.append(str(name))
    return unknown


def _record_unevaluable(statement: dict[str, Any], error: Exception) -> dict[str, str]:
    entry = {
        "sid": str(statement.get("Sid", "")),
        "effect": str(statement.get("Effect")),
        "error": str(error),
    }
    with _UNEVALUABLE_LOCK:
        if entry not in _UNEVALUABLE:
            _UNEVALUABLE.append(entry)
    return entry


def _fail_closed(effect: str) -> str:
    return "matching" if effect == "Deny" else "not granting"


def _report_unevaluable(statement: dict[str, Any], error: Exception, where: str = "") -> None:
    """Log at ERROR and list (``GET /_emulator/s3/policy``) a statement the evaluator cannot evaluate."""
    entry = _record_unevaluable(statement, error)
    LOG.error(
        "bucket policy statement %r uses a condition the emulator cannot evaluate (%s): treated as"
        " %s (fail closed)%s",
        entry["sid"],
        error,
        _fail_closed(entry["effect"]),
        where,
    )


def check_policy(policy: dict[str, Any], bucket: str) -> list[str]:
    """Report every statement of ``policy`` with an operator the evaluator does not know.

    Run when a policy is stored, so that such a statement is reported even if no request ever
    reaches it; returns the statements' Sids.
    """
    reported = []
    for statement in _as_list(policy.get("Statement", [])):
        unknown = unknown_operators(statement)
        if unknown:
            _report_unevaluable(
                statement,
                UnsupportedConditionError(", ".join(unknown)),
                f" wherever it applies (bucket {bucket})",
            )
            reported.append(str(statement.get("Sid", "")))
    return reported


def _holds(statement: dict[str, Any], context: dict[str, str], unknown: list[str]) -> bool:
    """Whether the statement's conditions hold; one that cannot be evaluated fails closed."""
    if unknown:
        return statement.get("Effect") == "Deny"  # reported before the evaluation began
    try:
        return _conditions_hold(statement.get("Condition") or {}, context)
    except (UnsupportedConditionError, ValueError, AttributeError, IndexError) as exc:
        _report_unevaluable(statement, exc)
        return statement.get("Effect") == "Deny"


def evaluate(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> str:
    """``"DENIED"``, ``"PERMITTED"`` or ``"NEUTRAL"`` for ``action`` on ``resource``.

    Every statement's operators are checked before any is evaluated: a statement with an unknown
    operator is reported even when the first Deny decides, or when it does not apply to this request.
    """
    statements = _as_list(policy.get("Statement", []))
    unknown = [unknown_operators(statement) for statement in statements]
    for statement, names in zip(statements, unknown, strict=True):
        if names:
            applies = _statement_applies(statement, action, resource)
            where = "" if applies else f" where it applies (not to {action} on {resource})"
            _report_unevaluable(statement, UnsupportedConditionError(", ".join(names)), where)
    permitted = False
    for statement, names in zip(statements, unknown, strict=True):
        if not _statement_applies(statement, action, resource) or not _holds(statement, context, names):
            continue
        if statement.get("Effect") == "Deny":
            LOG.info("bucket policy statement %s denies %s on %s", statement.get("Sid"), action, resource)
            return "DENIED"
        permitted = True
    return "PERMITTED" if permitted else "NEUTRAL"


def _get_permission(_original: Any) -> Any:
    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        request = current_request()
        action = s3_action(action, request)
        policy = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
        context = request.context if request else {"aws:securetransport": "true"}
        result = evaluate(policy, action, resource, context)
        batch_delete = request is not None and request.method == "POST" and "delete" in request.query
        if result == "DENIED" and not batch_delete:  # DeleteObjects reports per-key errors itself
            from moto.s3.exceptions import S3AccessDeniedError

            raise S3AccessDeniedError  # a proper AccessDenied error body (moto answers 403 with none)
        return PermissionResult[result]

    return get_permission


def _put_bucket_policy(original: Any) -> Any:
    def put_bucket_policy(self: Any, bucket_name: str, policy: bytes) -> None:
        try:
            document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
        except (ValueError, UnicodeDecodeError) as exc:
            LOG.error("bucket policy of %s is not JSON (%s): stored as moto stores it", bucket_name, exc)
        else:
            if isinstance(document, dict):
                check_policy(document, bucket_name)
        original(self, bucket_name, policy)

    return put_bucket_policy


PATCHES = [
    Patch(
        "moto.s3.models.S3Backend.put_bucket_policy",
        "moto stores a bucket policy without reading its conditions; the emulator evaluates them, so"
        " a statement with an operator it cannot evaluate is reported (ERROR log, GET"
        " /_emulator/s3/policy) when the policy is stored, even if no request ever reaches it",
        _put_bucket_policy,
    ),
    Patch(
        "moto.s3.models.FakeBucket.get_permission",
        "moto counts every policy statement with a Condition as Deny (a 'deny non-TLS' policy denies"
        " everything) and names actions after the HTTP method (s3:PostObject); S3 evaluates the"
        " conditions and authorizes every object write, multipart parts included, as s3:PutObject",
        _get_permission,
    ),
]
