"""SQS message move tasks (dead-letter queue redrive), which moto 5.2.5 lacks.

``StartMessageMoveTask``, ``ListMessageMoveTasks`` and ``CancelMessageMoveTask`` arrive as any SQS
action does (JSON protocol, ``X-Amz-Target: AmazonSQS.<Action>``; moto looks the snake-case name up
on ``SQSResponse`` and answers ``NotImplementedError``/HTTP 500 without it), so the three are added
as methods there. As on AWS:

* the source must be a dead-letter queue (named by some queue's ``RedrivePolicy``), else
  ``InvalidParameterValue`` "Source queue must be configured as a Dead Letter Queue."; an unknown
  source or destination is ``ResourceNotFoundException``; one RUNNING task per source;
  ``MaxNumberOfMessagesPerSecond`` 1..500;
* without ``DestinationArn`` each message goes back to the queue it was first sent to (a message
  sent straight to the dead-letter queue: to the first queue whose ``RedrivePolicy`` names it);
* a moved message is a new message with the same body and message attributes (receive count 0),
  deleted from the source; the task moves the messages visible when it started
  (``ApproximateNumberOfMessagesToMove``) in a background thread, at most
  ``MaxNumberOfMessagesPerSecond`` per second, then is ``COMPLETED``; ``CANCELLED`` after a cancel;
  ``FAILED`` with ``FailureReason`` ``AWS.SimpleQueueService.NonExistentQueue`` when its destination
  disappears;
* the task handle is base64 JSON of ``taskId`` and ``sourceArn``; ``ListMessageMoveTasks`` lists the
  most recent first (``MaxResults`` default 1, at most 10) and shows the handle only while RUNNING.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.sqs.exceptions import QueueDoesNotExist, ReceiptHandleIsInvalid, SQSException
from moto.sqs.responses import SQSResponse

from emulator.context import active
from emulator.patch import Patch
from emulator.sqs_event_sources import ORIGIN_ATTRIBUTE

LOG = logging.getLogger("emulator.sqs")
MAX_RATE = 500
NON_EXISTENT_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"


def invalid(message: str) -> SQSException:
    return SQSException("InvalidParameterValue", message)


def not_found(message: str) -> SQSException:
    return SQSException("ResourceNotFoundException", message)


def _parts(arn: str) -> tuple[str, str, str]:
    """(account, region, queue name) of a queue ARN."""
    pieces = str(arn).split(":")
    if len(pieces) != 6 or pieces[2] != "sqs":
        raise QueueDoesNotExist()
    return pieces[4], pieces[3], pieces[5]


def find_queue(arn: str) -> tuple[Any, Any]:
    """(backend, queue) of an ARN; raises ``QueueDoesNotExist``."""
    from moto.sqs.models import sqs_backends

    account, region, name = _parts(arn)
    backend = sqs_backends[account][region]
    return backend, backend.get_queue(name)


def redrive_sources(dlq_arn: str) -> list[Any]:
    """The queues whose RedrivePolicy names ``dlq_arn`` (its account and region)."""
    from moto.sqs.models import sqs_backends

    account, region, _ = _parts(dlq_arn)
    return [
        queue
        for queue in list(sqs_backends[account][region].queues.values())
        if (queue.redrive_policy or {}).get("deadLetterTargetArn") == dlq_arn
    ]


@dataclass
class MoveTask:
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: int = field(default_factory=lambda: int(time.time() * 1000))
    status: str = "RUNNING"
    moved: int = 0
    failure: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def handle(self) -> str:
        raw = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn}, separators=(",", ":"))
        return base64.b64encode(raw.encode("utf-8")).decode("ascii")

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started,
        }
        if self.status == "RUNNING":
            entry["TaskHandle"] = self.handle
        if self.destination_arn:
            entry["DestinationArn"] = self.destination_arn
        if self.rate:
            entry["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            entry["FailureReason"] = self.failure
        return entry


class MoveTasks:
    """Every message move task of the running emulator, each moving in its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: list[MoveTask] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self, source_arn: str, destination_arn: str | None, rate: int | None) -> MoveTask:
        try:
            _, source = find_queue(source_arn)
        except QueueDoesNotExist as exc:
            raise not_found(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            ) from exc
        if not redrive_sources(source_arn):
            raise invalid("Source queue must be configured as a Dead Letter Queue.")
        if destination_arn:
            try:
                find_queue(destination_arn)
            except QueueDoesNotExist as exc:
                raise not_found(
                    "The resource that you specified for the DestinationArn parameter doesn't exist."
                ) from exc
        if rate is not None and not 1 <= int(rate) <= MAX_RATE:
            raise invalid(
                "Value for parameter MaxNumberOfMessagesPerSecond is invalid."
                f" Reason: You must enter a number that's between 1 and {MAX_RATE}."
            )
        with self._lock:
            if any(t.source_arn == source_arn and t.status == "RUNNING" for t in self._tasks):
                raise invalid(
                    "There is already a task running. Only one active task is allowed for a source"
                    " queue arn at a given time."
                )
            task = MoveTask(
                source_arn, destination_arn or None, int(rate) if rate else None, len(source.messages)
            )
            self._tasks.append(task)
            thread = threading.Thread(target=self._run, args=(task,), name="sqs-move-task", daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        LOG.info("message move task %s: %s -> %s", task.task_id, source_arn, destination_arn or "sources")
        return task

    def list(self, source_arn: str, max_results: int | None) -> list[dict[str, Any]]:
        try:
            find_queue(source_arn)
        except QueueDoesNotExist as exc:
            raise not_found(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            ) from exc
        limit = 1 if max_results is None else int(max_results)
        if not 1 <= limit <= 10:
            raise invalid(
                "Value for parameter MaxResults is invalid. Reason: You must enter a number that's between 1 and 10."
            )
        with self._lock:
            tasks = [t for t in self._tasks if t.source_arn == source_arn]
        return [t.describe() for t in reversed(tasks)][:limit]

    def cancel(self, handle: str) -> MoveTask:
        try:
            decoded = json.loads(base64.b64decode(str(handle), validate=True))
            task_id, source_arn = str(decoded["taskId"]), str(decoded["sourceArn"])
        except (binascii.Error, ValueError, TypeError, KeyError) as exc:
            raise invalid("Value for parameter TaskHandle is invalid.") from exc
        try:
            find_queue(source_arn)
        except QueueDoesNotExist as exc:
            raise not_found(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            ) from exc
        with self._lock:
            task = next((t for t in self._tasks if t.task_id == task_id and t.status == "RUNNING"), None)
            if task is None:
                raise not_found("Task does not exist.")
            task.status = "CANCELLING"
            task.cancel.set()
        return task

    # ------------------------------------------------------------------ the move
    def _run(self, task: MoveTask) -> None:
        try:
            status = self._move(task)
        except QueueDoesNotExist:
            status, task.failure = "FAILED", NON_EXISTENT_QUEUE
        except Exception:  # a bug ends the task as FAILED, logged with its traceback
            LOG.exception("message move task %s failed", task.task_id)
            status, task.failure = "FAILED", "InternalError"
        with self._lock:
            task.status = status
        LOG.info("message move task %s: %s, %d moved", task.task_id, status, task.moved)

    def _move(self, task: MoveTask) -> str:
        backend, source = find_queue(task.source_arn)
        began = time.monotonic()
        while task.moved < task.to_move:
            if task.cancel.is_set() or self._stopping.is_set():
                return "CANCELLED"
            if task.rate and self._stopping.wait(max(0.0, began + task.moved / task.rate - time.monotonic())):
                return "CANCELLED"
            wanted = min(10, task.to_move - task.moved, task.rate or 10)
            messages = backend.receive_message(source.name, wanted, 0, 30, ["All"])
            if not messages:
                break
            for message in messages:
                self._move_one(task, backend, source, message)
        return "CANCELLED" if task.cancel.is_set() else "COMPLETED"

    def _destination(self, task: MoveTask, message: Any) -> Any:
        if task.destination_arn:
            return find_queue(task.destination_arn)
        origin = getattr(message, ORIGIN_ATTRIBUTE, None)
        if origin and origin != task.source_arn:
            return find_queue(origin)
        sources = redrive_sources(task.source_arn)
        if not sources:
            raise QueueDoesNotExist()
        return find_queue(sources[0].queue_arn)

    def _move_one(self, task: MoveTask, backend: Any, source: Any, message: Any) -> None:
        try:
            target_backend, target = self._destination(task, message)
        except QueueDoesNotExist:
            backend.change_message_visibility(source.name, message.receipt_handle, 0)
            raise
        fifo = target.fifo_queue
        target_backend.send_message(
            target.name,
            message.body,
            message_attributes=dict(message.message_attributes or {}) or None,
            group_id=(message.group_id or "redrive") if fifo else None,
            deduplication_id=str(uuid.uuid4()) if fifo else None,
        )
        try:
            backend.delete_message(source.name, message.receipt_handle)
        except ReceiptHandleIsInvalid:
            LOG.warning("message move task %s: %s was deleted meanwhile", task.task_id, message.id)
        task.moved += 1

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.1))


