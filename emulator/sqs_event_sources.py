"""SQS event source mappings run the way Lambda runs them: background pollers, not SendMessage.

moto invokes the function of an SQS event source mapping synchronously inside SendMessage (in the
sender's request, one message at a time, deleting it whatever the response says). Lambda instead
polls the queue, and so does the emulator:

* **Pollers**: each enabled mapping whose source is an SQS queue gets up to
  ``ScalingConfig.MaximumConcurrency`` worker threads (default :data:`DEFAULT_MAXIMUM_CONCURRENCY`
  without a ScalingConfig: Lambda would scale towards the account's concurrency, which a laptop
  cannot). Each worker is one concurrency slot: it receives a batch only when it is free, so no
  message waits in flight for a slot. A disabled or deleted mapping's workers stop at their next poll
  (within :data:`POLL_INTERVAL`); a batch in hand is made visible again.
* **Batching**: up to ``BatchSize`` messages (ReceiveMessage takes at most 10 at a time) or until
  ``MaximumBatchingWindowInSeconds`` has passed since the batch's first message; with a window of
  0 (the default) the function is invoked as soon as there are messages.
* **The event** is Lambda's: ``Records[]`` with ``messageId``, ``receiptHandle``, ``body``,
  ``attributes`` (``ApproximateReceiveCount``, ``SentTimestamp``, ``SenderId``,
  ``ApproximateFirstReceiveTimestamp``; FIFO and trace attributes when present),
  ``messageAttributes`` (Lambda's lower-camel shape), ``md5OfBody``, ``eventSource`` ``aws:sqs``,
  ``eventSourceARN`` and ``awsRegion``. The invocation is synchronous, through the emulator's local
  runtime (warm environments), the path a RequestResponse invoke takes; a throttled invocation
  (reserved concurrency) is retried until the visibility timeout would have passed.
* **After the invocation**: a function error or timeout deletes nothing (the messages come back
  after the visibility timeout, and past ``maxReceiveCount`` moto's ReceiveMessage moves them to the
  dead-letter queue); success deletes the batch, or with ``ReportBatchItemFailures`` every message
  not named in ``batchItemFailures[].itemIdentifier``. A response Lambda cannot read (not JSON, not
  an object, an empty, null, unknown or misnamed ``itemIdentifier``) fails the whole batch, as AWS
  documents; ``null``, ``{}`` and an empty or null ``batchItemFailures`` are a complete success.

moto fixes that this needs: ``Queue.add_message`` without the synchronous invoke, and
``Queue.delete_message`` under the queue's lock (moto rebuilds the message list unlocked, so a
message sent during a delete from another thread was lost). ``GetEventSourceMapping`` answers
``MaximumBatchingWindowInSeconds`` 0 for an SQS mapping created without one, as Lambda does.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from emulator.lambda_environments import ThrottledError
from emulator.patch import Patch

if TYPE_CHECKING:
    from emulator.lambda_runtime import InvocationResult, LocalLambdaRunner

LOG = logging.getLogger("emulator.sqs")
DEFAULT_MAXIMUM_CONCURRENCY = 5  # without ScalingConfig (documented in the README)
POLL_INTERVAL = 0.2  # how long an idle worker waits for a message before it looks again
THROTTLE_DELAY = 0.2
DEDUPLICATION_SECONDS = 300
ORIGIN_ATTRIBUTE = "_emulator_origin_arn"  # the queue a message was first sent to (for redrives)


# ---------------------------------------------------------------------------- moto patches
def _is_duplicate(queue: Any, message: Any) -> bool:
    """moto's FIFO deduplication (5 minutes per deduplication id), kept as moto has it."""
    if not queue.fifo_queue:
        return False
    if queue.attributes.get("ContentBasedDeduplication") != "true" and not message.deduplication_id:
        return False
    return any(
        m.deduplication_id == message.deduplication_id
        and (message.sent_timestamp - m.sent_timestamp) / 1000 < DEDUPLICATION_SECONDS
        for m in queue._messages
    )


