"""MiniStack's server, plus a log of every request it denies. Runs in MiniStack's own venv.

Started by ``devkit.ministack`` as ``<.tools/ministack>/bin/python -I devkit/ministack_launch.py``
(``-I``: this repository's modules stay out of MiniStack's way). MiniStack answers a denied request
through ``ministack.core.iam_actions.access_denied_response`` (imported at call time by each caller);
the wrapper below appends one JSON line per denial to ``$MINISTACK_DENIALS_LOG`` and returns the
response unchanged. ``make iam-proof`` reads the file: that is how it knows which request a removed
grant made fail.

The proof also makes the requests AWS services make, with a role's credentials or as the service
itself (devkit/iam_proof/acting.py). Such a request carries the header ``x-iam-proof-request`` (JSON), and the
wrapper of ``iam_evaluator.enforce`` below gives MiniStack's evaluator the request context AWS
gives that request, which MiniStack never builds because its services make no such request:

* ``via_service``: a KMS request a service makes on the caller's behalf (forward access), with
  ``kms:ViaService`` and ``kms:CallerAccount``; the caller's own identity and key policies decide.
* ``service_principal`` (only with the account root's key, the credentials MiniStack's own services
  use): the service's request as its own principal, with ``aws:SourceArn``/``aws:SourceAccount``;
  only the resource's policy (key, topic, function policy) can allow it, as on AWS.
* every marked KMS request: ``kms:EncryptionContext:<key>`` from the request's EncryptionContext;
  every marked ``CreateLogStream``/``PutLogEvents``: authorized on the log stream's ARN, as AWS
  does (MiniStack authorizes them on the log group's).

A request without the header is evaluated exactly as MiniStack does.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
import time
from typing import Any

from ministack import app  # type: ignore[import-not-found]  # only in MiniStack's venv
from ministack.core import iam_actions, iam_evaluator  # type: ignore[import-not-found]

_LOCK = threading.Lock()
_ORIGINAL = iam_actions.access_denied_response
_ORIGINAL_EXTRACT = iam_actions.extract_iam_action
_ORIGINAL_ENFORCE = iam_evaluator.enforce
_ORIGINAL_TRUST = iam_evaluator.evaluate_trust_policy
PROOF_HEADER = "x-iam-proof-request"
_STREAM_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
_MARKED: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "iam_proof_request", default=None
)


def _logged_denial(service: str, action: str, principal_arn: str, request_id: str, **kwargs: Any) -> Any:
    response = _ORIGINAL(service, action, principal_arn, request_id, **kwargs)
    path = os.environ.get("MINISTACK_DENIALS_LOG")
    if path:
        body = response[2] if isinstance(response, tuple) and len(response) == 3 else b""
        record = {
            "time": time.time(),
            "service": service,
            "action": action,
            "principal": principal_arn,
            "resource": kwargs.get("resource_arn", "*"),
            "explicit_deny": bool(kwargs.get("explicit_deny")),
            "error_code": kwargs.get("error_code", ""),
            "message": body.decode("utf-8", errors="replace")[:2000] if isinstance(body, bytes) else "",
        }
        with _LOCK, open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
    return response


def _marking(headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
    raw = headers.get(PROOF_HEADER)
    if not raw:
        return None
    try:
        marking = json.loads(raw)
        payload = json.loads(body or b"{}") if body[:1] == b"{" else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(marking, dict):
        return None
    context = payload.get("EncryptionContext") if isinstance(payload, dict) else None
    marking["encryption_context"] = context if isinstance(context, dict) else {}
    stream = payload.get("logStreamName") if isinstance(payload, dict) else None
    marking["log_stream"] = stream if isinstance(stream, str) else ""
    return marking


def _extract_iam_action(
    service: str, method: str, path: str, headers: dict[str, str], body: bytes, *args: Any, **kwargs: Any
) -> Any:
    """Called once per request before it is authorized: remember the request's proof marking."""
    _MARKED.set(_marking(headers, body or b""))
    return _ORIGINAL_EXTRACT(service, method, path, headers, body, *args, **kwargs)


