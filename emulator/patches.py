"""Patches that turn moto 5.2.5 into the emulator (installed once per process, idempotent).

The patches are inert while no :class:`~emulator.server.Emulator` runs in the process: moto's own
code paths are used then (so in-process ``mock_aws`` tests are unaffected).

* ``LambdaFunction._invoke_lambda`` / ``LambdaFunction.invoke``: run the uploaded code locally
  (:mod:`emulator.lambda_runtime`) instead of in Docker; ``X-Amz-Function-Error: Unhandled`` like
  Lambda (moto says ``Handled``); ``InvocationType=Event`` returns 202 at once and runs through the
  :class:`~emulator.lambda_runtime.AsyncInvoker` (retries + destinations).
* S3 bucket policies are evaluated with their conditions (:mod:`emulator.s3_policy`).
* ListObjectVersions honours ``encoding-type=url`` (:mod:`emulator.s3_listing`).
* S3 -> Lambda notifications are asynchronous, as on AWS (moto runs them inside PutObject and
  swallows every error); the S3 event records get ``sequencer``, ``versionId``, ``userIdentity``,
  ``requestParameters`` and ``responseElements`` like real S3 events.
* ``PutFunctionEventInvokeConfig`` replaces the config (moto appends and keeps serving the first) and
  ``UpdateFunctionEventInvokeConfig`` merges into it.
* Step Functions service integrations call back into the emulator at ``http://127.0.0.1:<port>``
  (moto uses ``http://localhost:$MOTO_PORT``, which is also set), and ``StartExecution`` without a
  ``name`` gets a UUID (moto names it ``None``).
* API additions: :mod:`emulator.stepfunctions_api`, :mod:`emulator.lambda_api` and
  :mod:`emulator.events` (EventBridge -> Lambda targets, firing scheduled rules on demand).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import boto3
from botocore.config import Config

from emulator.lambda_runtime import AsyncInvoker, LocalLambdaRunner

if TYPE_CHECKING:
    from moto.awslambda.models import LambdaFunction


class EmulatorNotActiveError(RuntimeError):
    """A patched code path ran while no :class:`~emulator.server.Emulator` is active."""


@dataclass
class ActiveRuntime:
    """What the patched moto code needs from the running emulator."""

    endpoint_url: str
    runner: LocalLambdaRunner
    async_invoker: AsyncInvoker


_ACTIVE: ActiveRuntime | None = None
_INSTALL_LOCK = threading.Lock()
_INSTALLED = False


def activate(runtime: ActiveRuntime) -> None:
    global _ACTIVE
    with _INSTALL_LOCK:
        if _ACTIVE is not None:
            raise RuntimeError("another Emulator is already running in this process")
        _ACTIVE = runtime
    install()


def deactivate() -> None:
    global _ACTIVE
    with _INSTALL_LOCK:
        _ACTIVE = None


def active() -> ActiveRuntime:
    if _ACTIVE is None:
        raise EmulatorNotActiveError("no Emulator is running in this process")
    return _ACTIVE


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


# ---------------------------------------------------------------------------- Lambda


_ORIGINALS: dict[str, Any] = {}


def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for moto's Docker runner: ``(payload, errored, logs)``."""
    if _ACTIVE is None:  # no emulator in this process (e.g. a mock_aws unit test): moto's own code
        return _ORIGINALS["_invoke_lambda"](self, event)  # type: ignore[no-any-return]
    text = event if isinstance(event, str | bytes) else json.dumps(event if event is not None else {})
    result = active().runner.invoke(self, text)
    return result.payload, result.errored, result.logs


def _header(headers: Any, name: str, default: str) -> str:
    if not headers:
        return default
    getter = getattr(headers, "get", None)
    if getter is None:
        return default
    value = getter(name)
    if value is None:
        value = getter(name.lower())
    return str(value) if value is not None else default


def _lambda_invoke(
    self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any
) -> str | bytes:
    """Replacement for ``LambdaFunction.invoke`` (used by the Invoke API and event sources)."""
    if _ACTIVE is None:
        return _ORIGINALS["invoke"](self, body, request_headers, response_headers)  # type: ignore[no-any-return]
    text = body.decode("utf-8") if isinstance(body, bytes) else (body or "{}")
    invocation_type = _header(request_headers, "X-Amz-Invocation-Type", "RequestResponse")
    runtime = active()
    if invocation_type == "Event":
        runtime.async_invoker.submit(self, text, source="lambda:Invoke")
        return b""
    if invocation_type == "DryRun":
        return b""
    result = runtime.runner.invoke(self, text)
    if result.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = str(self.version)
    response_headers["x-amz-log-result"] = result.log_result_header()
    return result.payload.encode("utf-8")


