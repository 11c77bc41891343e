"""Lambda execution environments: handler processes that serve many invocations, and their pool.

An :class:`ExecutionEnvironment` is one ``lambda_bootstrap`` process for one function version and
configuration: started (the init phase) when no idle environment of that configuration exists,
then reused for later invocations, as Lambda does. The :class:`EnvironmentPool` hands them out:

* an idle environment of the same configuration is reused (a warm start); otherwise a new one is
  started, up to ``max_environments`` live processes in all (an idle environment of another function
  is stopped to make room; beyond that the invocation waits while others finish, and starts one more
  only when none finished for ``slot_wait`` seconds, so that functions invoking functions
  synchronously cannot deadlock);
* a function with reserved concurrency never has more busy environments than that: one more
  invocation raises :class:`ThrottledError` (Lambda's ``TooManyRequestsException``);
* a code or configuration update retires the environments of the old configuration; a timed-out or
  crashed environment is discarded; idle ones are stopped after ``idle_timeout`` seconds;
* with ``warm=False`` every environment serves exactly one invocation (a process per invocation).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import select
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator.lambda_bootstrap import END_MARKER

LOG = logging.getLogger("emulator.lambda")
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
_EOF: dict[str, Any] = {"phase": "eof"}
LogLines = list[tuple[int, str]]


class ThrottledError(RuntimeError):
    """The function's reserved concurrency is in use (Lambda: HTTP 429 TooManyRequestsException)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class OutputCollector(threading.Thread):
    """Reads an environment's stdout+stderr and splits it per invocation at the end markers."""

    def __init__(self, stream: io.BufferedReader, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stream = stream
        self._cond = threading.Condition()
        self._pending: LogLines = []
        self._finished: dict[str, LogLines] = {}
        self._closed = False

    def run(self) -> None:
        last = 0
        for raw in iter(self._stream.readline, b""):
            last = max(last, now_ms())
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._cond:
                if text.startswith(END_MARKER):
                    self._finished[text[len(END_MARKER) :]] = self._pending
                    self._pending = []
                    self._cond.notify_all()
                else:
                    self._pending.append((last, text))
        self._stream.close()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take(self, request_id: str, timeout: float) -> LogLines:
        """The lines of one finished invocation (waiting for its end marker)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while request_id not in self._finished and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            lines = self._finished.pop(request_id, None)
            if lines is None:
                lines, self._pending = self._pending, []
            return lines

    def take_pending(self, grace: float = 0.2) -> LogLines:
        """Whatever was printed since the last invocation ended (after a timeout or a crash)."""
        time.sleep(grace)
        with self._cond:
            lines, self._pending = self._pending, []
            return lines


class ControlChannel:
    """JSON-line messages from the environment's control pipe, read with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self._messages: list[dict[str, Any]] = []

    def read(self, deadline: float) -> dict[str, Any] | None:
        """The next message; ``None`` at the deadline; :data:`_EOF` when the process closed it."""
        while not self._messages:
            if b"\n" in self._buffer:
                line, _, rest = bytes(self._buffer).partition(b"\n")
                self._buffer[:] = rest
                with contextlib.suppress(json.JSONDecodeError):
                    self._messages.append(json.loads(line))
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return _EOF
            self._buffer.extend(chunk)
        return self._messages.pop(0)


@dataclass
class InitOutcome:
    ok: bool
    init_ms: float | None = None
    error: dict[str, Any] | None = None


@dataclass
class RunOutcome:
    """One invocation in an environment: payload (JSON text), error flag, its output lines."""

    payload: str
    errored: bool
    lines: LogLines
    reusable: bool


def error_payload(request_id: str, error_type: str, message: str) -> str:
    return json.dumps(
        {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": []}
    )


@dataclass
class EnvironmentSpec:
    """What starts an environment: the interpreter, code directory and process environment."""

    key: str
    function_arn: str
    function_name: str
    version: str
    python: str
    code_dir: Path
    env: dict[str, str]
    log_stream: str


class ExecutionEnvironment:
    """One bootstrap process (see the module docstring)."""

    def __init__(self, spec: EnvironmentSpec) -> None:
        self.spec = spec
        self.id = uuid.uuid4().hex[:8]
        self.proc: subprocess.Popen[bytes] | None = None
        self.invocations = 0
        self.last_used = time.monotonic()
        self._requests: io.TextIOWrapper | None = None
        self._control: ControlChannel | None = None
        self._output: OutputCollector | None = None

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, init_timeout: float) -> InitOutcome:
        """Start the process and wait for the init phase (the handler import) to finish."""
        req_r, req_w = os.pipe()
        ctrl_r, ctrl_w = os.pipe()
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                # -P: no script directory on sys.path, -s: no user site-packages, -u: unbuffered
                [self.spec.python, "-P", "-s", "-u", str(BOOTSTRAP), str(req_r), str(ctrl_w)],
                cwd=self.spec.code_dir,
                env=self.spec.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(req_r, ctrl_w),
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (req_r, req_w, ctrl_r, ctrl_w):
                os.close(fd)
            return InitOutcome(False, error=_runtime_error("Runtime.Unknown", f"Cannot start runtime: {exc}"))
        os.close(req_r)
        os.close(ctrl_w)
        self._requests = io.TextIOWrapper(os.fdopen(req_w, "wb"), encoding="utf-8", line_buffering=True)
        self._control = ControlChannel(ctrl_r)
        assert self.proc.stdout is not None
        self._output = OutputCollector(self.proc.stdout, f"lambda-out-{self.spec.function_name}-{self.id}")
        self._output.start()
        return self._await_init(started, init_timeout)

    def _await_init(self, started: float, init_timeout: float) -> InitOutcome:
        assert self._control is not None
        message = self._control.read(started + init_timeout)
        init_ms = (time.monotonic() - started) * 1000
        if message is not None and message.get("phase") == "init_done":
            return InitOutcome(True, init_ms)
        self.kill()
        if message is None:
            return InitOutcome(
                False, init_ms, _runtime_error("Runtime.InitError", "INIT_REPORT Status: timeout")
            )
        if message.get("phase") == "init_error":
            return InitOutcome(False, init_ms, dict(message.get("error") or {}))
        return InitOutcome(False, init_ms, _runtime_error("Runtime.ExitError", "Runtime exited during init"))

    def init_lines(self) -> LogLines:
        return self._output.take_pending(grace=0.05) if self._output else []

    def run(self, request_id: str, event_text: str, invoked_arn: str, timeout: float) -> RunOutcome:
        """One invocation; the environment stays reusable unless it timed out or died."""
        assert self._requests is not None
        assert self._control is not None
        assert self._output is not None
        self.invocations += 1
        request = {
            "request_id": request_id,
            "event": event_text,
            "deadline_ms": now_ms() + int(timeout * 1000),
            "invoked_function_arn": invoked_arn,
        }
        try:
            self._requests.write(json.dumps(request) + "\n")
        except (BrokenPipeError, ValueError, OSError):
            return self._died(request_id)
        message = self._control.read(time.monotonic() + timeout)
        if message is None:
            self.kill()
            text = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            return RunOutcome(
                error_payload(request_id, "Sandbox.Timedout", text), True, self._output.take_pending(), False
            )
        if message.get("phase") != "result":
            return self._died(request_id)
        lines = self._output.take(request_id, timeout=5.0)
        if message.get("ok"):
            return RunOutcome(str(message.get("payload", "null")), False, lines, True)
        error = dict(message.get("error") or {})
        error.setdefault("requestId", request_id)
        return RunOutcome(json.dumps(error), True, lines, True)

    def _died(self, request_id: str) -> RunOutcome:
        assert self.proc is not None
        assert self._output is not None
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode or -signal.SIGKILL
        detail = f"signal: {signal.Signals(-code).name.lower()}" if code < 0 else f"exit status {code}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {detail}"
        lines = self._output.take_pending()
        self.kill()
        return RunOutcome(error_payload(request_id, "Runtime.ExitError", message), True, lines, False)

    def kill(self) -> None:
        """Stop the process group and release the pipes (idempotent)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if self._requests is not None:
            with contextlib.suppress(OSError, ValueError):
                self._requests.close()
            self._requests = None
        if self._control is not None:
            with contextlib.suppress(OSError):
                os.close(self._control.fd)
            self._control = None
        if self._output is not None:
            self._output.join(timeout=5)


def _runtime_error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}


@dataclass
class PoolSettings:
    max_environments: int
    slot_wait: float
    warm: bool
    idle_timeout: float
    # Environments of one function at once (a local resource limit, not Lambda's: beyond it an
    # invocation waits for one of them instead of paying another cold start on a few CPUs).
    max_per_function: int = 8


@dataclass
class Lease:
    """A busy slot for one invocation: an idle environment to reuse, or room to start one."""

    function_arn: str
    key: str
    environment: ExecutionEnvironment | None


@dataclass
class PoolStats:
    cold_starts: int = 0
    warm_starts: int = 0
    throttled: int = 0
    retired: int = 0
    reaped: int = 0
    busy: Counter[str] = field(default_factory=Counter)


class EnvironmentPool:
    """Hands out execution environments (see the module docstring)."""

    def __init__(self, settings: PoolSettings) -> None:
        self.settings = settings
        self._cond = threading.Condition()
        self._idle: dict[str, list[ExecutionEnvironment]] = {}
        self._all: set[ExecutionEnvironment] = set()
        self._live = 0
        self._current: dict[tuple[str, str], str] = {}
        self._closed = False
        self._last_release = time.monotonic()
        self.stats = PoolStats()
        self._reaper = threading.Thread(target=self._reap_loop, name="lambda-env-reaper", daemon=True)
        self._reaper.start()

    # --- acquiring and releasing
    def acquire(self, spec: EnvironmentSpec, reserved: int | None, wait_for_capacity: bool = False) -> Lease:
        """A lease for one invocation of ``spec``'s function.

        Raises :class:`ThrottledError` when ``reserved`` environments of the function are busy: at
        once, or with ``wait_for_capacity`` after waiting up to ``slot_wait`` seconds.
        """
        to_stop: list[ExecutionEnvironment] = []
        try:
            with self._cond:
                to_stop += self._note_current(spec)
                return self._acquire_locked(spec, reserved, wait_for_capacity, to_stop)
        finally:
            for environment in to_stop:
                environment.kill()

    def _acquire_locked(
        self, spec: EnvironmentSpec, reserved: int | None, wait: bool, to_stop: list[ExecutionEnvironment]
    ) -> Lease:
        deadline = time.monotonic() + self.settings.slot_wait
        while True:
            if self._closed:
                raise RuntimeError("the emulator is stopping")
            if reserved is not None and self.stats.busy[spec.function_arn] >= reserved:
                if wait and time.monotonic() < deadline:
                    self._cond.wait(max(deadline - time.monotonic(), 0.01))
                    continue
                self.stats.throttled += 1
                raise ThrottledError(f"reserved concurrency {reserved} of {spec.function_name} is in use")
            idle = self._idle.get(spec.key)
            if idle:
                self.stats.busy[spec.function_arn] += 1
                self.stats.warm_starts += 1
                return Lease(spec.function_arn, spec.key, idle.pop())
            if self.stats.busy[spec.function_arn] >= self.settings.max_per_function and not self._stalled():
                self._cond.wait(1.0)  # one of this function's environments will be free soon
                continue
            if self._live < self.settings.max_environments:
                return self._new_lease(spec)
            victim = self._least_recently_used_idle()
            if victim is not None:
                to_stop.append(victim)
                continue
            if self._stalled():
                LOG.warning(
                    "%s: every environment busy and none finished for %.0fs; starting one more",
                    spec.function_name,
                    self.settings.slot_wait,
                )
                return self._new_lease(spec)
            self._cond.wait(1.0)

    def _stalled(self) -> bool:
        """No environment was released for ``slot_wait`` seconds while all are busy.

        Waiting is right while invocations finish (a burst); a stall means busy invocations wait on
        each other (a function invoking another synchronously), so one more environment breaks it.
        """
        return time.monotonic() - self._last_release >= self.settings.slot_wait

    def _new_lease(self, spec: EnvironmentSpec) -> Lease:
        self._live += 1
        self.stats.busy[spec.function_arn] += 1
        self.stats.cold_starts += 1
        return Lease(spec.function_arn, spec.key, None)

    def _note_current(self, spec: EnvironmentSpec) -> list[ExecutionEnvironment]:
        """Record the function's current configuration; retire idle environments of older ones."""
        slot = (spec.function_arn, spec.version)
        if self._current.get(slot) == spec.key:
            return []
        previous = self._current.get(slot)
        self._current[slot] = spec.key
        stale = self._idle.pop(previous, []) if previous else []
        for environment in stale:
            self._forget(environment)
        self.stats.retired += len(stale)
        return stale

    def _least_recently_used_idle(self) -> ExecutionEnvironment | None:
        candidates = [env for envs in self._idle.values() for env in envs]
        if not candidates:
            return None
        victim = min(candidates, key=lambda env: env.last_used)
        self._idle[victim.key].remove(victim)
        self._forget(victim)
        return victim

    def _forget(self, environment: ExecutionEnvironment) -> None:
        self._all.discard(environment)
        self._live -= 1
        self._cond.notify_all()

    def started(self, environment: ExecutionEnvironment) -> None:
        with self._cond:
            self._all.add(environment)
            closed = self._closed
        if closed:
            environment.kill()

    def release(self, lease: Lease, environment: ExecutionEnvironment, reusable: bool) -> None:
        """End a lease: the environment goes back to the idle set, or is stopped and forgotten."""
        with self._cond:
            self._last_release = time.monotonic()
            self.stats.busy[lease.function_arn] -= 1
            current = self._current.get((lease.function_arn, environment.spec.version))
            keep = reusable and self.settings.warm and not self._closed and current == lease.key
            if keep:
                environment.last_used = time.monotonic()
                self._idle.setdefault(lease.key, []).append(environment)
            elif environment in self._all:
                self._forget(environment)
            else:
                self._live -= 1  # its init failed, or it never started: it was never registered
            self._cond.notify_all()
        if not keep:
            environment.kill()

    # --- housekeeping
    def _reap_loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(1.0)
                expired = self._expired_idle()
            for environment in expired:
                environment.kill()

    def _expired_idle(self) -> list[ExecutionEnvironment]:
        cutoff = time.monotonic() - self.settings.idle_timeout
        expired = [env for envs in self._idle.values() for env in envs if env.last_used < cutoff]
        for environment in expired:
            self._idle[environment.key].remove(environment)
            self._forget(environment)
        self.stats.reaped += len(expired)
        return expired

    def describe(self) -> dict[str, Any]:
        with self._cond:
            idle = sum(len(envs) for envs in self._idle.values())
            return {
                "environments": self._live,
                "idle_environments": idle,
                "busy_environments": sum(self.stats.busy.values()),
                "cold_starts": self.stats.cold_starts,
                "warm_starts": self.stats.warm_starts,
                "throttled": self.stats.throttled,
                "retired": self.stats.retired,
                "reaped": self.stats.reaped,
                "warm": self.settings.warm,
                "idle_timeout": self.settings.idle_timeout,
                "max_per_function": self.settings.max_per_function,
                "pids": sorted(env.pid for env in self._all if env.pid),
            }

    def close(self) -> None:
        """Stop every environment, idle or busy; refuse new leases."""
        with self._cond:
            self._closed = True
            environments = list(self._all)
            self._idle.clear()
            self._cond.notify_all()
        for environment in environments:
            environment.kill()
        self._reaper.join(timeout=5)

    def stop_idle(self, predicate: Callable[[ExecutionEnvironment], bool] = lambda _env: True) -> int:
        """Stop idle environments (all, or those matching ``predicate``); returns how many."""
        with self._cond:
            chosen = [env for envs in self._idle.values() for env in envs if predicate(env)]
            for environment in chosen:
                self._idle[environment.key].remove(environment)
                self._forget(environment)
        for environment in chosen:
            environment.kill()
        return len(chosen)
