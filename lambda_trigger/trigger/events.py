"""Parse and validate: the invocation's event, a queue message's body, one S3 notification record
and where it comes from.

Everything here is a pure function of its input (and the configuration): what cannot be an S3
event notification raises :class:`InvalidEventError` (the invocation) or
:class:`InvalidMessageError` (a queue message); an ObjectCreated record without a bucket, key or
event time raises :class:`MalformedRecordError`; :func:`origin_problems` says why a record may not
come from the pipeline's upload bucket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from lambda_common.contract import UploadRecord
from trigger.config import TriggerConfig

S3_EVENT_SOURCE: Final = "aws:s3"
SQS_EVENT_SOURCE: Final = "aws:sqs"

S3_TEST_EVENT: Final = "s3:TestEvent"
"""What S3 sends (as ``Event``, with no ``Records``) when a notification configuration is saved."""

_SHOWN_EVENT_CHARS: Final = 100

_SHOWN_FIELD_CHARS: Final = 64

_JSON_TYPE_NAMES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


class EventKind(Enum):
    SQS_BATCH = "sqs-batch"
    S3_EVENT = "s3-event"


@dataclass(frozen=True)
class ObjectCreated(UploadRecord):
    """One ObjectCreated record read into the contract's upload record (the fields are
    ``lambda_common.contract``'s), except that ``key`` is still form-URL-encoded as S3 sent it:
    :attr:`raw_key` names it so, and :meth:`UploadRecord.with_key` gives the record an execution
    starts with, under the decoded key."""

    @property
    def raw_key(self) -> str:
        return self.key


class InvalidEventError(ValueError):
    """The invocation's event is neither an SQS batch nor an S3 event notification; nothing was
    started.

    ``received`` names the JSON type that came instead (``array``, ``string``, ``null``...).
    """

    def __init__(self, problem: str, value: object) -> None:
        self.received = json_type_name(value)
        shown = json.dumps(value, ensure_ascii=True, default=repr)
        if len(shown) > _SHOWN_EVENT_CHARS:
            shown = f"{shown[:_SHOWN_EVENT_CHARS]}..."
        super().__init__(f"{problem}; received a JSON {self.received}: {shown}")


class InvalidMessageError(ValueError):
    """A queue message's body is not an S3 event notification; retrying cannot help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedRecordError(ValueError):
    """An ObjectCreated record without the fields every S3 notification carries."""

    def __init__(self, reason: str, *, bucket: str, key: str, event_time: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bucket = bucket
        self.key = key
        self.event_time = event_time


def event_kind(event: object) -> EventKind:
    """Tell an SQS batch from a direct S3 event; raise :class:`InvalidEventError` for anything else.

    An empty ``Records`` array is an (empty) SQS batch.
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(
            "the trigger expects an SQS batch or an S3 event notification, a JSON object", event
        )
    if "Records" not in event:
        if event.get("Event") == S3_TEST_EVENT:
            return EventKind.S3_EVENT
        raise InvalidEventError(
            f"the event has no 'Records' array and is not an {S3_TEST_EVENT}", dict(event)
        )
    records = event["Records"]
    if not isinstance(records, list):
        raise InvalidEventError("the event's 'Records' must be an array of records", records)
    sources = {record.get("eventSource") if isinstance(record, Mapping) else None for record in records}
    if sources <= {SQS_EVENT_SOURCE}:
        return EventKind.SQS_BATCH
    if S3_EVENT_SOURCE in sources and SQS_EVENT_SOURCE not in sources:
        return EventKind.S3_EVENT
    raise InvalidEventError(
        f"the event's 'Records' are neither all SQS messages ({SQS_EVENT_SOURCE}) nor S3 "
        f"notification records ({S3_EVENT_SOURCE})",
        records,
    )


def parse_body(body: object) -> object:
    """The JSON document a queue message carries; raise :class:`InvalidMessageError` if none."""
    if not isinstance(body, str):
        raise InvalidMessageError(f"the message body is a {json_type_name(body)}, not a string")
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise InvalidMessageError(f"the message body is not JSON ({err})") from err
    except RecursionError as err:  # a body nested deeper than the parser's stack
        raise InvalidMessageError("the message body is JSON nested too deeply to parse") from err


def s3_event_records(document: object) -> list[object] | None:
    """The records of an S3 event notification, None for S3's ``s3:TestEvent``; raise
    :class:`InvalidMessageError` for any other document."""
    if not isinstance(document, Mapping):
        raise InvalidMessageError(
            f"the message body is a JSON {json_type_name(document)}, not an S3 event notification object"
        )
    if "Records" not in document:
        if document.get("Event") == S3_TEST_EVENT:
            return None
        raise InvalidMessageError(
            f"the message body has no 'Records' array and is not an {S3_TEST_EVENT}: not an S3 event "
            "notification"
        )
    records = document["Records"]
    if not isinstance(records, list):
        raise InvalidMessageError(
            f"the message body's 'Records' is a JSON {json_type_name(records)}, not an array"
        )
    return records


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_record(record: Mapping[str, Any]) -> ObjectCreated:
    """Extract the fields the pipeline uses from one S3 notification record."""
    s3 = record.get("s3") if isinstance(record.get("s3"), Mapping) else {}
    bucket_info = s3.get("bucket") if isinstance(s3.get("bucket"), Mapping) else {}
    object_info = s3.get("object") if isinstance(s3.get("object"), Mapping) else {}
    bucket = bucket_info.get("name")
    raw_key = object_info.get("key")
    event_time = record.get("eventTime")
    problems = [
        f"{path} is missing, empty or not a string"
        for path, value in (("s3.bucket.name", bucket), ("s3.object.key", raw_key), ("eventTime", event_time))
        if not isinstance(value, str) or not value
    ]
    if problems:
        raise MalformedRecordError(
            f"malformed S3 notification record: {'; '.join(problems)}",
            bucket=bucket if isinstance(bucket, str) else "",
            key=raw_key if isinstance(raw_key, str) else "",
            event_time=event_time if isinstance(event_time, str) else "",
        )
    size = object_info.get("size")
    return ObjectCreated(
        bucket=bucket,
        key=raw_key,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        etag=_optional_str(object_info.get("eTag")),
        version_id=_optional_str(object_info.get("versionId")),
        sequencer=_optional_str(object_info.get("sequencer")),
        event_time=event_time,
        event_name=record["eventName"],
    )


def shown_text(value: str) -> str:
    """A string of a record as a rejection reason shows it: quoted and escaped (``repr``), cut
    after :data:`_SHOWN_FIELD_CHARS` characters."""
    if len(value) > _SHOWN_FIELD_CHARS:
        return f"{value[:_SHOWN_FIELD_CHARS]!r}..."
    return repr(value)


def field_problem(record: Mapping[str, Any], name: str, expected: str, expected_as: str) -> str | None:
    """Why field ``name`` of a record is not ``expected`` (``expected_as`` names it), None when it is.

    S3 sends the field in every record, so a missing one does not match either."""
    if name not in record:
        return f"{name} is missing (S3 always sends it; expected {expected_as} {expected!r})"
    value = record[name]
    if value == expected:
        return None
    if not isinstance(value, str):
        return f"{name} is a JSON {json_type_name(value)}, not {expected_as} {expected!r}"
    return f"{name} {shown_text(value)} is not {expected_as} {expected!r}"


def origin_problems(record: Mapping[str, Any], bucket: str, config: TriggerConfig) -> list[str]:
    """Why an ObjectCreated record may not come from the pipeline's upload bucket (empty: it may):
    its ``eventSource`` is not S3's, its ``awsRegion`` is not the stack's region, or its bucket is
    not the upload bucket. Each problem is listed; a missing field is one."""
    problems = [
        field_problem(record, "eventSource", S3_EVENT_SOURCE, "S3's"),
        field_problem(record, "awsRegion", config.region, "the stack's region"),
    ]
    if bucket != config.upload_bucket:
        problems.append(
            f"bucket {shown_text(bucket)} is not the pipeline's upload bucket {config.upload_bucket!r}"
        )
    return [problem for problem in problems if problem is not None]


def is_object_created(record: object) -> bool:
    event_name = record.get("eventName") if isinstance(record, Mapping) else None
    return isinstance(event_name, str) and event_name.startswith("ObjectCreated:")
