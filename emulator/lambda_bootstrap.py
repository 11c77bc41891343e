"""Child-process bootstrap: one local Lambda execution environment.

Run as ``python -P -s -u <this file> <request-fd> <control-fd>`` by :mod:`emulator.lambda_runtime`,
with the unzipped function code as the working directory and the function's environment. Like the
Lambda Python runtime it imports the handler once (the init phase), then serves invocations one at
a time until the request pipe closes, so module-level state survives between invocations of one
environment (Powertools reports ``cold_start: false`` on reuse).

Protocol, one JSON object per line:

* parent -> child (request fd): ``{"request_id", "event" (JSON text), "deadline_ms",
  "invoked_function_arn"}``;
* child -> parent (control fd): ``{"phase": "init_done"}`` or ``{"phase": "init_error", "error"}``
  once; then per request ``{"phase": "result", "request_id", "ok": true, "payload"}`` or
  ``{"phase": "result", "request_id", "ok": false, "error": {errorMessage, errorType, stackTrace}}``.

Everything the handler prints (stdout and stderr share one pipe) goes to the parent, which copies it
to CloudWatch Logs; after each invocation this process writes :data:`END_MARKER` and the request id
on its own line, so the parent knows where that invocation's output ends. This file imports nothing
from the emulator package or moto: it runs with the function's code first on ``sys.path``.

Logging follows the Lambda Python runtime (``awslambdaric``): a root-logger handler writes the
tab-separated text format, or with ``AWS_LAMBDA_LOG_FORMAT=JSON`` (a function whose LoggingConfig
says JSON) one JSON object per record; ``AWS_LAMBDA_LOG_LEVEL`` sets the root logger's level, and
an unhandled error is logged as text lines joined by ``\\r``, or under JSON as one JSON object.
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

END_MARKER = "\x00emulator-invocation-end "
_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
_CURRENT_REQUEST = {"id": ""}
# LogRecord attributes the runtime's JSON formatter does not copy into the object (awslambdaric's
# list); any other attribute (``extra=...``) becomes a field of its own.
_RESERVED_FIELDS = frozenset(
    {
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    }
)

Handler = Callable[[Any, "LambdaContext"], Any]


class LambdaContext:
    """The subset of the AWS Lambda Python runtime's context object that handlers use."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = invoked_function_arn
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
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _CURRENT_REQUEST["id"]
        return True


def json_log_format() -> bool:
    """The function's LoggingConfig says JSON (Lambda sets ``AWS_LAMBDA_LOG_FORMAT`` then)."""
    return os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"


def iso_timestamp(seconds: float) -> str:
    """``2026-12-06T11:22:33.123Z``: ISO 8601 in UTC with milliseconds, as the runtime writes it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{int(seconds * 1000) % 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """The Lambda Python runtime's JSON formatter: one object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        level = min(50, max(0, record.levelno)) // 10 * 10  # the runtime rounds custom levels down
        exc_info = record.exc_info
        result: dict[str, Any] = {
            "timestamp": iso_timestamp(record.created),
            "level": logging.getLevelName(level),
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info and exc_info[0] else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": f"{record.pathname}:{record.funcName}:{record.lineno}" if exc_info else None,
        }
        result.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _RESERVED_FIELDS and key not in result
        )
        fields = {key: value for key, value in result.items() if value is not None}
        return json.dumps(fields, ensure_ascii=False, default=str)


def _root_level(value: str | None) -> str | None:
    """``AWS_LAMBDA_LOG_LEVEL`` as a Python level name: TRACE is DEBUG; FATAL and WARN exist."""
    level = {"TRACE": "DEBUG"}.get((value or "").upper(), (value or "").upper())
    return level if level in logging.getLevelNamesMapping() else None


