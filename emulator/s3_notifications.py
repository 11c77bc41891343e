"""S3 event notifications shaped and delivered like S3's.

* **Asynchronous delivery**: S3 invokes Lambda asynchronously (moto invokes it inside PutObject and
  swallows every error): the event goes to the emulator's asynchronous invoker (retries, on-failure
  destination) and the S3 request never fails because of the function.
* **SQS destinations** (``QueueConfigurations``): the same event JSON (same record, sequencer and
  event time as a Lambda destination of that object event) is the message body; a missing queue is
  logged (moto swallowed every error silently) and never fails the S3 request. Lambda then reads the
  queue through its event source mapping (:mod:`emulator.sqs_event_sources`).
* **Test event**: putting a notification configuration with queue (or topic) destinations sends
  ``{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time", "Bucket", "RequestId", "HostId"}``
  to each of them, as S3 does (moto's lacks ``RequestId`` and ``HostId``); it is sent once, never
  copied.
* **One event per created object version**: moto's CompleteMultipartUpload stores the object with
  its PutObject code path, which sends an ``ObjectCreated:Put`` event, and then sends
  ``ObjectCreated:CompleteMultipartUpload`` too; S3 sends only the latter. Events are named as S3
  names them (``ObjectCreated:Put``, ``:Post``, ``:Copy``, ``:CompleteMultipartUpload``).
* **Record fields**: one ``sequencer`` (increasing) and one ``eventTime`` per object event, the same
  for every destination it is sent to; ``versionId`` (versioned buckets), ``userIdentity``,
  ``requestParameters``, ``responseElements``; the key form-URL-encoded like S3 (``quote_plus``
  keeping ``/``; moto encodes it as ``%2F``).
* **At-least-once, on demand**: ``S3Settings.notification_copies`` (admin API
  ``POST /_emulator/s3/notifications``) delivers every Lambda and SQS notification that many times,
  as S3 occasionally does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

from emulator.context import active
from emulator.patch import Patch

LOG = logging.getLogger("emulator.s3")
_SEQ_LOCK = threading.Lock()
_LAST_SEQUENCER = 0
_EVENT = threading.local()  # the object event being sent: sequencer, event time; suppression flag

PUT_EVENT = "s3:ObjectCreated:Put"
TEST_EVENT = "s3:TestEvent"


def next_sequencer() -> str:
    """An increasing hexadecimal sequencer, like S3's (ordering events of one key)."""
    global _LAST_SEQUENCER
    with _SEQ_LOCK:
        _LAST_SEQUENCER = max(time.time_ns(), _LAST_SEQUENCER + 1)
        return f"{_LAST_SEQUENCER:018X}"


def _event_time() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@contextmanager
def _suppressing_put_events() -> Iterator[None]:
    _EVENT.suppress_put = True
    try:
        yield
    finally:
        _EVENT.suppress_put = False


def _send_event(original: Any) -> Any:
    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        if (
            getattr(_EVENT, "suppress_put", False)
            and str(getattr(event_name, "value", event_name)) == PUT_EVENT
        ):
            return
        _EVENT.sequencer, _EVENT.time = next_sequencer(), _event_time()
        try:
            original(account_id, event_name, bucket, key)
        finally:
            _EVENT.sequencer = _EVENT.time = None

    return send_event


def _get_s3_event(original: Any) -> Any:
    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        sequencer = getattr(_EVENT, "sequencer", None) or next_sequencer()
        event_time = getattr(_EVENT, "time", None) or _event_time()
        for record in event.get("Records", []):
            record["eventTime"] = event_time
            record.setdefault("userIdentity", {"principalId": "AWS:EMULATOR"})
            record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
            record.setdefault(
                "responseElements",
                {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
            )
            obj = record.get("s3", {}).get("object", {})
            obj["key"] = quote_plus(key.name, safe="/")
            obj["sequencer"] = sequencer
            if getattr(bucket, "is_versioned", False):
                obj["versionId"] = key.version_id
        return event

    return get_s3_event


def _complete_multipart_upload(original: Any) -> Any:
    def complete_multipart_upload(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _suppressing_put_events():
            return original(self, *args, **kwargs)

    return complete_multipart_upload


def _invoke_awslambda(_original: Any) -> Any:
    def invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        """S3 invokes Lambda asynchronously: queue the event, never fail the S3 request."""
        from moto.awslambda.utils import get_backend
        from moto.core.exceptions import JsonRESTError, ServiceException

        try:
            fn = get_backend(account_id, region_name).get_function(fn_arn)
        except (JsonRESTError, ServiceException, KeyError, ValueError):
            LOG.warning("S3 notification for missing function %s dropped", fn_arn, exc_info=True)
            return
        runtime = active()
        payload = json.dumps(event_body)
        for _ in range(max(1, runtime.s3.notification_copies)):
            runtime.async_invoker.submit(fn, payload, source="s3")

    return invoke_awslambda


def _send_sqs_message(_original: Any) -> Any:
    def send_sqs_message(account_id: str, event_body: Any, queue_name: str, region_name: str) -> None:
        """The event as a message (``notification_copies`` times); never fails the S3 request."""
        from moto.core.exceptions import ServiceException
        from moto.sqs.models import sqs_backends

        body = json.dumps(event_body)
        is_test = isinstance(event_body, dict) and event_body.get("Event") == TEST_EVENT
        copies = 1 if is_test else max(1, active().s3.notification_copies)
        backend = sqs_backends[account_id][region_name]
        try:
            for _ in range(copies):
                backend.send_message(queue_name=queue_name, message_body=body)
        except ServiceException:
            LOG.warning("S3 notification to queue %s (%s) dropped", queue_name, region_name, exc_info=True)

    return send_sqs_message


def _get_test_event(original: Any) -> Any:
    def get_test_event(bucket_name: str) -> dict[str, Any]:
        event: dict[str, Any] = original(bucket_name)
        event.setdefault("RequestId", uuid.uuid4().hex[:16].upper())
        event.setdefault("HostId", uuid.uuid4().hex + uuid.uuid4().hex)
        return event

    return get_test_event


PATCHES = [
    Patch(
        "moto.s3.notifications.send_event",
        "moto gives each destination of one object event its own event time and sequencer; S3"
        " sends one event (one sequencer) per created object version",
        _send_event,
    ),
    Patch(
        "moto.s3.notifications._get_s3_event",
        "moto's records lack sequencer, versionId, userIdentity, requestParameters and"
        " responseElements, and encode '/' in keys as %2F; S3's records carry them and keep '/'",
        _get_s3_event,
    ),
    Patch(
        "moto.s3.models.S3Backend.complete_multipart_upload",
        "moto sends ObjectCreated:Put and then ObjectCreated:CompleteMultipartUpload for one"
        " multipart upload; S3 sends only the latter",
        _complete_multipart_upload,
    ),
    Patch(
        "moto.s3.notifications._invoke_awslambda",
        "moto invokes the function synchronously inside PutObject and swallows every error; S3"
        " invokes it asynchronously (Lambda retries, then the on-failure destination)",
        _invoke_awslambda,
    ),
    Patch(
        "moto.s3.notifications._send_sqs_message",
        "moto sends each queue notification once and swallows every error silently (a bare except);"
        " S3 is at-least-once (the emulator's notification_copies applies to queues too) and the"
        " emulator logs a notification it could not deliver",
        _send_sqs_message,
    ),
    Patch(
        "moto.s3.notifications._get_test_event",
        "moto's s3:TestEvent lacks RequestId and HostId, which S3's test event carries",
        _get_test_event,
    ),
]
