"""Local Lambda runtime: runs the uploaded ZIP of a moto Lambda function in local processes.

moto 5.2.5 runs Lambda code only in Docker. :class:`LocalLambdaRunner` runs it locally instead:

* the function's code bytes held by moto (the uploaded ZIP, not any source folder) are unzipped once
  per content hash into a cache directory (layers likewise, added after the code on ``sys.path``);
* the handler runs in execution environments (:mod:`emulator.lambda_environments`): processes of
  ``sys.executable`` running :mod:`emulator.lambda_bootstrap` with the function's environment
  variables plus Lambda's reserved ones, ``AWS_ENDPOINT_URL`` pointing back at the emulator and dummy
  credentials; an environment is reused for later invocations of the same configuration (warm
  starts) unless ``warm`` is off (a process per invocation);
* the function timeout is enforced (the process group is killed; ``Sandbox.Timedout``);
* each environment writes to its own log stream of ``/aws/lambda/<name>`` with START/END/REPORT
  lines (``Init Duration`` on a cold start), like Lambda; with ``LoggingConfig.LogFormat`` JSON
  (:class:`LogSettings`) the runtime logs JSON records, Lambda's JSON platform events replace those
  lines (filtered by ``SystemLogLevel``) and application lines below ``ApplicationLogLevel`` are
  dropped;
* errors come back in Lambda's shape (``errorMessage``/``errorType``/``stackTrace``), so Step
  Functions ``Retry``/``Catch`` match the exception class.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulator.lambda_environments import (
    BOOTSTRAP,
    EnvironmentPool,
    EnvironmentSpec,
    ExecutionEnvironment,
    LogLines,
    PoolSettings,
    RunOutcome,
    ThrottledError,
    error_payload,
    now_ms,
)

if TYPE_CHECKING:
    from moto.awslambda.models import LambdaFunction

__all__ = ["InvocationResult", "LocalLambdaRunner", "RuntimeSettings", "ThrottledError"]

LOG = logging.getLogger("emulator.lambda")

DUMMY_ACCESS_KEY = "AKIAEMULATORLAMBDA00"
DUMMY_SECRET_KEY = "emulator-lambda-secret-key"  # noqa: S105 - a fixed dummy, never a real secret
DUMMY_SESSION_TOKEN = "emulator-lambda-session-token"  # noqa: S105 - a fixed dummy
# Environment variables passed through from the emulator's own environment to every function.
_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "SYSTEMROOT", "TMPDIR")
_MAX_LOG_RESULT_BYTES = 4096
# Lambda's log levels (ApplicationLogLevel, SystemLogLevel, a JSON line's "level") and Python's names.
_LEVELS = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "WARN": 30,
    "WARNING": 30,
    "ERROR": 40,
    "FATAL": 50,
    "CRITICAL": 50,
}
_INFO = _LEVELS["INFO"]


@dataclass
class RuntimeSettings:
    """Everything the runner needs to know about the emulator it belongs to."""

    endpoint_url: str
    cache_dir: Path
    python: str = sys.executable
    # Lambda allows 10 s of init; locally a burst of cold starts shares few CPUs, so allow more.
    init_timeout: float = 30.0
    # Live handler processes (idle and busy) at once; more invocations wait for one.
    max_processes: int = field(default_factory=lambda: max(32, 16 * (os.cpu_count() or 2)))
    slot_wait: float = 60.0
    # Environments of one function at once; more invocations of it wait for one (2 CPUs do not
    # gain from 40 concurrent cold starts of the same function).
    max_per_function: int = 8
    # Reuse execution environments (Lambda's warm starts); False: one process per invocation.
    warm: bool = True
    idle_timeout: float = 120.0
    async_retry_delays: tuple[float, ...] = (1.0, 2.0)
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class InvocationResult:
    """The outcome of one invocation, in the form moto's ``_invoke_lambda`` returns."""

    request_id: str
    payload: str
    errored: bool
    logs: str
    duration_ms: float
    cold: bool = True

    @property
    def error_type(self) -> str | None:
        if not self.errored:
            return None
        try:
            body = json.loads(self.payload)
        except json.JSONDecodeError:
            return None
        return body.get("errorType") if isinstance(body, dict) else None

    def log_result_header(self) -> str:
        """``X-Amz-Log-Result``: the base64 of the last 4 KB of the invocation's log."""
        tail = self.logs.encode("utf-8")[-_MAX_LOG_RESULT_BYTES:]
        return base64.b64encode(tail).decode("ascii")


