"""The WSGI layer in front of moto: admin API, fault injection, request context, request log."""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from emulator import admin, s3_policy

if TYPE_CHECKING:
    from emulator.control import EmulatorControl

REQUEST_LOG = logging.getLogger("emulator.requests")
StartResponse = Callable[..., Any]
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def read_body(environ: dict[str, Any]) -> bytes:
    """Read (and put back) the request body, when its length is known."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return b""
    if length <= 0 or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


def json_response(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode("utf-8")
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class EmulatorApp:
    """WSGI middleware in front of moto's ``DomainDispatcherApplication``."""

    def __init__(self, emulator: EmulatorControl, moto_app: Any) -> None:
        self.emulator = emulator
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(admin.ADMIN_PREFIX):
            request = admin.AdminRequest(
                method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
                path=path,
                query=urllib.parse.parse_qs(environ.get("QUERY_STRING", "")),
                body=read_body(environ),
            )
            status, body = admin.handle(self.emulator, request)
            return json_response(start_response, status, body)
        started = time.monotonic()
        target = environ.get("HTTP_X_AMZ_TARGET")
        injected = self._injected_fault(environ, target, start_response)
        if injected is not None:
            return injected
        captured: dict[str, str] = {}

        def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        with s3_policy.request_context(environ):
            result = self.moto_app(environ, _start_response)
        REQUEST_LOG.info(
            "%s %s%s -> %s %.0fms",
            environ.get("REQUEST_METHOD"),
            path,
            f" target={target}" if target else "",
            captured.get("status", "?").split(" ", 1)[0],
            (time.monotonic() - started) * 1000,
        )
        return result

    def _injected_fault(
        self, environ: dict[str, Any], target: str | None, start_response: StartResponse
    ) -> list[bytes] | None:
        registry = self.emulator.faults
        if not registry:
            return None
        fault = registry.check(target, read_body(environ))
        if fault is None:
            return None
        status, headers, body = fault.response()
        start_response(f"{status} Injected Fault", headers)
        REQUEST_LOG.info(
            "%s %s target=%s -> %d (%s %s)",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO", ""),
            target,
            status,
            type(fault).__name__.lower(),
            getattr(fault, "id", fault.target),
        )
        return [body]