# ---------------------------------------------------------------------------- SQS actions
def _tasks() -> MoveTasks:
    tasks = active().move_tasks
    if not isinstance(tasks, MoveTasks):  # None: the emulator runs no move tasks
        raise SQSException("UnsupportedOperation", "message move tasks are not available")
    return tasks


def _start_message_move_task(self: SQSResponse) -> ActionResult:
    task = _tasks().start(
        self._get_param("SourceArn"),
        self._get_param("DestinationArn"),
        self._get_param("MaxNumberOfMessagesPerSecond"),
    )
    return ActionResult({"TaskHandle": task.handle})


def _list_message_move_tasks(self: SQSResponse) -> ActionResult:
    results = _tasks().list(self._get_param("SourceArn"), self._get_param("MaxResults"))
    return ActionResult({"Results": results})


def _cancel_message_move_task(self: SQSResponse) -> ActionResult:
    task = _tasks().cancel(self._get_param("TaskHandle"))
    return ActionResult({"ApproximateNumberOfMessagesMoved": task.moved})


_MISSING = (
    "moto 5.2.5 lacks this SQS action (HTTP 500); SQS redrives a dead-letter queue with message move tasks"
)

PATCHES = [
    Patch(
        "moto.sqs.responses.SQSResponse.start_message_move_task",
        _MISSING,
        lambda _none: _start_message_move_task,
        "add",
    ),
    Patch(
        "moto.sqs.responses.SQSResponse.list_message_move_tasks",
        _MISSING,
        lambda _none: _list_message_move_tasks,
        "add",
    ),
    Patch(
        "moto.sqs.responses.SQSResponse.cancel_message_move_task",
        _MISSING,
        lambda _none: _cancel_message_move_task,
        "add",
    ),
]
