"""The embedded AWS emulator: moto's server app, in-process and threaded, plus the emulator's patches.

``Emulator(port=0).start()`` binds ``127.0.0.1`` (port 0 picks a free port; :attr:`Emulator.port` is the
real one), sets ``MOTO_PORT`` to it, turns on moto's Step Functions execution, installs the patches of
:mod:`emulator.patches` (local Lambda runtime, API additions) and serves moto's
``DomainDispatcherApplication`` behind a small WSGI layer that adds:

* ``GET /_emulator/health`` -> 200 JSON;
* ``/_emulator/faults`` (see :mod:`emulator.faults`);
* ``GET /_emulator/lambda`` (invocation counters) and ``POST /_emulator/lambda/wait?timeout=S``
  (wait until no asynchronous Lambda invocation is pending; ``{"idle": true|false}``);
* ``POST /_emulator/events/trigger`` ``{"rule": NAME, "region"?, "event_bus"?, "event"?}``: deliver a
  Scheduled Event to the rule's targets now (moto never runs schedules);
* a request log (method, path, ``X-Amz-Target``, status, duration) in the emulator log.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from werkzeug.serving import ThreadedWSGIServer

from emulator import faults as faults_mod
from emulator import patches, s3_policy
from emulator.lambda_runtime import AsyncInvoker, LocalLambdaRunner, RuntimeSettings

LOG = logging.getLogger("emulator")
REQUEST_LOG = logging.getLogger("emulator.requests")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
HEALTH_PATH = "/_emulator/health"
_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

StartResponse = Callable[..., Any]


class EmulatorError(RuntimeError):
    """The emulator could not start, or did not become healthy."""


# ---------------------------------------------------------------------------- HTTP server


def _request_handler_class() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class _RequestHandler(MotoRequestHandler):
        """moto's handler without werkzeug's stderr access log (the emulator logs requests itself)."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

        def log(self, type: str, message: str, *args: Any) -> None:
            LOG.log(logging.ERROR if type == "error" else logging.DEBUG, message, *args)

    return _RequestHandler


class _Server(ThreadedWSGIServer):
    """A threaded werkzeug server that can close its open keep-alive connections on shutdown."""

    daemon_threads = True

    def __init__(self, host: str, port: int, app: Any, handler: type) -> None:
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        # Bind here (werkzeug would print and sys.exit(1) on EADDRINUSE), then hand werkzeug the socket.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(128)
            super().__init__(host, port, app, handler=handler, fd=listener.fileno())
        finally:
            listener.close()  # werkzeug holds its own duplicate of the descriptor

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), name="emulator-http", daemon=True
        )
        with self._conn_lock:
            self._connections.add(request)
            self._conn_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            LOG.debug("connection from %s ended with a socket error", client_address, exc_info=True)
        except Exception:
            LOG.exception("error while serving a connection from %s", client_address)
        finally:
            self.shutdown_request(request)
            with self._conn_lock:
                self._connections.discard(request)
                self._conn_threads.discard(threading.current_thread())

    def close_connections(self, timeout: float = 5.0) -> None:
        """Shut down every open client connection and wait for their threads."""
        with self._conn_lock:
            connections = list(self._connections)
            threads = list(self._conn_threads)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))


# ---------------------------------------------------------------------------- WSGI layer


