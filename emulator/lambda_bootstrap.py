"""Child-process bootstrap for one local Lambda invocation.

Run as ``python -P -s -u <this file> <control-fd>`` by :mod:`emulator.lambda_runtime`, with the unzipped
function code as the working directory. It imports the handler named by ``_HANDLER``, builds a
Lambda-like context object, reads the event (JSON) from stdin, calls the handler and reports to the
parent over the control file descriptor, one JSON object per line:

* ``{"phase": "init_done"}`` once the handler module is imported (Lambda's init phase is not counted
  against the function timeout);
* ``{"phase": "result", "ok": true, "payload": "<json text>"}`` or
  ``{"phase": "result", "ok": false, "error": {"errorMessage", "errorType", "stackTrace"}}``.

Everything the handler prints (stdout and stderr) is left to the parent, which copies it to
CloudWatch Logs. This file deliberately imports nothing from the emulator package or moto: it runs
in the function's own interpreter with the function's code first on ``sys.path``.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class LambdaContext:
    """The subset of the AWS Lambda Python runtime's context object that handlers use."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("_EMULATOR_INVOKED_FUNCTION_ARN", "")
        # The real runtime exposes the environment variable's value (a string).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(msg)
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name},"
            f"function_version={self.function_version},invoked_function_arn={self.invoked_function_arn}])"
        )


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id: str) -> None:
        super().__init__()
        self.request_id = request_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _configure_logging(request_id: str) -> None:
    """Mirror the Lambda Python runtime: a root handler with its tab-separated text format."""
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter(request_id))
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        root.setLevel(level.upper())


def _decimal_serializer(obj: object) -> float:
    if isinstance(obj, decimal.Decimal):
        return float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _error(exc: BaseException, error_type: str | None = None, skip_frames: int = 0) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)[skip_frames:]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(frames),
    }


def _log_error(error: dict[str, Any]) -> None:
    # The runtime logs an unhandled error as one CloudWatch event: lines are joined with "\r".
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}", "Traceback (most recent call last):"]
    lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    sys.stdout.write("\r".join(lines) + "\n")
    sys.stdout.flush()


def _load_handler(handler_spec: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, func_name = handler_spec.rpartition(".")
    if not module_name or not func_name:
        raise ValueError(f"Bad handler '{handler_spec}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name.replace("/", "."))
    handler = getattr(module, func_name, None)
    if handler is None:
        raise AttributeError(f"Handler '{func_name}' missing on module '{module_name}'")
    return handler


def _send(ctrl: TextIO, message: dict[str, Any]) -> None:
    ctrl.write(json.dumps(message) + "\n")
    ctrl.flush()


def main() -> int:
    ctrl = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    extra_paths = [p for p in os.environ.pop("_EMULATOR_EXTRA_PATHS", "").split(os.pathsep) if p]
    request_id = os.environ.pop("_EMULATOR_REQUEST_ID", "")
    timeout_s = float(os.environ.pop("_EMULATOR_TIMEOUT", "3"))
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path[:0] = [task_root, *extra_paths]
    _configure_logging(request_id)
    event_text = sys.stdin.read()

    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""))
    except ImportError as exc:
        error = _error(exc, "Runtime.ImportModuleError")
        error["errorMessage"] = f"Unable to import module '{os.environ.get('_HANDLER', '')}': {exc}"
        _log_error(error)
        _send(ctrl, {"phase": "result", "ok": False, "error": error})
        return 0
    except (AttributeError, ValueError) as exc:
        error = _error(exc, "Runtime.HandlerNotFound")
        _log_error(error)
        _send(ctrl, {"phase": "result", "ok": False, "error": error})
        return 0
    except Exception as exc:  # noqa: BLE001 - any init error is reported to the caller like Lambda does
        error = _error(exc)
        _log_error(error)
        _send(ctrl, {"phase": "result", "ok": False, "error": error})
        return 0

    _send(ctrl, {"phase": "init_done"})
    deadline_ms = int((time.time() + timeout_s) * 1000)
    context = LambdaContext(request_id, deadline_ms)
    try:
        event = json.loads(event_text) if event_text else {}
    except json.JSONDecodeError as exc:
        error = _error(exc, "Runtime.UnmarshalError")
        _send(ctrl, {"phase": "result", "ok": False, "error": error})
        return 0

    try:
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's result
        error = _error(exc, skip_frames=1)
        error["requestId"] = request_id
        _log_error(error)
        _send(ctrl, {"phase": "result", "ok": False, "error": error})
        return 0

    try:
        payload = json.dumps(result, default=_decimal_serializer)
    except (TypeError, ValueError) as exc:
        error = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": request_id,
            "stackTrace": [],
        }
        _log_error(error)
        _send(ctrl, {"phase": "result", "ok": False, "error": error})
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    _send(ctrl, {"phase": "result", "ok": True, "payload": payload})
    return 0


if __name__ == "__main__":
    sys.exit(main())