def log_group_name(fn: LambdaFunction) -> str:
    """The function's log group: ``LoggingConfig.LogGroup`` if set, else ``/aws/lambda/<name>``."""
    custom = (getattr(fn, "_emulator_logging", None) or {}).get("LogGroup")
    return str(custom or f"/aws/lambda/{fn.function_name}")


def line_level(text: str) -> int:
    """The level Lambda gives an application log line under JSON: a JSON object's ``level`` (or
    ``log_level``) field; INFO for anything else (plain text, no or an unknown level)."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return _INFO
    try:
        record = json.loads(stripped)
    except ValueError:
        return _INFO
    level = record.get("level", record.get("log_level")) if isinstance(record, dict) else None
    return _LEVELS.get(level.upper(), _INFO) if isinstance(level, str) else _INFO


@dataclass(frozen=True)
class LogSettings:
    """What the runtime does with the function's LoggingConfig (Lambda's advanced logging controls).

    Text (the default): the runtime's text format, START/END/REPORT lines, nothing filtered. JSON:
    ``AWS_LAMBDA_LOG_FORMAT``/``AWS_LAMBDA_LOG_LEVEL`` in the function's environment (the runtime then
    logs JSON records at that level), application lines below ``ApplicationLogLevel`` dropped, and
    JSON platform events (``platform.start``, ``platform.report``: INFO) kept from ``SystemLogLevel``.
    """

    json_format: bool = False
    application_level: str = "INFO"
    system_level: str = "INFO"

    @classmethod
    def of(cls, fn: LambdaFunction) -> LogSettings:
        config = getattr(fn, "_emulator_logging", None) or {}
        if str(config.get("LogFormat") or "Text").upper() != "JSON":
            return cls()
        application = str(config.get("ApplicationLogLevel") or "INFO").upper()
        return cls(True, application, str(config.get("SystemLogLevel") or "INFO").upper())

    def environment(self) -> dict[str, str]:
        if not self.json_format:
            return {}
        return {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": self.application_level}

    def application(self, lines: LogLines) -> LogLines:
        """The function's output lines Lambda delivers: every one, or under JSON those at or above
        ``ApplicationLogLevel``, each exactly as written (never wrapped or re-encoded)."""
        if not self.json_format:
            return lines
        threshold = _LEVELS.get(self.application_level, _INFO)
        return [(ts, text) for ts, text in lines if line_level(text) >= threshold]

    def system(self, level: str) -> bool:
        """Whether a platform event of ``level`` is delivered."""
        return _LEVELS[level] >= _LEVELS.get(self.system_level, _INFO)


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Invocation:
    """One finished invocation as its platform log lines describe it."""

    request_id: str
    version: str
    memory: int
    started_ms: int
    ended_ms: int
    init_ms: float | None
    outcome: RunOutcome

    @property
    def duration(self) -> float:
        return max(float(self.ended_ms - self.started_ms), 0.0)

    def error_type(self) -> str | None:
        if not self.outcome.errored:
            return None
        with contextlib.suppress(ValueError, AttributeError):
            return str(json.loads(self.outcome.payload).get("errorType") or "Runtime.Unknown")
        return "Runtime.Unknown"

    def text_lines(self, timeout_line: str | None) -> LogLines:
        """START, the output, END and REPORT, in Lambda's text format."""
        duration = self.duration
        report = (
            f"REPORT RequestId: {self.request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {self.memory} MB\t"
            f"Max Memory Used: {self.memory} MB"
        )
        if self.init_ms is not None:
            report += f"\tInit Duration: {self.init_ms:.2f} ms"
        if timeout_line is not None:
            report += "\tStatus: timeout"
        start = (self.started_ms, f"START RequestId: {self.request_id} Version: {self.version}")
        lines: LogLines = [start, *self.outcome.lines]
        if timeout_line is not None:
            lines.append((self.ended_ms, timeout_line))
        end = f"END RequestId: {self.request_id}"
        return [*lines, (self.ended_ms, end), (self.ended_ms, report)]

    def json_lines(self, settings: LogSettings, timed_out: bool) -> LogLines:
        """``platform.start``, the delivered output and ``platform.report``, as Lambda's JSON events."""
        metrics: dict[str, Any] = {
            "durationMs": round(self.duration, 2),
            "billedDurationMs": int(self.duration) + 1,
            "memorySizeMB": self.memory,
            "maxMemoryUsedMB": self.memory,
        }
        if self.init_ms is not None:
            metrics["initDurationMs"] = round(self.init_ms, 2)
        report: dict[str, Any] = {"requestId": self.request_id, "metrics": metrics}
        error_type = self.error_type()
        report["status"] = "timeout" if timed_out else ("error" if error_type else "success")
        if error_type:
            report["errorType"] = error_type
        start = {"requestId": self.request_id, "version": self.version}
        lines = settings.application(self.outcome.lines)
        if settings.system("INFO"):
            lines = [(self.started_ms, _platform_event(self.started_ms, "platform.start", start)), *lines]
            lines.append((self.ended_ms, _platform_event(self.ended_ms, "platform.report", report)))
        return lines


