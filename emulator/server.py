"""The embedded AWS emulator: moto's server app, in-process and threaded, plus the emulator's patches.

``Emulator(port=0).start()`` binds ``127.0.0.1`` (port 0 picks a free port; :attr:`Emulator.port` is the
real one), sets ``MOTO_PORT`` to it, installs the patches of :mod:`emulator.registry` (moto's Step
Functions execution and full Lambda backend among them; removed again by :meth:`Emulator.stop`) and
serves moto's ``DomainDispatcherApplication`` behind :class:`emulator.app.EmulatorApp` (admin API, fault injection,
request log). The pieces: :mod:`emulator.http_server` (the HTTP server), :mod:`emulator.admin` (the
admin API), :mod:`emulator.lambda_runtime` / :mod:`emulator.lambda_async` (Lambda) and
:mod:`emulator.destinations` (asynchronous destinations).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from emulator import context, registry
from emulator import faults as faults_mod
from emulator.admin_client import EmulatorUnreachableError, wait_until_healthy
from emulator.app import EmulatorApp
from emulator.cloudwatch_alarms import DEFAULT_INTERVAL as DEFAULT_ALARM_INTERVAL
from emulator.cloudwatch_alarms import AlarmEvaluator
from emulator.destinations import send_to_destination
from emulator.http_server import Server, request_handler_class
from emulator.lambda_async import AsyncInvoker
from emulator.lambda_runtime import LocalLambdaRunner, RuntimeSettings
from emulator.sqs_event_sources import EventSources
from emulator.sqs_move_tasks import MoveTasks

LOG = logging.getLogger("emulator")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class EmulatorError(RuntimeError):
    """The emulator could not start, or did not become healthy."""


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
        async_concurrency: int = 8,
        max_lambda_processes: int | None = None,
        reset_state: bool = True,
        lambda_warm: bool = True,
        lambda_idle_timeout: float = 120.0,
        alarm_interval: float = DEFAULT_ALARM_INTERVAL,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.log_path = Path(log_path) if log_path else None
        self.state_dir = Path(state_dir) if state_dir else None
        self.async_retry_delays = async_retry_delays
        self.async_concurrency = async_concurrency
        self.max_lambda_processes = max_lambda_processes
        self.reset_state = reset_state
        self.lambda_warm = lambda_warm
        self.lambda_idle_timeout = lambda_idle_timeout
        # seconds between evaluations of the SQS alarms (emulator.cloudwatch_alarms); 0: on demand only
        self.alarm_evaluator = AlarmEvaluator(alarm_interval)
        self.faults = faults_mod.FaultRegistry()
        self.s3_settings = context.S3Settings()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._log_handlers: list[tuple[logging.Logger, logging.Handler]] = []
        self._saved_env: dict[str, str | None] = {}
        self._temp_dir: Path | None = None
        self._started_at: float | None = None
        self.runner: LocalLambdaRunner | None = None
        self.async_invoker: AsyncInvoker | None = None
        self.event_sources: EventSources | None = None
        self.move_tasks: MoveTasks | None = None

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
        from moto.moto_api._internal.models import moto_api_backend

        if self.reset_state:
            moto_api_backend.reset()
        # moto's user configuration (Step Functions execution, the full Lambda backend) is an entry
        # of the patch registry (emulator.moto_config): installed and put back with the patches.
        self._saved_env = {"MOTO_PORT": os.environ.get("MOTO_PORT")}
        # moto's Step Functions integrations read MOTO_PORT on every call (settings.moto_server_port())
        os.environ["MOTO_PORT"] = str(self.port)

    def _restore_moto(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _bind(self) -> Server:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        moto_app = DomainDispatcherApplication(create_backend_app)
        try:
            return Server(
                self.host, self.requested_port, EmulatorApp(self, moto_app), request_handler_class()
            )
        except OSError as exc:
            raise EmulatorError(
                f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}"
                " (is another emulator or LocalStack running?)"
            ) from exc

    def _start_lambda(self) -> None:
        settings = RuntimeSettings(
            endpoint_url=self.endpoint_url,
            cache_dir=self._cache_dir(),
            async_retry_delays=self.async_retry_delays,
            warm=self.lambda_warm,
            idle_timeout=self.lambda_idle_timeout,
        )
        if self.max_lambda_processes:
            settings.max_processes = self.max_lambda_processes
        self.runner = LocalLambdaRunner(settings)
        self.async_invoker = AsyncInvoker(self.runner, send_to_destination, self.async_concurrency)
        self.event_sources = EventSources(self.runner)
        self.move_tasks = MoveTasks()

    def start(self) -> Emulator:
        """Bind, configure moto, install the patches, serve, and wait until healthy."""
        if self._server is not None:
            raise EmulatorError("the emulator is already started")
        if context.is_active():
            raise EmulatorError("another Emulator is already running in this process")
        self._setup_logging()
        try:
            server = self._bind()
            self._port = int(server.server_address[1])
            self._configure_moto()
            self._start_lambda()
            assert self.runner is not None
            assert self.async_invoker is not None
            context.activate(
                context.ActiveRuntime(
                    self.endpoint_url,
                    self.runner,
                    self.async_invoker,
                    self.faults,
                    self.s3_settings,
                    self.event_sources,
                    self.move_tasks,
                )
            )
            registry.install()
            self.alarm_evaluator.start()
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, name="emulator-server", daemon=True)
            self._thread.start()
            self._started_at = time.time()
            wait_until_healthy(self.endpoint_url, timeout=15)
        except EmulatorUnreachableError as exc:
            self._cleanup()
            raise EmulatorError(str(exc)) from exc
        except BaseException:
            self._cleanup()
            raise
        LOG.info("emulator listening on %s (pid %d)", self.endpoint_url, os.getpid())
        return self

    def stop(self) -> None:
        """Stop serving, end running invocations and executions, release the port. Idempotent."""
        if self._server is not None or self._thread is not None:
            LOG.info("emulator on %s stopping", self.endpoint_url)
        self._cleanup()

    def _cleanup(self) -> None:
        self.alarm_evaluator.stop()  # first: it reads moto's state and publishes through SNS
        server, thread = self._server, self._thread
        self._server = None
        self._thread = None
        if server is not None and thread is not None:
            server.shutdown()
            thread.join(timeout=10)
        event_sources, self.event_sources = self.event_sources, None
        if event_sources is not None:
            event_sources.stop()  # no new batch; a running invocation ends when the runner closes
        if self.move_tasks is not None:
            self.move_tasks.stop()
            self.move_tasks = None
        if self.async_invoker is not None:
            self.async_invoker.shutdown(timeout=10)
            self.async_invoker = None
        if event_sources is not None:
            event_sources.join(timeout=10)
        if self.runner is not None:
            self.runner.close()
            self.runner = None
        if registry.installed():
            _stop_executions()
        if server is not None:
            server.close_connections(timeout=5)
            server.server_close()
        registry.uninstall()
        context.deactivate()
        if self._port is not None:
            self._restore_moto()
        self._teardown_logging()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

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
            "patches": len(registry.patches()),
            "lambda_warm": self.runner.settings.warm if self.runner else self.lambda_warm,
            "s3_notification_copies": self.s3_settings.notification_copies,
            "alarm_interval": self.alarm_evaluator.interval,
        }

    def lambda_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.runner.stats() if self.runner else {"invocations": 0}
        stats["running_processes"] = stats.get("busy_environments", 0)
        stats["async_pending"] = self.async_invoker.pending if self.async_invoker else 0
        stats["async_completed"] = list(self.async_invoker.completed) if self.async_invoker else []
        return stats

    def configure_lambda(
        self, warm: bool | None = None, idle_timeout: float | None = None, max_per_function: int | None = None
    ) -> None:
        """Switch warm environments on or off, change how long idle ones live, or how many
        environments one function may have at once (default 8; more invocations wait)."""
        if warm is not None and not isinstance(warm, bool):
            raise ValueError("'warm' must be true or false")
        if idle_timeout is not None and (
            isinstance(idle_timeout, bool) or not isinstance(idle_timeout, int | float) or idle_timeout <= 0
        ):
            raise ValueError("'idle_timeout' must be a positive number of seconds")
        if max_per_function is not None and (
            isinstance(max_per_function, bool)
            or not isinstance(max_per_function, int)
            or max_per_function < 1
        ):
            raise ValueError("'max_per_function' must be a positive integer")
        if self.runner is not None:
            self.runner.configure(warm=warm, idle_timeout=idle_timeout, max_per_function=max_per_function)

    def wait_for_async_invocations(self, timeout: float = 60.0) -> bool:
        """Wait until no asynchronous invocation (Event invoke, S3 notification) is pending."""
        if self.async_invoker is None:
            return True
        return self.async_invoker.wait_idle(timeout)

    def wait_for_event_sources(self, timeout: float = 60.0) -> bool:
        """Wait until every queue of an enabled SQS event source mapping is drained: no visible, in
        flight or delayed message, and no batch being processed."""
        if self.event_sources is None:
            return True
        return self.event_sources.wait_drained(timeout)

    def event_source_stats(self) -> dict[str, Any]:
        """Per SQS event source mapping: settings and counters (see emulator.sqs_event_sources)."""
        if self.event_sources is None:
            return {"mappings": [], "drained": True}
        return {"mappings": self.event_sources.stats(), "drained": self.event_sources.drained()}

    def wait_until_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no asynchronous invocation is pending and every mapped queue is drained, both
        at once (a drained queue's function may queue async invocations, and those may send)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(deadline - time.monotonic(), 0.0)
            if self.wait_for_async_invocations(remaining) and self.wait_for_event_sources(
                max(deadline - time.monotonic(), 0.0)
            ):
                async_idle = self.async_invoker is None or self.async_invoker.pending == 0
                if async_idle and (self.event_sources is None or self.event_sources.drained()):
                    return True
            if time.monotonic() >= deadline:
                return False

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
        probability: float | None = None,
        seed: int | None = None,
    ) -> str:
        """Add a fault rule (see :mod:`emulator.faults`); returns its id."""
        rule = faults_mod.FaultRule.from_dict(
            faults_mod.rule_fields(target, match, status, error_code, message, times, probability, seed)
        )
        self.faults.add(rule)
        LOG.info("fault rule added: %s", rule.to_dict())
        return rule.id

    def clear_faults(self) -> int:
        return self.faults.clear()

    def list_faults(self) -> list[dict[str, Any]]:
        return self.faults.list()

    def set_throttle(self, target: str, capacity: float, refill_per_second: float) -> dict[str, Any]:
        """Throttle ``target`` with a token bucket (see :mod:`emulator.faults`)."""
        throttle = faults_mod.Throttle.from_dict(
            {"target": target, "capacity": capacity, "refill_per_second": refill_per_second}
        )
        return self.faults.set_throttle(throttle).to_dict()

    def clear_throttles(self) -> int:
        return self.faults.clear_throttles()

    def evaluate_alarms(self) -> list[dict[str, Any]]:
        """Evaluate the SQS alarms now (as the background evaluator does every ``alarm_interval``
        seconds): the state changes made, each with the SNS topics notified."""
        if not self.running:
            raise EmulatorError("the emulator is not started")
        return [transition.to_dict() for transition in self.alarm_evaluator.evaluate()]

    def alarm_status(self) -> dict[str, Any]:
        """The evaluator's settings and each alarm's last evaluation (evaluated or why not)."""
        return self.alarm_evaluator.describe()

    def set_notification_copies(self, copies: int) -> None:
        """Deliver every S3 -> Lambda or SQS notification ``copies`` times (S3 is at-least-once)."""
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 10:
            raise ValueError("copies must be an integer from 1 to 10")
        self.s3_settings.notification_copies = copies


def _iter_running_executions(backend: Any) -> Iterator[Any]:
    for state_machine in list(getattr(backend, "state_machines", [])):
        for execution in list(getattr(state_machine, "executions", [])):
            if str(getattr(execution, "exec_status", "")).endswith("RUNNING"):
                yield execution


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