def _configure_logging() -> None:
    """Mirror the Lambda Python runtime: a root handler, in its text or (LoggingConfig) JSON format."""
    handler = logging.StreamHandler(sys.stdout)
    if json_log_format():
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter(_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = _root_level(os.environ.get("AWS_LAMBDA_LOG_LEVEL"))
    if level:
        root.setLevel(level)


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
    if json_log_format():
        # The runtime's JSON form: the error's own fields next to timestamp and level.
        record = {"timestamp": iso_timestamp(time.time()), "level": "ERROR", **error}
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    # The runtime logs an unhandled error as one CloudWatch event: lines are joined with "\r".
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}", "Traceback (most recent call last):"]
    lines.extend(frame.rstrip("\n") for frame in error["stackTrace"])
    sys.stdout.write("\r".join(lines) + "\n")
    sys.stdout.flush()


def _send(ctrl: TextIO, message: dict[str, Any]) -> None:
    ctrl.write(json.dumps(message) + "\n")
    ctrl.flush()


def load_handler(handler_spec: str) -> Handler:
    """Import ``module.function`` the way the runtime does; errors carry Lambda's error types."""
    module_name, _, func_name = handler_spec.rpartition(".")
    if not module_name or not func_name:
        raise ValueError(f"Bad handler '{handler_spec}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name.replace("/", "."))
    handler = getattr(module, func_name, None)
    if handler is None:
        raise AttributeError(f"Handler '{func_name}' missing on module '{module_name}'")
    return handler  # type: ignore[no-any-return]


def init() -> tuple[Handler | None, dict[str, Any] | None]:
    """The init phase: paths, logging, the handler import; ``(handler, None)`` or ``(None, error)``."""
    extra_paths = [p for p in os.environ.pop("_EMULATOR_EXTRA_PATHS", "").split(os.pathsep) if p]
    sys.path[:0] = [os.environ.get("LAMBDA_TASK_ROOT", os.getcwd()), *extra_paths]
    _configure_logging()
    spec = os.environ.get("_HANDLER", "")
    try:
        return load_handler(spec), None
    except ImportError as exc:
        error = _error(exc, "Runtime.ImportModuleError")
        error["errorMessage"] = f"Unable to import module '{spec}': {exc}"
    except (AttributeError, ValueError) as exc:
        error = _error(exc, "Runtime.HandlerNotFound")
    except Exception as exc:  # noqa: BLE001 - any init error is reported to the caller like Lambda does
        error = _error(exc)
    _log_error(error)
    return None, error


def invoke(handler: Handler, request: dict[str, Any]) -> dict[str, Any]:
    """Run one invocation; the result message for the parent."""
    request_id = str(request.get("request_id", ""))
    _CURRENT_REQUEST["id"] = request_id
    context = LambdaContext(
        request_id, int(request.get("deadline_ms", 0)), str(request.get("invoked_function_arn", ""))
    )
    message: dict[str, Any] = {"phase": "result", "request_id": request_id, "ok": False}
    try:
        event = json.loads(request.get("event") or "{}")
    except json.JSONDecodeError as exc:
        message["error"] = _error(exc, "Runtime.UnmarshalError")
        return message
    try:
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's result
        error = _error(exc, skip_frames=1)
        error["requestId"] = request_id
        _log_error(error)
        message["error"] = error
        return message
    try:
        message.update(ok=True, payload=json.dumps(result, default=_decimal_serializer))
    except (TypeError, ValueError) as exc:
        error = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": request_id,
            "stackTrace": [],
        }
        _log_error(error)
        message["error"] = error
    return message


def main() -> int:
    requests = os.fdopen(int(sys.argv[1]), "r", encoding="utf-8")
    ctrl = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8")
    handler, error = init()
    if handler is None:
        _send(ctrl, {"phase": "init_error", "error": error})
        return 0
    _send(ctrl, {"phase": "init_done"})
    for line in requests:
        request = json.loads(line)
        message = invoke(handler, request)
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout.write(f"{END_MARKER}{message['request_id']}\n")
        sys.stdout.flush()
        _send(ctrl, message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
