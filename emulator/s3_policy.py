"""Condition-aware S3 bucket policy evaluation for object requests.

moto 5.2.5 checks a bucket's policy on object requests (``FakeBucket.get_permission``) but cannot
evaluate ``Condition`` blocks: a statement with any condition counts as ``Deny``. A typical secure
bucket policy (deny non-TLS, deny uploads without SSE-KMS) therefore denies *every* object request
(PutObject -> 403). This module replaces that check with an evaluation that honours conditions
against the request being served:

* request context: the request's ``x-amz-*`` headers as ``s3:x-amz-*`` keys (e.g.
  ``s3:x-amz-server-side-encryption``, ``s3:x-amz-server-side-encryption-aws-kms-key-id``),
  ``aws:SourceIp``, and ``aws:SecureTransport`` = ``true`` (the emulator serves loopback HTTP and
  counts it as TLS; otherwise every ``DenyInsecureTransport`` statement would deny everything);
* operators: ``String(Not)Equals(IgnoreCase)``, ``String(Not)Like``, ``Arn(Not)Equals``,
  ``Arn(Not)Like``, ``Bool``, ``Null``, ``Numeric*``, the ``...IfExists`` forms and the
  ``ForAnyValue:``/``ForAllValues:`` prefixes; a key missing from the request makes positive operators
  false and negated ones true, as in IAM;
* principals: only ``"*"`` / ``{"AWS": "*"}`` statements apply (the emulator does not know callers);
* a statement with an operator it cannot evaluate is skipped (logged), i.e. fail open;
* ``UploadPart``/``CompleteMultipartUpload`` (``uploadId`` in the query) are not policy-checked: S3
  evaluates the encryption headers when the upload is created.

The request context comes from a thread-local that :class:`emulator.server.EmulatorApp` sets for
each request (the werkzeug server serves each connection in its own thread).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOG = logging.getLogger("emulator.s3")
_CURRENT = threading.local()
_ORIGINAL_GET_PERMISSION: Any = None


@contextmanager
def request_context(environ: dict[str, Any]) -> Iterator[None]:
    """Make the request in ``environ`` the one policy conditions are evaluated against."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    context: dict[str, str] = {
        "aws:securetransport": "true",
        "aws:sourceip": str(environ.get("REMOTE_ADDR", "127.0.0.1")),
    }
    for name, value in headers.items():
        if name.startswith("x-amz-"):
            context[f"s3:{name}"] = value
    _CURRENT.context = context
    _CURRENT.multipart_part = "uploadId=" in str(environ.get("QUERY_STRING", ""))
    _CURRENT.single_object = environ.get("REQUEST_METHOD") != "POST"  # POST ?delete: per-key errors
    try:
        yield
    finally:
        _CURRENT.context = None
        _CURRENT.multipart_part = False
        _CURRENT.single_object = False


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


def _compare(base: str, expected: str, actual: str) -> bool:
    if base in ("StringEquals", "ArnEquals"):
        return actual == expected
    if base == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if base in ("StringLike", "ArnLike"):
        return fnmatch.fnmatchcase(actual, expected)
    if base == "Bool":
        return actual.lower() == expected.lower()
    if base.startswith("Numeric"):
        left, right = float(actual), float(expected)
        return {
            "NumericEquals": left == right,
            "NumericLessThan": left < right,
            "NumericLessThanEquals": left <= right,
            "NumericGreaterThan": left > right,
            "NumericGreaterThanEquals": left >= right,
        }[base]
    raise UnsupportedConditionError(base)


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    op = operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: are single-valued here
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    actual = context.get(key.lower())
    expected_values = [str(v) for v in _as_list(expected)]
    if op == "Null":
        want_missing = expected_values[0].lower() == "true"
        return (actual is None) == want_missing
    negated = op in _NEGATED
    base = _NEGATED.get(op, op)
    if base not in (
        "StringEquals",
        "StringEqualsIgnoreCase",
        "StringLike",
        "ArnEquals",
        "ArnLike",
        "Bool",
    ) and not (base.startswith("Numeric")):
        raise UnsupportedConditionError(operator)
    if actual is None:
        return True if if_exists else negated
    hit = any(_compare(base, value, actual) for value in expected_values)
    return not hit if negated else hit


def _conditions_hold(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, block in conditions.items()
        for key, expected in block.items()
    )


def evaluate(policy: dict[str, Any], action: str, resource: str, context: dict[str, str]) -> str:
    """``"DENIED"``, ``"PERMITTED"`` or ``"NEUTRAL"`` for ``action`` on ``resource``."""
    permitted = False
    for statement in _as_list(policy.get("Statement", [])):
        if "NotAction" in statement:
            if _matches(statement["NotAction"], action):
                continue
        elif not _matches(statement.get("Action", []), action):
            continue
        if "NotResource" in statement:
            if _matches(statement["NotResource"], resource):
                continue
        elif not _matches(statement.get("Resource", "*"), resource):
            continue
        if not _principal_applies(statement):
            continue
        try:
            if not _conditions_hold(statement.get("Condition") or {}, context):
                continue
        except (UnsupportedConditionError, ValueError, KeyError, IndexError) as exc:
            LOG.warning("bucket policy statement %s skipped: cannot evaluate %s", statement.get("Sid"), exc)
            continue
        if statement.get("Effect") == "Deny":
            LOG.info("bucket policy statement %s denies %s on %s", statement.get("Sid"), action, resource)
            return "DENIED"
        permitted = True
    return "PERMITTED" if permitted else "NEUTRAL"


def _get_permission(self: Any, action: str, resource: str) -> Any:
    from moto.iam.access_control import PermissionResult

    from emulator import patches

    if not patches.is_active():
        return _ORIGINAL_GET_PERMISSION(self, action, resource)
    if self.policy is None or getattr(_CURRENT, "multipart_part", False):
        return PermissionResult.NEUTRAL
    if action == "s3:HeadObject":
        action = "s3:GetObject"  # S3 authorizes HEAD as GetObject
    policy = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
    context = getattr(_CURRENT, "context", None) or {"aws:securetransport": "true"}
    result = evaluate(policy, action, resource, context)
    if result == "DENIED" and getattr(_CURRENT, "single_object", False):
        from moto.s3.exceptions import S3AccessDeniedError

        raise S3AccessDeniedError  # a proper AccessDenied error body (moto answers 403 with no body)
    return PermissionResult[result]


def install() -> None:
    global _ORIGINAL_GET_PERMISSION
    from moto.s3.models import FakeBucket

    if _ORIGINAL_GET_PERMISSION is None:
        _ORIGINAL_GET_PERMISSION = FakeBucket.get_permission
        FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