def _json_response(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    data = json.dumps(body, default=str).encode("utf-8")
    reason = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    start_response(
        f"{status} {reason.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


class EmulatorApp:
    """WSGI middleware in front of moto: admin endpoints, fault injection, request log."""

    def __init__(self, emulator: Emulator, moto_app: Any) -> None:
        self.emulator = emulator
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_emulator"):
            return self._admin(environ, start_response, path)
        started = time.monotonic()
        target = environ.get("HTTP_X_AMZ_TARGET")
        registry = self.emulator.faults
        if registry:
            rule = registry.check(target, self._body(environ))
            if rule is not None:
                status, headers, body = rule.response()
                start_response(f"{status} Injected Fault", headers)
                REQUEST_LOG.info(
                    "%s %s target=%s -> %d %s (fault %s)",
                    environ.get("REQUEST_METHOD"),
                    path,
                    target,
                    status,
                    rule.error_code,
                    rule.id,
                )
                return [body]
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

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        """Read (and put back) the request body, when its length is known."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return b""
        if length <= 0 or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return b""
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _admin(self, environ: dict[str, Any], start_response: StartResponse, path: str) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        emulator = self.emulator
        if path == HEALTH_PATH:
            return _json_response(start_response, 200, emulator.health())
        if path == "/_emulator/faults":
            if method == "GET":
                return _json_response(start_response, 200, {"faults": emulator.faults.list()})
            if method == "DELETE":
                return _json_response(start_response, 200, {"cleared": emulator.faults.clear()})
            if method == "POST":
                try:
                    data = json.loads(self._body(environ) or b"{}")
                    rule = emulator.faults.add(faults_mod.FaultRule.from_dict(data))
                except (json.JSONDecodeError, faults_mod.FaultRuleError) as exc:
                    return _json_response(start_response, 400, {"error": str(exc)})
                LOG.info("fault rule added: %s", rule.to_dict())
                return _json_response(start_response, 201, rule.to_dict())
            return _json_response(start_response, 405, {"error": f"{method} not allowed"})
        if path.startswith("/_emulator/faults/") and method == "DELETE":
            removed = emulator.faults.remove(path.rsplit("/", 1)[-1])
            return _json_response(start_response, 200 if removed else 404, {"removed": removed})
        if path == "/_emulator/events/trigger" and method == "POST":
            from moto.events.exceptions import ResourceNotFoundException

            try:
                data = json.loads(self._body(environ) or b"{}")
                result = emulator.trigger_rule(
                    str(data["rule"]),
                    region=str(data.get("region", "us-east-1")),
                    event_bus=str(data.get("event_bus", "default")),
                    event=data.get("event"),
                )
            except (json.JSONDecodeError, KeyError) as exc:
                return _json_response(start_response, 400, {"error": f"bad request: {exc}"})
            except ResourceNotFoundException as exc:
                return _json_response(start_response, 404, {"error": exc.message})
            return _json_response(start_response, 200, result)
        if path == "/_emulator/lambda" and method == "GET":
            return _json_response(start_response, 200, emulator.lambda_stats())
        if path == "/_emulator/lambda/wait" and method == "POST":
            timeout = float(query.get("timeout", ["60"])[0])
            idle = emulator.wait_for_async_invocations(timeout)
            return _json_response(start_response, 200, {"idle": idle, **emulator.lambda_stats()})
        return _json_response(start_response, 404, {"error": f"no emulator endpoint {method} {path}"})


# ---------------------------------------------------------------------------- helpers


def _no_proxy_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until_healthy(endpoint_url: str, timeout: float = 30.0, interval: float = 0.1) -> dict[str, Any]:
    """Poll ``GET /_emulator/health`` until it answers 200; returns its JSON."""
    deadline = time.monotonic() + timeout
    opener = _no_proxy_opener()
    last_error: str = "no answer"
    while True:
        try:
            with opener.open(endpoint_url.rstrip("/") + HEALTH_PATH, timeout=2) as response:
                if response.status == 200:
                    return dict(json.loads(response.read()))
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
            last_error = str(exc)
        if time.monotonic() >= deadline:
            raise EmulatorError(f"emulator at {endpoint_url} not healthy after {timeout:.0f}s: {last_error}")
        time.sleep(interval)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _send_to_destination(target: str, message: str, region: str, attributes: dict[str, str]) -> None:
    """Deliver an async-invocation record (or DLQ event) to an SQS/SNS/Lambda/EventBridge target."""
    parts = target.split(":")
    service = parts[2] if len(parts) > 5 else ""
    region = parts[3] or region if len(parts) > 5 else region
    try:
        if service == "sqs":
            sqs = patches.client("sqs", region)
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            msg_attrs = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
            sqs.send_message(QueueUrl=url, MessageBody=message, MessageAttributes=msg_attrs)
        elif service == "sns":
            msg_attrs = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
            patches.client("sns", region).publish(
                TopicArn=target, Message=message, MessageAttributes=msg_attrs
            )
        elif service == "lambda":
            patches.client("lambda", region).invoke(
                FunctionName=target, InvocationType="Event", Payload=message.encode("utf-8")
            )
        elif service == "events":
            patches.client("events", region).put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": "Lambda Function Invocation Result",
                        "Detail": message,
                        "EventBusName": target,
                    }
                ]
            )
        else:
            LOG.warning("unsupported async invocation destination %s", target)
    except (ClientError, BotoCoreError) as exc:
        LOG.warning("could not deliver to destination %s: %s", target, exc)


# ---------------------------------------------------------------------------- the emulator


class Emulator:
    """An in-process, threaded moto server with the emulator's additions.

    Usable as a context manager::

        with Emulator(port=0) as emu:
            boto3.client("s3", endpoint_url=emu.endpoint_url, ...)
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        log_path: Path | str | None = None,
        state_dir: Path | str | None = None,
        async_retry_delays: tuple[float, ...] = (1.0, 2.0),
        async_concurrency: int = 16,
        max_lambda_processes: int | None = None,
        reset_state: bool = True,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.log_path = Path(log_path) if log_path else None
        self.state_dir = Path(state_dir) if state_dir else None
        self.async_retry_delays = async_retry_delays
        self.async_concurrency = async_concurrency
        self.max_lambda_processes = max_lambda_processes
        self.reset_state = reset_state
        self.faults = faults_mod.FaultRegistry()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self._saved_env: dict[str, str | None] = {}
        self._saved_sfn_config: Any = None
        self._temp_dir: Path | None = None
        self._started_at: float | None = None
        self.runner: LocalLambdaRunner | None = None
        self.async_invoker: AsyncInvoker | None = None

    # -------------------------------------------------------------- properties
    @property
    def port(self) -> int:
        if self._port is None:
            raise EmulatorError("the emulator is not started")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -------------------------------------------------------------- lifecycle
    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _setup_logging(self) -> None:
        if self.log_path is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        handler.setLevel(logging.INFO)
        for name, level in (
            ("emulator", logging.INFO),
            ("moto", logging.WARNING),
            ("werkzeug", logging.ERROR),
        ):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level > level:
                logger.setLevel(level)
            logger.addHandler(handler)
            self._log_handlers.append((logger, handler))

    def _teardown_logging(self) -> None:
        handlers = {id(h): h for _, h in self._log_handlers}
        for logger, handler in self._log_handlers:
            logger.removeHandler(handler)
        for handler in handlers.values():
            handler.close()
        self._log_handlers.clear()

    def _cache_dir(self) -> Path:
        if self.state_dir is not None:
            path = self.state_dir / "lambda-cache"
            path.mkdir(parents=True, exist_ok=True)
            return path
        self._temp_dir = Path(tempfile.mkdtemp(prefix="emulator-lambda-"))
        return self._temp_dir

    def _configure_moto(self) -> None:
        from moto.core.config import default_user_config
        from moto.moto_api._internal.models import moto_api_backend

        if self.reset_state:
            moto_api_backend.reset()
        self._saved_sfn_config = default_user_config.get("stepfunctions")
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["lambda"] = {"use_docker": True}  # keep the real backend (our runner)
        self._saved_env = {"MOTO_PORT": os.environ.get("MOTO_PORT")}
        # moto's Step Functions integrations read MOTO_PORT on every call (settings.moto_server_port())
        os.environ["MOTO_PORT"] = str(self.port)

    def _restore_moto(self) -> None:
        from moto.core.config import default_user_config

        if self._saved_sfn_config is not None:
            default_user_config["stepfunctions"] = self._saved_sfn_config
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def start(self) -> Emulator:
        """Bind, configure moto, install the patches, serve, and wait until healthy."""
        if self._server is not None:
            raise EmulatorError("the emulator is already started")
        if patches.is_active():
            raise EmulatorError("another Emulator is already running in this process")
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._setup_logging()
        try:
            moto_app = DomainDispatcherApplication(create_backend_app)
            try:
                server = _Server(
                    self.host, self.requested_port, EmulatorApp(self, moto_app), _request_handler_class()
                )
            except OSError as exc:
                raise EmulatorError(
                    f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
                    " (is another emulator or LocalStack running?)"
                ) from exc
            self._port = int(server.server_address[1])
            self._configure_moto()
            settings = RuntimeSettings(
                endpoint_url=self.endpoint_url,
                cache_dir=self._cache_dir(),
                async_retry_delays=self.async_retry_delays,
            )
            if self.max_lambda_processes:
                settings.max_processes = self.max_lambda_processes
            self.runner = LocalLambdaRunner(settings)
            self.async_invoker = AsyncInvoker(self.runner, _send_to_destination, self.async_concurrency)
            patches.activate(patches.ActiveRuntime(self.endpoint_url, self.runner, self.async_invoker))
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, name="emulator-server", daemon=True)
            self._thread.start()
            self._started_at = time.time()
            wait_until_healthy(self.endpoint_url, timeout=15)
        except BaseException:
            self._cleanup()
            raise
        LOG.info("emulator listening on %s (pid %d)", self.endpoint_url, os.getpid())
        return self

    def stop(self) -> None:
        """Stop serving, end running invocations and executions, release the port. Idempotent."""
        if self._server is None and self._thread is None:
            self._cleanup()
            return
        LOG.info("emulator on %s stopping", self.endpoint_url)
        self._cleanup()

    def _cleanup(self) -> None:
        server, thread = self._server, self._thread
        self._server = None
        self._thread = None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join(timeout=10)
        if self.async_invoker is not None:
            self.async_invoker.shutdown(timeout=10)
        if self.runner is not None:
            self.runner.kill_all(close=True)
        self._stop_executions()
        if server is not None:
            server.close_connections(timeout=5)
            server.server_close()
        patches.deactivate()
        if self._port is not None:
            self._restore_moto()
        self._teardown_logging()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    @staticmethod
    def _stop_executions() -> None:
        """Stop Step Functions executions still running (their worker threads end with them)."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        for _account, regions in list(stepfunctions_parser_backends.items()):
            for _region, backend in list(regions.items()):
                for execution in list(_iter_running_executions(backend)):
                    try:
                        backend.stop_execution(execution.exec_arn)
                    except Exception:  # best effort during shutdown, but never silent
                        LOG.warning("could not stop execution %s", execution.exec_arn, exc_info=True)

    # -------------------------------------------------------------- API
    def health(self) -> dict[str, Any]:
        from moto import __version__ as moto_version

        return {
            "status": "ok",
            "endpoint_url": self.endpoint_url,
            "port": self.port,
            "pid": os.getpid(),
            "moto_version": moto_version,
            "started_at": self._started_at,
            "log_file": str(self.log_path) if self.log_path else None,
        }

    def lambda_stats(self) -> dict[str, Any]:
        return {
            "invocations": self.runner.invocation_count if self.runner else 0,
            "running_processes": self.runner.running if self.runner else 0,
            "async_pending": self.async_invoker.pending if self.async_invoker else 0,
            "async_completed": list(self.async_invoker.completed) if self.async_invoker else [],
        }

    def wait_for_async_invocations(self, timeout: float = 60.0) -> bool:
        """Wait until no asynchronous invocation (Event invoke, S3 notification) is pending."""
        if self.async_invoker is None:
            return True
        return self.async_invoker.wait_idle(timeout)

    def trigger_rule(
        self,
        name: str,
        region: str = "us-east-1",
        event_bus: str = "default",
        event: dict[str, Any] | None = None,
        account_id: str = "123456789012",
    ) -> dict[str, Any]:
        """Send a Scheduled Event (or ``event``) to the targets of an EventBridge rule now."""
        from emulator import events

        return events.trigger_rule(
            name, account_id=account_id, region=region, event_bus=event_bus, event=event
        )

    def add_fault(
        self,
        target: str,
        match: str | None = None,
        status: int = faults_mod.DEFAULT_STATUS,
        error_code: str = faults_mod.DEFAULT_ERROR_CODE,
        message: str = faults_mod.DEFAULT_MESSAGE,
        times: int | None = None,
    ) -> str:
        """Add a fault rule (see :mod:`emulator.faults`); returns its id."""
        rule = faults_mod.FaultRule.from_dict(
            {
                "target": target,
                "match": match,
                "status": status,
                "error_code": error_code,
                "message": message,
                "times": times,
            }
        )
        self.faults.add(rule)
        LOG.info("fault rule added: %s", rule.to_dict())
        return rule.id

    def clear_faults(self) -> int:
        return self.faults.clear()

    def list_faults(self) -> list[dict[str, Any]]:
        return self.faults.list()


def _iter_running_executions(backend: Any) -> Iterator[Any]:
    for state_machine in list(getattr(backend, "state_machines", [])):
        for execution in list(getattr(state_machine, "executions", [])):
            if str(getattr(execution, "exec_status", "")).endswith("RUNNING"):
                yield execution