def _put_event_invoke_config(self: Any, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
    from moto.awslambda.models import EventInvokeConfig

    fn = self.get_function(function_name)
    event_config = EventInvokeConfig(fn.function_arn, fn.last_modified, config)
    fn.event_invoke_config[:] = [event_config]
    return event_config.response()


def _update_event_invoke_config(self: Any, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
    fn = self.get_function(function_name)
    merged: dict[str, Any] = dict(fn.event_invoke_config[-1].config) if fn.event_invoke_config else {}
    merged.update(config)
    return _put_event_invoke_config(self, function_name, merged)


# ---------------------------------------------------------------------------- S3 notifications

_SEQ_LOCK = threading.Lock()
_LAST_SEQUENCER = 0


def _next_sequencer() -> str:
    global _LAST_SEQUENCER
    with _SEQ_LOCK:
        _LAST_SEQUENCER = max(time.time_ns(), _LAST_SEQUENCER + 1)
        return f"{_LAST_SEQUENCER:018X}"


def _make_s3_event_enricher(original: Any) -> Any:
    def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event.get("Records", []):
            record.setdefault("userIdentity", {"principalId": "AWS:EMULATOR"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements",
                {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
            )
            obj = record.get("s3", {}).get("object", {})
            # Real S3 form-URL-encodes the key but leaves "/" alone (moto encodes it as %2F).
            obj["key"] = quote_plus(key.name, safe="/")
            obj["sequencer"] = _next_sequencer()
            if getattr(bucket, "is_versioned", False):
                obj["versionId"] = key.version_id
        return event

    return _get_s3_event


def _s3_invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    """S3 invokes Lambda asynchronously: queue the event, never fail the S3 request."""
    if _ACTIVE is None:
        _ORIGINALS["_invoke_awslambda"](account_id, event_body, fn_arn, region_name)
        return
    import logging

    from moto.awslambda.utils import get_backend
    from moto.core.exceptions import JsonRESTError, ServiceException

    log = logging.getLogger("emulator.s3")
    try:
        fn = get_backend(account_id, region_name).get_function(fn_arn)
    except (JsonRESTError, ServiceException, KeyError, ValueError):
        log.warning("S3 notification for missing function %s dropped", fn_arn, exc_info=True)
        return
    active().async_invoker.submit(fn, json.dumps(event_body), source="s3")


# ---------------------------------------------------------------------------- Step Functions


def _sfn_boto3_shim() -> SimpleNamespace:
    real_client = boto3.client

    def client(*args: Any, **kwargs: Any) -> Any:
        if _ACTIVE is not None:
            kwargs["endpoint_url"] = _ACTIVE.endpoint_url
        return real_client(*args, **kwargs)

    return SimpleNamespace(client=client)


def _install_sfn_fixes() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    boto_client.boto3 = _sfn_boto3_shim()  # type: ignore[assignment]

    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        return original_start(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


def install() -> None:
    """Apply every patch (once per process)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.awslambda.models import LambdaBackend, LambdaFunction
    from moto.s3 import notifications

    from emulator import events, lambda_api, s3_listing, s3_policy, stepfunctions_api

    _ORIGINALS["_invoke_lambda"] = LambdaFunction._invoke_lambda
    _ORIGINALS["invoke"] = LambdaFunction.invoke
    _ORIGINALS["_invoke_awslambda"] = notifications._invoke_awslambda
    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
    LambdaFunction.invoke = _lambda_invoke  # type: ignore[method-assign]
    LambdaBackend.put_function_event_invoke_config = _put_event_invoke_config  # type: ignore[method-assign]
    LambdaBackend.update_function_event_invoke_config = _update_event_invoke_config  # type: ignore[method-assign]
    notifications._invoke_awslambda = _s3_invoke_awslambda
    notifications._get_s3_event = _make_s3_event_enricher(notifications._get_s3_event)
    _install_sfn_fixes()
    stepfunctions_api.install()
    lambda_api.install()
    events.install()
    s3_policy.install()
    s3_listing.install()
    _INSTALLED = True
