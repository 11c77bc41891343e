"""Asynchronous Lambda invocations with Lambda's retry, throttling and destination behaviour.

``InvocationType=Event``, S3 notifications and EventBridge targets queue an event here and return at
once. A fixed pool of workers (``max_concurrency``) runs queued events: up to
``1 + MaximumRetryAttempts`` attempts (default 2 retries) separated by ``retry_delays`` (AWS waits
about 1 and 2 minutes; the emulator's delays are short and configurable), never beyond
``MaximumEventAgeInSeconds``. A throttled attempt (reserved concurrency in use) is not an attempt:
the event goes back to the queue, as Lambda keeps throttled events for up to six hours. Then an
invocation record goes to the ``OnFailure`` destination (``OnSuccess`` on success) of the function's
event invoke config, and a failed event to its dead-letter queue.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.lambda_environments import ThrottledError

if TYPE_CHECKING:
    from moto.awslambda.models import LambdaFunction

    from emulator.lambda_runtime import InvocationResult, LocalLambdaRunner

LOG = logging.getLogger("emulator.lambda")

# (target ARN, message body, region, message attributes) -> None
DestinationSender = Callable[[str, str, str, dict[str, str]], None]


def _event_invoke_config(fn: LambdaFunction) -> dict[str, Any]:
    configs = getattr(fn, "event_invoke_config", None) or []
    return dict(configs[-1].config) if configs else {}


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _maybe_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


@dataclass(order=True)
class _Job:
    ready_at: float
    order: int
    fn: Any = field(compare=False)
    event: str = field(compare=False)
    request_id: str = field(compare=False)
    source: str = field(compare=False)
    submitted: float = field(compare=False, default_factory=time.monotonic)
    attempts: int = field(compare=False, default=0)
    throttles: int = field(compare=False, default=0)


def invocation_record(
    fn: LambdaFunction, job: _Job, result: InvocationResult | None, condition: str
) -> dict[str, Any]:
    """The record Lambda sends to a destination (``responsePayload`` is the function's answer)."""
    arn = f"{fn.function_arn}:{fn.version}" if str(fn.version) == "$LATEST" else fn.function_arn
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _iso_now(),
        "requestContext": {
            "requestId": job.request_id,
            "functionArn": arn,
            "condition": condition,
            "approximateInvokeCount": job.attempts,
        },
        "requestPayload": _maybe_json(job.event),
        "responseContext": {"statusCode": 200, "executedVersion": str(fn.version)},
        "responsePayload": _maybe_json(result.payload) if result else None,
    }
    if result is None or result.errored:
        record["responseContext"]["functionError"] = "Unhandled"
    return record