def _enforce(
    access_key_id: str,
    iam_action: str,
    service: str,
    region: str,
    resource_arn: str = "*",
    service_context: dict[str, Any] | None = None,
) -> Any:
    marking = _MARKED.get()
    if not marking:
        return _ORIGINAL_ENFORCE(access_key_id, iam_action, service, region, resource_arn, service_context)
    from ministack.core.responses import get_account_id  # type: ignore[import-not-found]

    account = get_account_id()
    context = {key.lower(): value for key, value in (service_context or {}).items()}
    if iam_action in _STREAM_ACTIONS and marking["log_stream"] and ":log-stream:" not in resource_arn:
        # AWS authorizes these on the log stream (MiniStack: on its log group)
        resource_arn = f"{resource_arn}:log-stream:{marking['log_stream']}"
    if service == "kms":
        for key, value in marking["encryption_context"].items():
            context[f"kms:encryptioncontext:{key}".lower()] = value
    principal = marking.get("service_principal")
    if service == "sts":  # AssumeRole: the role's trust policy decides (_evaluate_trust_policy)
        return _ORIGINAL_ENFORCE(access_key_id, iam_action, service, region, resource_arn, service_context)
    if not principal:
        if marking.get("via_service"):
            context["kms:viaservice"] = marking["via_service"]
            context["kms:calleraccount"] = account
        return _ORIGINAL_ENFORCE(access_key_id, iam_action, service, region, resource_arn, context)
    if not iam_evaluator.is_root_access_key(access_key_id):
        return iam_evaluator.AuthError("AccessDenied", "only the account root's key may act as a service")
    for key in ("source_arn", "source_account"):
        if marking.get(key):
            context[f"aws:{key.replace('_', '')}"] = marking[key]
    found = iam_evaluator._resource_policy(service, resource_arn)
    ctx = iam_evaluator.EvalContext(
        principal_arn=principal,
        principal_type="Service",
        principal_account="",
        action=iam_action,
        resource_arn=resource_arn,
        region=region,
        service_context=context,
    )
    result = iam_evaluator.evaluate_resource_policy(found[0] if found else None, ctx, service=principal)
    if result.decision == "Allow":
        return None
    result.principal_arn = principal
    result.resource_policy_arn = resource_arn
    return result


def _evaluate_trust_policy(trust_doc: Any, caller_arn: str, ctx: Any = None) -> bool:
    """AssumeRole marked as a service's (root's key): only statements naming that service
    principal (and every Deny) apply, with the service's aws:SourceAccount/aws:SourceArn."""
    marking = _MARKED.get()
    principal = (marking or {}).get("service_principal")
    if not principal or not caller_arn.endswith(":root") or ctx is None:
        return bool(_ORIGINAL_TRUST(trust_doc, caller_arn, ctx))
    try:
        document = json.loads(trust_doc) if isinstance(trust_doc, str) else trust_doc
    except json.JSONDecodeError:
        return False
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    statements = [statements] if isinstance(statements, dict) else statements
    kept = [
        s
        for s in statements
        if isinstance(s, dict)
        and (
            s.get("Effect") == "Deny"
            or iam_evaluator._service_principal_matches(s.get("Principal"), principal)
        )
    ]
    for key in ("source_arn", "source_account"):
        if marking and marking.get(key):
            ctx.service_context[f"aws:{key.replace('_', '')}"] = marking[key]
    return bool(_ORIGINAL_TRUST({**document, "Statement": kept}, caller_arn, ctx))


iam_actions.access_denied_response = _logged_denial
iam_actions.extract_iam_action = _extract_iam_action
iam_evaluator.enforce = _enforce
iam_evaluator.evaluate_trust_policy = _evaluate_trust_policy

if __name__ == "__main__":
    app.main()
