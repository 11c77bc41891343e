"""Lambda invocations run the uploaded code locally (moto runs it only in Docker).

* ``LambdaFunction._invoke_lambda`` (what moto's event sources and Step Functions call) and
  ``LambdaFunction.invoke`` (the Invoke API) go to :mod:`emulator.lambda_runtime`;
  ``InvocationType=Event`` returns 202 at once and runs through the asynchronous invoker (retries,
  destinations); an error carries ``X-Amz-Function-Error: Unhandled`` like Lambda; invocations beyond
  the function's reserved concurrency are throttled like Lambda (HTTP 429).
* ``PutFunctionEventInvokeConfig`` replaces the config and ``UpdateFunctionEventInvokeConfig``
  merges into it (moto appends and keeps serving the first one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from moto.awslambda.exceptions import LambdaClientError

from emulator.context import active
from emulator.lambda_environments import ThrottledError
from emulator.patch import Patch

if TYPE_CHECKING:
    from moto.awslambda.models import LambdaFunction


class TooManyRequestsError(LambdaClientError):
    """Lambda's throttling error: HTTP 429 ``TooManyRequestsException``."""

    code = 429

    def __init__(self, message: str) -> None:
        super().__init__("TooManyRequestsException", f"Rate Exceeded. {message}")
        self.description = json.dumps(
            {
                "Type": "User",
                "message": "Rate Exceeded.",
                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
            }
        )


def _invoke_lambda(_original: Any) -> Any:
    def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        """``(payload, errored, logs)``, the shape moto's Docker runner returns."""
        text = event if isinstance(event, str | bytes) else json.dumps(event if event is not None else {})
        result = active().runner.invoke(self, text, throttle=False)
        return result.payload, result.errored, result.logs

    return invoke_lambda


def header(headers: Any, name: str, default: str) -> str:
    """A request header from moto's (dict or werkzeug) headers, case-insensitively."""
    getter = getattr(headers, "get", None) if headers else None
    if getter is None:
        return default
    value = getter(name)
    if value is None:
        value = getter(name.lower())
    return str(value) if value is not None else default


def _invoke(_original: Any) -> Any:
    def invoke(self: LambdaFunction, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
        text = body.decode("utf-8") if isinstance(body, bytes) else (body or "{}")
        invocation_type = header(request_headers, "X-Amz-Invocation-Type", "RequestResponse")
        runtime = active()
        if invocation_type == "Event":
            runtime.async_invoker.submit(self, text, source="lambda:Invoke")
            return b""
        if invocation_type == "DryRun":
            return b""
        try:
            result = runtime.runner.invoke(self, text, throttle=True)
        except ThrottledError as exc:
            raise TooManyRequestsError(str(exc)) from exc
        if result.errored:
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["x-amz-executed-version"] = str(self.version)
        response_headers["x-amz-log-result"] = result.log_result_header()
        return result.payload.encode("utf-8")

    return invoke


def _put_event_invoke_config(_original: Any) -> Any:
    def put(self: Any, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
        from moto.awslambda.models import EventInvokeConfig

        fn = self.get_function(function_name)
        event_config = EventInvokeConfig(fn.function_arn, fn.last_modified, config)
        fn.event_invoke_config[:] = [event_config]
        return event_config.response()

    return put


def _update_event_invoke_config(_original: Any) -> Any:
    def update(self: Any, function_name: str, config: dict[str, Any]) -> dict[str, Any]:
        fn = self.get_function(function_name)
        merged: dict[str, Any] = dict(fn.event_invoke_config[-1].config) if fn.event_invoke_config else {}
        merged.update(config)
        return self.put_function_event_invoke_config(function_name, merged)

    return update


PATCHES = [
    Patch(
        "moto.awslambda.models.LambdaFunction._invoke_lambda",
        "moto runs function code only in Docker; here it runs in a local process (no Docker needed)",
        _invoke_lambda,
    ),
    Patch(
        "moto.awslambda.models.LambdaFunction.invoke",
        "moto runs Event invocations synchronously, flags errors as 'Handled' and never throttles;"
        " Lambda queues Event invocations, says 'Unhandled' and throttles beyond reserved concurrency",
        _invoke,
    ),
    Patch(
        "moto.awslambda.models.LambdaBackend.put_function_event_invoke_config",
        "moto appends a second config and keeps serving the first; Lambda replaces it",
        _put_event_invoke_config,
    ),
    Patch(
        "moto.awslambda.models.LambdaBackend.update_function_event_invoke_config",
        "moto appends instead of merging the update into the existing config",
        _update_event_invoke_config,
    ),
]