def _platform_event(ms: int, kind: str, record: dict[str, Any]) -> str:
    return json.dumps({"time": _iso(ms), "type": kind, "record": record}, separators=(",", ":"))


class CodeCache:
    """Function and layer ZIPs unzipped once per content hash."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._digests: dict[int, tuple[bytes, str]] = {}  # id(code) -> (code, digest): hash once

    def _digest(self, code: bytes) -> str:
        known = self._digests.get(id(code))
        if known is not None and known[0] is code:
            return known[1]
        digest = hashlib.sha256(code).hexdigest()
        if len(self._digests) > 256:
            self._digests.clear()
        self._digests[id(code)] = (code, digest)
        return digest

    def extract(self, code: bytes, kind: str) -> Path:
        digest = self._digest(code)
        target = self.root / kind / digest
        if target.is_dir():
            return target
        with self._lock:
            if target.is_dir():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=target.parent))
            try:
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(staging)
                staging.rename(target)
            except (zipfile.BadZipFile, OSError):
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return target

    def code_dir(self, fn: LambdaFunction) -> Path:
        code: bytes = getattr(fn, "code_bytes", b"") or b""
        if not code:
            raise ValueError(f"function {fn.function_name} has no ZIP code (package type {fn.package_type})")
        return self.extract(code, "code")

    def layer_paths(self, fn: LambdaFunction) -> list[str]:
        if not fn.layers:
            return []
        from moto.awslambda.utils import get_backend

        backend = get_backend(fn.account_id, fn.region)
        paths: list[str] = []
        for layer in fn.layers:
            version = backend.layers_versions_by_arn(layer["Arn"])
            code = getattr(version, "code_bytes", b"") if version else b""
            if not code:
                continue
            root = self.extract(code, "layers")
            pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
            paths += [str(root / "python"), str(root / "python" / "lib" / pyver / "site-packages")]
        return paths


def _function_environment(fn: LambdaFunction) -> dict[str, str]:
    return {str(k): str(v) for k, v in (fn.environment_vars or {}).items()}


def configuration_key(fn: LambdaFunction, code_dir: Path, extra_paths: list[str]) -> str:
    """Identifies one function version and configuration: a change means new environments."""
    basis = {
        "arn": fn.function_arn,
        "version": str(fn.version),
        "code": code_dir.name,
        "layers": extra_paths,
        "handler": fn.handler,
        "runtime": fn.run_time,
        "env": _function_environment(fn),
        "timeout": fn.timeout,
        "memory": fn.memory_size,
        "log_group": log_group_name(fn),
        "logging": asdict(LogSettings.of(fn)),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reserved_concurrency(fn: LambdaFunction) -> int | None:
    value = getattr(fn, "reserved_concurrency", None)
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


class LocalLambdaRunner:
    """Runs moto Lambda functions in local execution environments (see the module docstring)."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.code = CodeCache(settings.cache_dir)
        self._logs_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self.invocation_count = 0
        self.pool = EnvironmentPool(
            PoolSettings(
                settings.max_processes,
                settings.slot_wait,
                settings.warm,
                settings.idle_timeout,
                settings.max_per_function,
            )
        )

    # ------------------------------------------------------------------ environments
    def _process_environment(
        self, fn: LambdaFunction, code_dir: Path, extra: list[str], stream: str
    ) -> dict[str, str]:
        env = {key: os.environ[key] for key in _PASSTHROUGH_ENV if key in os.environ}
        env.update({"HOME": "/tmp", "TZ": ":UTC", "PYTHONUNBUFFERED": "1"})  # noqa: S108
        env.update(_function_environment(fn))
        env.update(self.settings.extra_env)
        env.update(LogSettings.of(fn).environment())
        env.update(
            {
                "_HANDLER": fn.handler or "",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python'}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
                "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(fn),
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": fn.region,
                "AWS_DEFAULT_REGION": fn.region,
                "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
                "AWS_SESSION_TOKEN": DUMMY_SESSION_TOKEN,
                "AWS_ENDPOINT_URL": self.settings.endpoint_url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "LAMBDA_TASK_ROOT": str(code_dir),
                "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
                "_EMULATOR_EXTRA_PATHS": os.pathsep.join(extra),
            }
        )
        return env

    def _spec(self, fn: LambdaFunction, code_dir: Path, extra: list[str]) -> EnvironmentSpec:
        stream = f"{dt.datetime.now(dt.UTC):%Y/%m/%d}/[{fn.version}]{uuid.uuid4().hex}"
        return EnvironmentSpec(
            key=configuration_key(fn, code_dir, extra),
            function_arn=fn.function_arn,
            function_name=fn.function_name,
            version=str(fn.version),
            python=self.settings.python,
            code_dir=code_dir,
            env=self._process_environment(fn, code_dir, extra, stream),
            log_stream=stream,
        )

    # ------------------------------------------------------------------ invoke
    def invoke(
        self, fn: LambdaFunction, event: str | bytes | None, throttle: bool = True
    ) -> InvocationResult:
        """Run one synchronous invocation of ``fn`` with the JSON ``event``.

        Raises :class:`ThrottledError` when the function's reserved concurrency is in use: at once
        with ``throttle`` (the Invoke API answers 429; the asynchronous invoker queues the event
        again), otherwise after waiting ``slot_wait`` seconds for a busy environment to finish.
        """
        with self._count_lock:
            self.invocation_count += 1
        request_id = str(uuid.uuid4())
        event_text = event.decode("utf-8") if isinstance(event, bytes) else (event or "{}")
        try:
            code_dir = self.code.code_dir(fn)
            extra = self.code.layer_paths(fn)
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            payload = error_payload(request_id, "Runtime.InvalidEntrypoint", f"Cannot unpack code: {exc}")
            return self._report(
                fn, f"unpack/{request_id}", request_id, RunOutcome(payload, True, [], False), now_ms(), None
            )
        spec = self._spec(fn, code_dir, extra)
        lease = self.pool.acquire(spec, _reserved_concurrency(fn), wait_for_capacity=not throttle)
        # Held here, not only inside _run: whatever happens, release() gets the environment back
        # (kept for reuse, or stopped) and no process is left behind.
        environment = lease.environment or ExecutionEnvironment(spec)
        outcome: RunOutcome | None = None
        try:
            outcome, init_ms, started_ms = self._run(
                environment, lease.environment is None, request_id, event_text, fn
            )
        finally:
            self.pool.release(lease, environment, reusable=bool(outcome and outcome.reusable))
        result = self._report(fn, environment.spec.log_stream, request_id, outcome, started_ms, init_ms)
        result.cold = lease.environment is None
        return result

    def _run(
        self,
        environment: ExecutionEnvironment,
        cold: bool,
        request_id: str,
        event_text: str,
        fn: LambdaFunction,
    ) -> tuple[RunOutcome, float | None, int]:
        """The invocation in ``environment``, started first when ``cold`` (its init phase)."""
        started_ms = now_ms()
        init_ms: float | None = None
        init_lines: LogLines = []
        if cold:
            init = environment.start(self.settings.init_timeout)
            init_ms = init.init_ms
            init_lines = environment.init_lines()
            if not init.ok:
                error = dict(init.error or {})
                error["requestId"] = request_id
                return RunOutcome(json.dumps(error), True, init_lines, False), init_ms, started_ms
            self.pool.started(environment)
            started_ms = now_ms()
        outcome = environment.run(request_id, event_text, fn.function_arn, float(fn.timeout or 3))
        outcome.lines[:0] = init_lines
        return outcome, init_ms, started_ms

    def _report(
        self,
        fn: LambdaFunction,
        stream: str,
        request_id: str,
        outcome: RunOutcome,
        started_ms: int,
        init_ms: float | None,
    ) -> InvocationResult:
        settings = LogSettings.of(fn)
        timed_out = outcome.errored and '"Sandbox.Timedout"' in outcome.payload
        timeout_line = None
        if timed_out:
            message = json.loads(outcome.payload)["errorMessage"]
            timeout_line = f"{_iso(now_ms())} {request_id} {message.split('Error: ', 1)[-1]}"
        ended_ms = max([now_ms(), *(ts for ts, _ in outcome.lines)])
        done = Invocation(request_id, str(fn.version), fn.memory_size, started_ms, ended_ms, init_ms, outcome)
        lines = (
            done.json_lines(settings, timed_out) if settings.json_format else done.text_lines(timeout_line)
        )
        self._write_logs(fn, stream, lines)
        LOG.info(
            "invoke %s request=%s errored=%s duration=%.0fms",
            fn.function_name,
            request_id,
            outcome.errored,
            done.duration,
        )
        return InvocationResult(
            request_id, outcome.payload, outcome.errored, "\n".join(t for _, t in lines), done.duration
        )

    def _write_logs(self, fn: LambdaFunction, log_stream: str, lines: LogLines) -> None:
        # Chronological, as PutLogEvents demands: output of the init phase (read before the
        # invocation started) lands before START / platform.start, where Lambda puts it.
        from moto.logs.exceptions import LogsClientError  # moto is loaded by then; kept lazy here

        events = [{"timestamp": ts, "message": msg} for ts, msg in sorted(lines, key=lambda line: line[0])]
        backend = fn.logs_backend
        group_name = log_group_name(fn)
        try:
            with self._logs_lock:
                backend.ensure_log_group(group_name)
                group = backend.groups[group_name]
                if log_stream not in group.streams:
                    backend.create_log_stream(group_name, log_stream)
                if events:
                    backend.put_log_events(group_name, log_stream, events)
        except (KeyError, ValueError, RuntimeError, LogsClientError) as exc:
            # Lost log lines must not fail the invocation (they do not on Lambda either).
            LOG.warning("could not write logs of %s to CloudWatch: %s", fn.function_name, exc)

    # ------------------------------------------------------------------ control
    def configure(
        self, warm: bool | None = None, idle_timeout: float | None = None, max_per_function: int | None = None
    ) -> None:
        if warm is not None:
            self.settings.warm = self.pool.settings.warm = bool(warm)
            if not warm:
                self.pool.stop_idle()
        if idle_timeout is not None:
            self.settings.idle_timeout = self.pool.settings.idle_timeout = float(idle_timeout)
        if max_per_function is not None:  # waiting invocations look again within a second
            self.settings.max_per_function = self.pool.settings.max_per_function = int(max_per_function)

    def stats(self) -> dict[str, Any]:
        return {"invocations": self.invocation_count, **self.pool.describe()}

    def close(self) -> None:
        """Stop every environment and refuse new invocations (shutdown)."""
        self.pool.close()