def _add_message(_original: Any) -> Any:
    def add_message(self: Any, message: Any) -> None:
        """Store the message; pollers deliver it (no synchronous invoke in the sender's request)."""
        if _is_duplicate(self, message):
            return
        if not hasattr(message, ORIGIN_ATTRIBUTE):
            setattr(message, ORIGIN_ATTRIBUTE, self.queue_arn)
        with self._messages_lock:
            self._messages.append(message)
            self._messages_lock.notify_all()

    return add_message


def _delete_message(original: Any) -> Any:
    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            original(self, receipt_handle)

    return delete_message


def _get_configuration(original: Any) -> Any:
    def get_configuration(self: Any) -> dict[str, Any]:
        config: dict[str, Any] = original(self)
        if self.event_source_arn.split(":")[2] == "sqs":
            config.setdefault("MaximumBatchingWindowInSeconds", 0)
        return config

    return get_configuration


PATCHES = [
    Patch(
        "moto.sqs.models.Queue.add_message",
        "moto invokes the functions of SQS event source mappings synchronously inside SendMessage and"
        " deletes the messages whatever they answered; Lambda polls the queue in the background"
        " (batching window, concurrency, ReportBatchItemFailures)",
        _add_message,
    ),
    Patch(
        "moto.sqs.models.Queue.delete_message",
        "moto rebuilds the queue's message list without its lock, so a message sent by another thread"
        " during a delete is lost; SQS never loses a sent message",
        _delete_message,
    ),
    Patch(
        "moto.awslambda.models.EventSourceMapping.get_configuration",
        "moto omits MaximumBatchingWindowInSeconds of an SQS mapping created without one; Lambda answers 0",
        _get_configuration,
    ),
]


# ---------------------------------------------------------------------------- the Lambda event
def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    if isinstance(binary, bytes | bytearray):
        binary = base64.b64encode(bytes(binary)).decode("ascii")
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if value.get("StringValue") is not None:
        attribute["stringValue"] = value["StringValue"]
    if binary is not None:
        attribute["binaryValue"] = binary
    return attribute


def _system_attributes(message: Any, fifo: bool) -> dict[str, str]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    trace = (message.system_attributes or {}).get("AWSTraceHeader")
    if trace:
        attributes["AWSTraceHeader"] = str(
            trace.get("StringValue", trace) if isinstance(trace, dict) else trace
        )
    if fifo:
        attributes["SequenceNumber"] = str(message.sequence_number or "")
        attributes["MessageGroupId"] = str(message.group_id or "")
        attributes["MessageDeduplicationId"] = str(message.deduplication_id or "")
    return attributes