class AsyncInvoker:
    """The queue and workers of asynchronous invocations (see the module docstring)."""

    def __init__(
        self,
        runner: LocalLambdaRunner,
        send: DestinationSender,
        max_concurrency: int = 16,
        throttle_delay: float = 0.2,
    ) -> None:
        self.runner = runner
        self._send = send
        self.throttle_delay = throttle_delay
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._running = 0
        self._order = itertools.count()
        self._stopping = False
        self.completed: deque[dict[str, Any]] = deque(maxlen=5000)  # the most recent outcomes
        self._workers = [
            threading.Thread(target=self._work, name=f"lambda-async-{i}", daemon=True)
            for i in range(max(1, max_concurrency))
        ]
        for worker in self._workers:
            worker.start()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._running

    def submit(self, fn: LambdaFunction, event: str, source: str = "lambda:Invoke") -> str:
        request_id = str(uuid.uuid4())
        job = _Job(time.monotonic(), next(self._order), fn, event, request_id, source)
        with self._cond:
            if self._stopping:
                raise RuntimeError("the emulator is stopping")
            heapq.heappush(self._queue, job)
            self._cond.notify_all()  # a worker, not only a wait_idle() caller, must wake
        return request_id

    def _requeue(self, job: _Job, delay: float) -> None:
        job.ready_at, job.order = time.monotonic() + delay, next(self._order)
        with self._cond:
            heapq.heappush(self._queue, job)
            self._cond.notify_all()  # a worker, not only a wait_idle() caller, must wake

    def _next_job(self) -> _Job | None:
        with self._cond:
            while not self._stopping:
                if self._queue and self._queue[0].ready_at <= time.monotonic():
                    self._running += 1
                    return heapq.heappop(self._queue)
                timeout = self._queue[0].ready_at - time.monotonic() if self._queue else None
                self._cond.wait(timeout)
            return None

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            try:
                self._attempt(job)
            except Exception:  # a bug here must not kill the worker silently: log it with its traceback
                LOG.exception("async invocation %s of %s failed", job.request_id, job.fn.function_name)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        """One attempt of a job; it is queued again, or finished (destinations)."""
        config = _event_invoke_config(job.fn)
        max_age = float(config.get("MaximumEventAgeInSeconds", 21600))
        age = time.monotonic() - job.submitted
        try:
            result = self.runner.invoke(job.fn, job.event, throttle=True)
        except ThrottledError:
            job.throttles += 1
            if age + self.throttle_delay > max_age:
                self._finish(job, None, "EventAgeExceeded")
            else:
                self._requeue(job, self.throttle_delay)
            return
        job.attempts += 1
        if not result.errored:
            self._finish(job, result, "Success")
            return
        max_retries = int(config.get("MaximumRetryAttempts", 2))
        delays = self.runner.settings.async_retry_delays or (0.0,)
        delay = delays[min(job.attempts - 1, len(delays) - 1)]
        if job.attempts > max_retries:
            self._finish(job, result, "RetriesExhausted")
        elif age + delay > max_age:
            self._finish(job, result, "EventAgeExceeded")
        else:
            LOG.info(
                "async %s of %s failed (%s), retry %d/%d in %.1fs",
                job.request_id,
                job.fn.function_name,
                result.error_type,
                job.attempts,
                max_retries,
                delay,
            )
            self._requeue(job, delay)

    def _finish(self, job: _Job, result: InvocationResult | None, condition: str) -> None:
        fn = job.fn
        failed = condition != "Success"
        self.completed.append(
            {
                "requestId": job.request_id,
                "function": fn.function_name,
                "source": job.source,
                "attempts": job.attempts,
                "throttles": job.throttles,
                "errored": failed,
                "condition": condition,
            }
        )
        destinations = _event_invoke_config(fn).get("DestinationConfig") or {}
        target = (destinations.get("OnFailure" if failed else "OnSuccess") or {}).get("Destination")
        if target:
            LOG.info("async %s of %s: %s record to %s", job.request_id, fn.function_name, condition, target)
            self._send(target, json.dumps(invocation_record(fn, job, result, condition)), fn.region, {})
        dead_letter = (getattr(fn, "_emulator_dead_letter", None) or {}).get("TargetArn")
        if failed and dead_letter:
            self._send_to_dead_letter(job, result, dead_letter)
        if failed and not target and not dead_letter:
            LOG.warning(
                "async %s of %s dropped after %d attempts (%s, no OnFailure destination)",
                job.request_id,
                fn.function_name,
                job.attempts,
                condition,
            )

    def _send_to_dead_letter(self, job: _Job, result: InvocationResult | None, dead_letter: str) -> None:
        error = _maybe_json(result.payload) if result else {"errorMessage": "throttled"}
        message = error.get("errorMessage", "") if isinstance(error, dict) else str(error)
        attributes = {
            "RequestID": job.request_id,
            "ErrorCode": "200",
            "ErrorMessage": str(message)[:1024] or "Unhandled",
        }
        LOG.info(
            "async %s of %s: sending the event to the DLQ %s",
            job.request_id,
            job.fn.function_name,
            dead_letter,
        )
        self._send(dead_letter, job.event, job.fn.region, attributes)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.5))
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._queue.clear()
            self._cond.notify_all()
        self.runner.close()
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(deadline - time.monotonic(), 0.1))
