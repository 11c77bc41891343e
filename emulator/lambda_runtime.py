"""Local Lambda runtime: runs the uploaded ZIP of a moto Lambda function in a child process.

moto 5.2.5 runs Lambda code only in Docker (``LambdaFunction._invoke_lambda``). This module replaces
that with a local runner:

* the function's code bytes held by moto (the uploaded ZIP, not any source folder) are unzipped once
  per content hash into a cache directory (layers likewise, added after the code on ``sys.path``);
* the handler runs in a separate ``sys.executable`` process (:mod:`emulator.lambda_bootstrap`) with the
  function's environment variables plus Lambda's reserved ones, ``AWS_ENDPOINT_URL`` pointing back at
  the emulator and dummy credentials;
* the function timeout is enforced (the process group is killed; ``Sandbox.Timedout``);
* stdout/stderr go to the CloudWatch log group ``/aws/lambda/<name>`` with START/END/REPORT lines;
* errors come back in Lambda's shape (``errorMessage``/``errorType``/``stackTrace``) with the
  ``Unhandled`` function-error flag, so Step Functions ``Retry``/``Catch`` match the exception class.

Asynchronous invocations (``InvocationType=Event`` and S3 notifications) go through
:class:`AsyncInvoker`, which retries a failed invocation per the function's event invoke config
(``MaximumRetryAttempts``, default 2; ``MaximumEventAgeInSeconds``) and then sends an invocation record
to the ``OnFailure`` (or, on success, ``OnSuccess``) destination.
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
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.awslambda.models import LambdaFunction

LOG = logging.getLogger("emulator.lambda")

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
DUMMY_ACCESS_KEY = "AKIAEMULATORLAMBDA00"
DUMMY_SECRET_KEY = "emulator-lambda-secret-key"  # noqa: S105 - a fixed dummy, never a real secret
DUMMY_SESSION_TOKEN = "emulator-lambda-session-token"  # noqa: S105 - a fixed dummy
# Environment variables passed through from the emulator's own environment to every function.
_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "SYSTEMROOT", "TMPDIR")
_MAX_LOG_RESULT_BYTES = 4096


@dataclass
class RuntimeSettings:
    """Everything the runner needs to know about the emulator it belongs to."""

    endpoint_url: str
    cache_dir: Path
    python: str = sys.executable
    # Lambda allows 10 s of init; locally a burst of cold starts shares few CPUs, so allow more.
    init_timeout: float = 30.0
    # Invocation processes running at once (more wait for a slot; the wait is not billed).
    max_processes: int = field(default_factory=lambda: max(4, 2 * (os.cpu_count() or 2)))
    slot_wait: float = 60.0
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


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error_payload(request_id: str, error_type: str, message: str) -> str:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": []}
    )


class _OutputCollector(threading.Thread):
    """Reads the child's merged stdout/stderr line by line, timestamping each line."""

    def __init__(self, stream: io.BufferedReader, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stream = stream
        self.lines: list[tuple[int, str]] = []

    def run(self) -> None:
        last = 0
        for raw in iter(self._stream.readline, b""):
            last = max(last, _now_ms())
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append((last, text))
        self._stream.close()


class LocalLambdaRunner:
    """Runs moto Lambda functions as local processes (see the module docstring)."""

    def __init__(self, settings: RuntimeSettings) -> None:
        self.settings = settings
        self._extract_lock = threading.Lock()
        self._logs_lock = threading.Lock()
        self._procs_lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._closed = False
        self._slots = threading.BoundedSemaphore(max(1, settings.max_processes))
        self.invocation_count = 0

    # ------------------------------------------------------------------ code cache
    def _extract(self, code: bytes, kind: str) -> Path:
        digest = hashlib.sha256(code).hexdigest()
        target = self.settings.cache_dir / kind / digest
        if target.is_dir():
            return target
        with self._extract_lock:
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
        return self._extract(code, "code")

    def _layer_paths(self, fn: LambdaFunction) -> list[str]:
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
            root = self._extract(code, "layers")
            pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
            paths += [str(root / "python"), str(root / "python" / "lib" / pyver / "site-packages")]
        return paths

    # ------------------------------------------------------------------ environment
    def _environment(
        self, fn: LambdaFunction, request_id: str, log_stream: str, timeout: float
    ) -> dict[str, str]:
        env = {key: os.environ[key] for key in _PASSTHROUGH_ENV if key in os.environ}
        env.update({"HOME": "/tmp", "TZ": ":UTC", "PYTHONUNBUFFERED": "1"})  # noqa: S108
        env.update({str(k): str(v) for k, v in (fn.environment_vars or {}).items()})
        env.update(self.settings.extra_env)
        version = str(fn.version)
        env.update(
            {
                "_HANDLER": fn.handler or "",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python'}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": version,
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
                "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(fn),
                "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": fn.region,
                "AWS_DEFAULT_REGION": fn.region,
                "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
                "AWS_SESSION_TOKEN": DUMMY_SESSION_TOKEN,
                "AWS_ENDPOINT_URL": self.settings.endpoint_url,
                "AWS_EC2_METADATA_DISABLED": "true",
                "LAMBDA_TASK_ROOT": "",  # filled in by invoke()
                "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
                "_EMULATOR_REQUEST_ID": request_id,
                "_EMULATOR_TIMEOUT": f"{timeout}",
                "_EMULATOR_INVOKED_FUNCTION_ARN": fn.function_arn,
            }
        )
        return env

    # ------------------------------------------------------------------ logs
    def _write_logs(self, fn: LambdaFunction, log_stream: str, lines: Iterable[tuple[int, str]]) -> None:
        events = [{"timestamp": ts, "message": msg} for ts, msg in lines]
        backend = fn.logs_backend
        group_name = log_group_name(fn)
        with self._logs_lock:
            backend.ensure_log_group(group_name)
            group = backend.groups[group_name]
            if log_stream not in group.streams:
                backend.create_log_stream(group_name, log_stream)
            if events:
                backend.put_log_events(group_name, log_stream, events)

    # ------------------------------------------------------------------ process control
    def _register(self, proc: subprocess.Popen[bytes]) -> None:
        with self._procs_lock:
            self._procs.add(proc)
            closed = self._closed
        if closed:
            self._kill(proc)

    def _unregister(self, proc: subprocess.Popen[bytes]) -> None:
        with self._procs_lock:
            self._procs.discard(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def kill_all(self, close: bool = False) -> None:
        """Kill every running invocation process; ``close`` also refuses new ones (shutdown)."""
        with self._procs_lock:
            self._closed = self._closed or close
            procs = list(self._procs)
        for proc in procs:
            self._kill(proc)

    @property
    def running(self) -> int:
        with self._procs_lock:
            return len(self._procs)

    @staticmethod
    def _read_messages(fd: int, deadline: float, buffer: bytearray) -> list[dict[str, Any]] | None:
        """Wait for control messages until ``deadline``; ``None`` on timeout, ``[]`` on EOF."""
        while True:
            if b"\n" in buffer:
                messages = []
                while b"\n" in buffer:
                    line, _, rest = bytes(buffer).partition(b"\n")
                    buffer[:] = rest
                    with contextlib.suppress(json.JSONDecodeError):
                        messages.append(json.loads(line))
                return messages
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return []
            buffer.extend(chunk)

    # ------------------------------------------------------------------ invoke
    def invoke(self, fn: LambdaFunction, event: str | bytes | None) -> InvocationResult:
        """Run one synchronous invocation of ``fn`` with the JSON ``event``.

        At most ``settings.max_processes`` invocations run at once (the others wait, and the wait is
        not counted against the function timeout); a wait longer than ``settings.slot_wait`` runs the
        invocation anyway, so that Lambdas invoking Lambdas synchronously cannot deadlock.
        """
        acquired = self._slots.acquire(timeout=self.settings.slot_wait)
        if not acquired:
            LOG.warning(
                "%s: no free runtime slot after %.0fs, running anyway",
                fn.function_name,
                self.settings.slot_wait,
            )
        try:
            return self._invoke(fn, event)
        finally:
            if acquired:
                self._slots.release()

    def _invoke(self, fn: LambdaFunction, event: str | bytes | None) -> InvocationResult:
        with self._procs_lock:
            self.invocation_count += 1
        request_id = str(uuid.uuid4())
        timeout = float(fn.timeout or 3)
        version = str(fn.version)
        today = dt.datetime.now(dt.UTC)
        log_stream = f"{today:%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"
        event_text = event.decode("utf-8") if isinstance(event, bytes) else (event or "{}")
        started_ms = _now_ms()
        log_lines: list[tuple[int, str]] = [(started_ms, f"START RequestId: {request_id} Version: {version}")]

        try:
            code_dir = self.code_dir(fn)
            extra_paths = self._layer_paths(fn)
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            payload = _error_payload(request_id, "Runtime.InvalidEntrypoint", f"Cannot unpack code: {exc}")
            log_lines.append((_now_ms(), f"{payload}"))
            return self._finish(fn, request_id, log_stream, log_lines, payload, True, started_ms, None)

        env = self._environment(fn, request_id, log_stream, timeout)
        env["LAMBDA_TASK_ROOT"] = str(code_dir)
        env["_EMULATOR_EXTRA_PATHS"] = os.pathsep.join(extra_paths)
        ctrl_r, ctrl_w = os.pipe()
        try:
            proc = subprocess.Popen(
                # -P: no script directory on sys.path, -s: no user site-packages, -u: unbuffered
                [self.settings.python, "-P", "-s", "-u", str(BOOTSTRAP), str(ctrl_w)],
                cwd=code_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(ctrl_w,),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(ctrl_r)
            os.close(ctrl_w)
            payload = _error_payload(request_id, "Runtime.Unknown", f"Cannot start runtime: {exc}")
            return self._finish(fn, request_id, log_stream, log_lines, payload, True, started_ms, None)
        os.close(ctrl_w)
        self._register(proc)
        assert proc.stdin is not None
        assert proc.stdout is not None
        collector = _OutputCollector(proc.stdout, f"lambda-out-{fn.function_name}")
        collector.start()
        try:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(event_text.encode("utf-8"))
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            payload, errored, init_ms = self._await_result(proc, ctrl_r, request_id, timeout)
        finally:
            os.close(ctrl_r)
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
            if proc.poll() is None:
                self._kill(proc)
            self._unregister(proc)
            collector.join(timeout=5)
        log_lines.extend(collector.lines)
        if errored and '"Sandbox.Timedout"' in payload:
            message = json.loads(payload)["errorMessage"]
            stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            log_lines.append((_now_ms(), f"{stamp} {request_id} {message.split('Error: ', 1)[-1]}"))
        return self._finish(fn, request_id, log_stream, log_lines, payload, errored, started_ms, init_ms)

    def _await_result(
        self, proc: subprocess.Popen[bytes], ctrl_r: int, request_id: str, timeout: float
    ) -> tuple[str, bool, float | None]:
        buffer = bytearray()
        start = time.monotonic()
        deadline = start + self.settings.init_timeout + timeout
        init_ms: float | None = None
        while True:
            messages = self._read_messages(ctrl_r, deadline, buffer)
            if messages is None:
                self._kill(proc)
                if init_ms is None:
                    return (
                        _error_payload(
                            request_id, "Runtime.InitError", "INIT_REPORT Status: timeout (init phase)"
                        ),
                        True,
                        None,
                    )
                message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
                return _error_payload(request_id, "Sandbox.Timedout", message), True, init_ms
            if not messages:  # EOF: the process exited without a result
                code = proc.wait(timeout=5)
                message = f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}"
                if code < 0:
                    message = (
                        f"RequestId: {request_id} Error: Runtime exited with error: "
                        f"signal: {signal.Signals(-code).name.lower()}"
                    )
                return _error_payload(request_id, "Runtime.ExitError", message), True, init_ms
            for message in messages:
                if message.get("phase") == "init_done":
                    init_ms = (time.monotonic() - start) * 1000
                    deadline = time.monotonic() + timeout
                elif message.get("phase") == "result":
                    if message.get("ok"):
                        return str(message.get("payload", "null")), False, init_ms
                    error = dict(message.get("error") or {})
                    error.setdefault("requestId", request_id)
                    return json.dumps(error), True, init_ms

    def _finish(
        self,
        fn: LambdaFunction,
        request_id: str,
        log_stream: str,
        log_lines: list[tuple[int, str]],
        payload: str,
        errored: bool,
        started_ms: int,
        init_ms: float | None,
    ) -> InvocationResult:
        ended_ms = max(_now_ms(), log_lines[-1][0])
        duration = max(float(ended_ms - started_ms) - (init_ms or 0.0), 0.0)
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {int(duration) + 1} ms\tMemory Size: {fn.memory_size} MB\t"
            f"Max Memory Used: {fn.memory_size} MB"
        )
        if init_ms is not None:
            report += f"\tInit Duration: {init_ms:.2f} ms"
        if errored and '"Sandbox.Timedout"' in payload:
            report += "\tStatus: timeout"
        log_lines.append((ended_ms, f"END RequestId: {request_id}"))
        log_lines.append((ended_ms, report))
        try:
            self._write_logs(fn, log_stream, log_lines)
        except (KeyError, ValueError, RuntimeError) as exc:
            LOG.warning("could not write logs of %s to CloudWatch: %s", fn.function_name, exc)
        logs = "\n".join(text for _, text in log_lines)
        LOG.info(
            "invoke %s request=%s errored=%s duration=%.0fms",
            fn.function_name,
            request_id,
            errored,
            duration,
        )
        return InvocationResult(request_id, payload, errored, logs, duration)


# ---------------------------------------------------------------------------- asynchronous invokes


def _event_invoke_config(fn: LambdaFunction) -> dict[str, Any]:
    configs = getattr(fn, "event_invoke_config", None) or []
    return dict(configs[-1].config) if configs else {}


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# (target ARN, message body, region, message attributes) -> None
DestinationSender = Callable[[str, str, str, dict[str, str]], None]


class AsyncInvoker:
    """Asynchronous invocations with Lambda's retry and destination behaviour.

    Every submitted event runs in its own thread: up to ``1 + MaximumRetryAttempts`` attempts
    (default 2 retries) separated by ``settings.async_retry_delays`` (AWS waits about 1 and 2 minutes;
    the emulator's delays are short and configurable), then an invocation record goes to the
    ``OnFailure`` destination (``OnSuccess`` on success) of the function's event invoke config.
    """

    def __init__(self, runner: LocalLambdaRunner, send: DestinationSender, max_concurrency: int = 16) -> None:
        self.runner = runner
        self._send = send
        # Bounds the processes a burst of events (e.g. many S3 uploads) starts at once; the others queue.
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._threads: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self.completed: deque[dict[str, Any]] = deque(maxlen=1000)  # the most recent outcomes

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._threads)

    def submit(self, fn: LambdaFunction, event: str, source: str = "lambda:Invoke") -> str:
        request_id = str(uuid.uuid4())
        thread = threading.Thread(
            target=self._run,
            args=(fn, event, request_id, source),
            name=f"lambda-async-{fn.function_name}-{request_id[:8]}",
            daemon=True,
        )
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError("the emulator is stopping")
            self._threads.add(thread)
        thread.start()
        return request_id

    def _run(self, fn: LambdaFunction, event: str, request_id: str, source: str) -> None:
        try:
            self._attempts(fn, event, request_id, source)
        except Exception:  # a bug here must not kill silently: log it with its traceback
            LOG.exception("async invocation %s of %s failed", request_id, fn.function_name)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _attempts(self, fn: LambdaFunction, event: str, request_id: str, source: str) -> None:
        config = _event_invoke_config(fn)
        max_retries = int(config.get("MaximumRetryAttempts", 2))
        max_age = float(config.get("MaximumEventAgeInSeconds", 21600))
        delays = self.runner.settings.async_retry_delays or (0.0,)
        submitted = time.monotonic()
        attempts = 0
        condition = "RetriesExhausted"
        result: InvocationResult | None = None
        while True:
            attempts += 1
            while not self._slots.acquire(timeout=0.2):
                if self._stopping.is_set():
                    return
            try:
                result = self.runner.invoke(fn, event)
            finally:
                self._slots.release()
            if not result.errored:
                break
            if attempts > max_retries:
                break
            delay = delays[min(attempts - 1, len(delays) - 1)]
            if time.monotonic() - submitted + delay > max_age:
                condition = "EventAgeExceeded"
                break
            LOG.info(
                "async %s of %s failed (%s), retry %d/%d in %.1fs",
                request_id,
                fn.function_name,
                result.error_type,
                attempts,
                max_retries,
                delay,
            )
            if self._stopping.wait(delay):
                return
        record = {
            "version": "1.0",
            "timestamp": _iso_now(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": f"{fn.function_arn}:{fn.version}"
                if str(fn.version) == "$LATEST"
                else fn.function_arn,
                "condition": "Success" if not result.errored else condition,
                "approximateInvokeCount": attempts,
            },
            "requestPayload": _maybe_json(event),
            "responseContext": {"statusCode": 200, "executedVersion": str(fn.version)},
            "responsePayload": _maybe_json(result.payload),
        }
        if result.errored:
            record["responseContext"]["functionError"] = "Unhandled"
        self.completed.append(
            {
                "requestId": request_id,
                "function": fn.function_name,
                "source": source,
                "attempts": attempts,
                "errored": result.errored,
            }
        )
        destinations = config.get("DestinationConfig") or {}
        key = "OnFailure" if result.errored else "OnSuccess"
        target = (destinations.get(key) or {}).get("Destination")
        dead_letter = (getattr(fn, "_emulator_dead_letter", None) or {}).get("TargetArn")
        if target:
            LOG.info("async %s of %s: sending %s record to %s", request_id, fn.function_name, key, target)
            self._send(target, json.dumps(record), fn.region, {})
        if result.errored and dead_letter:
            error = _maybe_json(result.payload)
            message = error.get("errorMessage", "") if isinstance(error, dict) else str(error)
            attributes = {
                "RequestID": request_id,
                "ErrorCode": "200",
                "ErrorMessage": str(message)[:1024] or "Unhandled",
            }
            LOG.info(
                "async %s of %s: sending the event to the DLQ %s", request_id, fn.function_name, dead_letter
            )
            self._send(dead_letter, event, fn.region, attributes)
        if result.errored and not target and not dead_letter:
            LOG.warning(
                "async %s of %s dropped after %d attempts (no OnFailure destination)",
                request_id,
                fn.function_name,
                attempts,
            )

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._threads:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.runner.kill_all(close=True)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text