def sqs_record(message: Any, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, for a message as moto's ReceiveMessage returned it."""
    record: dict[str, Any] = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": _system_attributes(message, queue_arn.endswith(".fifo")),
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in (message.message_attributes or {}).items()
        },
    }
    if message.message_attributes:
        record["md5OfMessageAttributes"] = message.attribute_md5
    record.update(
        {
            "md5OfBody": message.body_md5,
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record


def batch_item_failures(payload: str, message_ids: set[str]) -> set[str] | None:
    """The message ids a ReportBatchItemFailures response names; ``None``: the response is invalid,
    so the whole batch failed (AWS: invalid JSON, an empty, null or unknown ``itemIdentifier``, or a
    misnamed key). ``null``, ``{}``, an empty or null ``batchItemFailures``: complete success."""
    text = (payload or "").strip()
    if not text:
        return set()
    try:
        response = json.loads(text)
    except json.JSONDecodeError:
        return None
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    named: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        named.add(identifier)
    return named


# ---------------------------------------------------------------------------- mappings
@dataclass
class MappingStats:
    """Counters of one mapping (kept while the emulator runs, across disable/enable)."""

    uuid: str
    function_arn: str = ""
    event_source_arn: str = ""
    state: str = ""
    batch_size: int = 0
    maximum_batching_window_in_seconds: int = 0
    maximum_concurrency: int = 0
    report_batch_item_failures: bool = False
    invocations: int = 0
    messages_received: int = 0
    messages_deleted: int = 0
    messages_reported_failed: int = 0
    batch_failures: int = 0
    throttles: int = 0
    running: int = 0
    max_running: int = 0


def maximum_concurrency(esm: Any) -> int:
    value = (getattr(esm, "scaling_config", None) or {}).get("MaximumConcurrency")
    return max(1, int(value)) if value else DEFAULT_MAXIMUM_CONCURRENCY


def _sqs_backend_and_queue(queue_arn: str) -> tuple[Any, Any] | None:
    from moto.sqs.exceptions import QueueDoesNotExist
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    backend = sqs_backends[account][region]
    try:
        return backend, backend.get_queue(name)
    except QueueDoesNotExist:
        return None


def sqs_mappings() -> Iterator[Any]:
    """Every SQS event source mapping of every account and region (enabled or not)."""
    from moto.awslambda.models import lambda_backends

    for _account, regions in list(lambda_backends.items()):
        for _region, backend in list(regions.items()):
            for esm in list(backend._event_source_mappings.values()):
                if esm.event_source_arn.split(":")[2] == "sqs":
                    yield esm


def _mapping_exists(esm: Any) -> bool:
    from moto.awslambda.utils import get_backend

    backend = get_backend(esm.account_id, esm.region)
    return backend._event_source_mappings.get(esm.uuid) is esm and bool(esm.enabled)


def _merge(batch: list[Any], received: list[Any]) -> list[Any]:
    """The batch with ``received`` added; a message received again (its visibility timeout ended
    within the batching window) is kept once, with its latest receipt handle and receive count."""
    if not received:
        return batch
    latest = {message.id: message for message in received}
    return [m for m in batch if m.id not in latest] + received


class MappingPoller:
    """The workers of one enabled SQS mapping; worker ``i`` runs while ``i`` < its concurrency."""

    def __init__(self, manager: EventSources, esm: Any, stats: MappingStats) -> None:
        self.manager = manager
        self.esm = esm
        self.stats = stats
        self._stop = threading.Event()
        self._workers: dict[int, threading.Thread] = {}

    def resize(self) -> None:
        """Start the workers the mapping's concurrency allows and that are not running."""
        limit = maximum_concurrency(self.esm)
        for index in range(limit):
            worker = self._workers.get(index)
            if worker is None or not worker.is_alive():
                worker = threading.Thread(
                    target=self._work,
                    args=(index,),
                    name=f"sqs-poller-{self.esm.uuid[:8]}-{index}",
                    daemon=True,
                )
                self._workers[index] = worker
                worker.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, deadline: float) -> None:
        for worker in list(self._workers.values()):
            worker.join(max(deadline - time.monotonic(), 0.1))

    def _should_run(self, index: int) -> bool:
        return not self._stop.is_set() and index < maximum_concurrency(self.esm) and _mapping_exists(self.esm)

    def _work(self, index: int) -> None:
        while self._should_run(index):
            found = _sqs_backend_and_queue(self.esm.event_source_arn)
            if found is None:  # the queue was deleted: Lambda keeps polling, in vain
                self._stop.wait(POLL_INTERVAL)
                continue
            backend, queue = found
            batch = self._gather(index, backend, queue)
            if not batch:
                continue
            if not self._should_run(index):
                self._release(backend, queue, batch)
                continue
            self.manager.busy(self.stats, +1)
            try:
                self._process(backend, queue, batch)
            except Exception:  # a bug must not kill the slot silently: log it with its traceback
                if not self._stop.is_set():  # stopping: the closed runner refuses the invocation
                    LOG.exception("batch of mapping %s failed in the emulator", self.esm.uuid)
            finally:
                self.manager.busy(self.stats, -1)

    def _receive(self, backend: Any, queue: Any, wanted: int) -> list[Any]:
        with self.manager.receive_lock(queue.queue_arn):
            return list(
                backend.receive_message(queue.name, wanted, 0, int(queue.visibility_timeout or 30), ["All"])
            )

    def _gather(self, index: int, backend: Any, queue: Any) -> list[Any]:
        """Up to BatchSize messages, or what arrived until the batching window closed."""
        batch_size = int(self.esm.batch_size)
        window = float(self.esm.max_batch_window or 0)
        batch: list[Any] = []
        deadline: float | None = None
        while self._should_run(index):
            received = self._receive(backend, queue, min(10, batch_size - len(batch)))
            batch = _merge(batch, received)
            now = time.monotonic()
            if batch and deadline is None:
                deadline = now + window
            if len(batch) >= batch_size or (deadline is not None and now >= deadline):
                return batch
            if not received:
                self._wait_for_messages(queue, POLL_INTERVAL if deadline is None else deadline - now)
        if batch:
            self._release(backend, queue, batch)
        return []

    def _wait_for_messages(self, queue: Any, seconds: float) -> None:
        seconds = max(0.01, min(seconds, POLL_INTERVAL))
        started = time.monotonic()
        queue.wait_for_messages(seconds)
        if time.monotonic() - started < 0.01:  # visible messages another worker is taking
            self._stop.wait(0.02)

    def _release(self, backend: Any, queue: Any, batch: list[Any]) -> None:
        """A stopped worker's batch goes back at once (it was never given to the function)."""
        from moto.sqs.exceptions import ReceiptHandleIsInvalid

        for message in batch:
            try:
                backend.change_message_visibility(queue.name, message.receipt_handle, 0)
            except ReceiptHandleIsInvalid:
                continue

    def _process(self, backend: Any, queue: Any, batch: list[Any]) -> None:
        from moto.awslambda.utils import get_backend

        esm = self.esm
        fn = get_backend(esm.account_id, esm.region).get_function(esm.function_arn)
        event = json.dumps({"Records": [sqs_record(m, queue.queue_arn, queue.region) for m in batch]})
        self.manager.count(self.stats, invocations=1, messages_received=len(batch))
        result = self._invoke(fn, event, int(queue.visibility_timeout or 30))
        if result is None or result.errored:
            self.manager.count(self.stats, batch_failures=1)
            return
        failed: set[str] | None = set()
        if "ReportBatchItemFailures" in (esm.function_response_types or []):
            failed = batch_item_failures(result.payload, {m.id for m in batch})
        if failed is None:
            LOG.warning("mapping %s: invalid batchItemFailures response, the batch failed", esm.uuid)
            self.manager.count(self.stats, batch_failures=1)
            return
        for message in batch:
            if message.id not in failed:
                backend.delete_message(queue.name, message.receipt_handle)
        self.manager.count(
            self.stats, messages_deleted=len(batch) - len(failed), messages_reported_failed=len(failed)
        )

    def _invoke(self, fn: Any, event: str, visibility_timeout: int) -> InvocationResult | None:
        """The synchronous invocation; throttles are retried while the batch is still invisible."""
        deadline = time.monotonic() + visibility_timeout
        while True:
            try:
                return self.manager.runner.invoke(fn, event, throttle=True)
            except ThrottledError:
                self.manager.count(self.stats, throttles=1)
                if time.monotonic() + THROTTLE_DELAY > deadline or self._stop.wait(THROTTLE_DELAY):
                    return None


class EventSources:
    """Runs the pollers of every enabled SQS event source mapping (see the module docstring).

    A supervisor thread reconciles the pollers with moto's mappings every :data:`POLL_INTERVAL`
    (created, enabled, disabled, deleted, concurrency changed); each worker also checks its mapping
    before every poll, so a disabled or deleted mapping stops polling at once.
    """

    def __init__(self, runner: LocalLambdaRunner) -> None:
        self.runner = runner
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._pollers: dict[str, MappingPoller] = {}
        self._retired: list[MappingPoller] = []
        self._stats: dict[str, MappingStats] = {}
        self._receive_locks: dict[str, threading.Lock] = {}
        self._supervisor = threading.Thread(target=self._supervise, name="sqs-event-sources", daemon=True)
        self._supervisor.start()

    # ------------------------------------------------------------------ counters
    def count(self, stats: MappingStats, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                setattr(stats, name, getattr(stats, name) + value)
            self._lock.notify_all()

    def busy(self, stats: MappingStats, delta: int) -> None:
        with self._lock:
            stats.running += delta
            stats.max_running = max(stats.max_running, stats.running)
            self._lock.notify_all()

    def receive_lock(self, queue_arn: str) -> threading.Lock:
        """One receiver at a time per queue: moto's ReceiveMessage is not thread-safe."""
        with self._lock:
            return self._receive_locks.setdefault(queue_arn, threading.Lock())

    # ------------------------------------------------------------------ supervision
    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self.reconcile()
            except Exception:  # the supervisor must keep running: log the bug with its traceback
                LOG.exception("reconciling SQS event source mappings failed")
            self._stopping.wait(POLL_INTERVAL)

    def reconcile(self) -> None:
        """Start pollers for enabled mappings, stop those of disabled or deleted ones."""
        if self._stopping.is_set():
            return
        enabled = {esm.uuid: esm for esm in sqs_mappings() if esm.enabled}
        with self._lock:
            for uuid, poller in list(self._pollers.items()):
                if enabled.get(uuid) is not poller.esm:
                    poller.stop()
                    self._retired.append(self._pollers.pop(uuid))
            for uuid, esm in enabled.items():
                stats = self._stats.setdefault(uuid, MappingStats(uuid))
                poller = self._pollers.get(uuid) or MappingPoller(self, esm, stats)
                self._pollers[uuid] = poller
                poller.resize()
            self._retired = [p for p in self._retired if any(w.is_alive() for w in p._workers.values())]

    # ------------------------------------------------------------------ stats and waiting
    def stats(self) -> list[dict[str, Any]]:
        mappings = {esm.uuid: esm for esm in sqs_mappings()}
        with self._lock:
            for uuid, esm in mappings.items():
                stats = self._stats.setdefault(uuid, MappingStats(uuid))
                stats.function_arn, stats.event_source_arn = esm.function_arn, esm.event_source_arn
                stats.state = "Enabled" if esm.enabled else "Disabled"
                stats.batch_size = int(esm.batch_size)
                stats.maximum_batching_window_in_seconds = int(esm.max_batch_window or 0)
                stats.maximum_concurrency = maximum_concurrency(esm)
                stats.report_batch_item_failures = "ReportBatchItemFailures" in (
                    esm.function_response_types or []
                )
            for uuid, stats in self._stats.items():
                if uuid not in mappings:
                    stats.state = "Deleted"
            return [asdict(stats) for stats in self._stats.values()]

    def drained(self) -> bool:
        """No message (visible, in flight or delayed) in the queue of an enabled mapping, and no
        batch of any mapping being processed."""
        with self._lock:
            if any(stats.running for stats in self._stats.values()):
                return False
        for esm in sqs_mappings():
            found = _sqs_backend_and_queue(esm.event_source_arn) if esm.enabled else None
            if found is not None and found[1]._messages:
                return False
        return True

    def wait_drained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.drained():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._lock:
                self._lock.wait(min(remaining, 0.05))
        return True

    def stop(self) -> None:
        """Stop polling (workers stop at their next poll; a running invocation ends with the runner)."""
        self._stopping.set()
        with self._lock:
            for poller in self._pollers.values():
                poller.stop()
            self._retired.extend(self._pollers.values())
            self._pollers.clear()

    def join(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        self._supervisor.join(max(deadline - time.monotonic(), 0.1))
        for poller in list(self._retired):
            poller.join(deadline)
