"""Writer Lambda against moto DynamoDB: the task input in, one conditional PutItem out."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devkit.lambda_harness import create_metadata_table, metadata_item

if TYPE_CHECKING:
    from tests.conftest import FakeLambdaContext

REGION = "us-east-1"
TABLE = "ingestion-metadata"
EVENT_TIME = "2026-01-15T10:20:30.123Z"
EXECUTION_ID = "arn:aws:states:us-east-1:123456789012:execution:ingestion:report_csv-0123456789abcdef"

VALID_EVENT: dict[str, Any] = {
    "file": {
        "bucket": "uploads-bucket",
        "key": "incoming/déjà vu.csv",
        "size": 2048,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
        "sequencer": "0055AED6DCD90281E5",
        "event_time": EVENT_TIME,
        "event_name": "ObjectCreated:Put",
    },
    "execution_id": EXECUTION_ID,
}


REMOVE = object()


def event_with(**file_changes: Any) -> dict[str, Any]:
    """VALID_EVENT with some ``file`` fields replaced (or removed, with the value ``REMOVE``)."""
    event = copy.deepcopy(VALID_EVENT)
    for name, value in file_changes.items():
        if value is REMOVE:
            del event["file"][name]
        else:
            event["file"][name] = value
    return event


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_metadata_table(client, TABLE)
    return client


@pytest.fixture
def writer(load_function: Callable[..., ModuleType], dynamodb: Any) -> ModuleType:
    return load_function("lambda_writer", TABLE_NAME=TABLE)


def stored_item(dynamodb: Any, filename: str, upload_timestamp: str = EVENT_TIME) -> dict[str, Any] | None:
    return metadata_item(dynamodb, TABLE, filename, upload_timestamp)


# --- success and duplicates --------------------------------------------------------------------


def test_a_valid_input_writes_exactly_the_contract_item(
    writer: ModuleType,
    dynamodb: Any,
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    before = datetime.now(UTC)

    result = writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)

    assert result == {
        "status": "written",
        "filename": "incoming/déjà vu.csv",
        "upload_timestamp": "2026-01-15T10:20:30.123Z",
    }
    item = stored_item(dynamodb, "incoming/déjà vu.csv")
    assert item is not None
    ingested_at = item.pop("IngestedAt")["S"]
    assert item == {
        "Filename": {"S": "incoming/déjà vu.csv"},
        "UploadTimestamp": {"S": "2026-01-15T10:20:30.123Z"},
        "Bucket": {"S": "uploads-bucket"},
        "Size": {"N": "2048"},
        "ETag": {"S": "d41d8cd98f00b204e9800998ecf8427e"},
        "VersionId": {"S": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"},
        "Sequencer": {"S": "0055AED6DCD90281E5"},
        "ExecutionId": {"S": EXECUTION_ID},
    }
    assert ingested_at.endswith("Z")
    assert before.replace(microsecond=0) <= datetime.fromisoformat(ingested_at) <= datetime.now(UTC)
    assert read_metrics()["RecordsWritten"] == 1
    assert writer.logger.get_correlation_id() == EXECUTION_ID


def test_null_optional_fields_are_left_out_of_the_item(writer: ModuleType, dynamodb: Any) -> None:
    event = event_with(size=None, etag=None, version_id=None, sequencer=REMOVE)
    request = writer.parse_write_request(event)

    outcome = writer.put_record(dynamodb, TABLE, request, now=lambda: "2026-01-15T10:20:31.000Z")

    assert (outcome.status, outcome.upload_timestamp) == ("written", EVENT_TIME)
    assert stored_item(dynamodb, "incoming/déjà vu.csv") == {
        "Filename": {"S": "incoming/déjà vu.csv"},
        "UploadTimestamp": {"S": "2026-01-15T10:20:30.123Z"},
        "Bucket": {"S": "uploads-bucket"},
        "ExecutionId": {"S": EXECUTION_ID},
        "IngestedAt": {"S": "2026-01-15T10:20:31.000Z"},
    }


def test_a_zero_byte_file_keeps_its_size(
    writer: ModuleType, dynamodb: Any, lambda_context: FakeLambdaContext
) -> None:
    writer.lambda_handler(event_with(size=0), lambda_context)

    assert stored_item(dynamodb, "incoming/déjà vu.csv")["Size"] == {"N": "0"}


def test_a_redelivered_event_is_a_duplicate_and_keeps_the_first_item(
    writer: ModuleType,
    dynamodb: Any,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given the upload was already written by a first execution
    writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)
    first = stored_item(dynamodb, "incoming/déjà vu.csv")
    read_metrics()

    # When another execution writes the same upload (same key, same S3 event time)
    second_event = copy.deepcopy(VALID_EVENT)
    second_event["execution_id"] = EXECUTION_ID + "-again"
    result = writer.lambda_handler(second_event, lambda_context)

    # Then it succeeds as a duplicate and the first item is untouched
    assert result == {
        "status": "duplicate",
        "filename": "incoming/déjà vu.csv",
        "upload_timestamp": EVENT_TIME,
    }
    assert stored_item(dynamodb, "incoming/déjà vu.csv") == first
    assert read_metrics() == {"DuplicateRecords": 1}
    assert "Item already exists; duplicate write skipped" in caplog.messages


def test_a_later_upload_of_the_same_key_is_a_new_row(
    writer: ModuleType, dynamodb: Any, lambda_context: FakeLambdaContext
) -> None:
    # Given the key was uploaded once
    writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)

    # When it is uploaded again later (a new S3 event time)
    later = event_with(event_time="2026-01-16T00:00:00.000Z", version_id="second-version")
    result = writer.lambda_handler(later, lambda_context)

    # Then both uploads are recorded, each under its own UploadTimestamp
    assert result["status"] == "written"
    assert stored_item(dynamodb, "incoming/déjà vu.csv")["VersionId"] == {
        "S": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
    }
    assert stored_item(dynamodb, "incoming/déjà vu.csv", "2026-01-16T00:00:00.000Z")["VersionId"] == {
        "S": "second-version"
    }


# --- two versions with one event time ----------------------------------------------------------

FIRST_VERSION = "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
SECOND_VERSION = "Wq8b0Zr1tYfz2u8mSx7hbNcT.Ew5vKpd"


def rows_of(dynamodb: Any, filename: str) -> list[dict[str, Any]]:
    """Every row of ``filename``, in sort key order."""
    return dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="Filename = :f",
        ExpressionAttributeValues={":f": {"S": filename}},
        ConsistentRead=True,
    )["Items"]


def second_version(**file_changes: Any) -> dict[str, Any]:
    """Another version of VALID_EVENT's key with the same S3 event time, in another execution."""
    event = event_with(
        version_id=SECOND_VERSION, sequencer="0055AED6DCD90281F0", etag="9e107d9d372bb6826bd81d3542a419d6"
    )
    event["file"].update(file_changes)
    event["execution_id"] = EXECUTION_ID + "-second"
    return event


def test_two_versions_with_one_event_time_are_two_rows_the_second_tie_broken_by_its_version(
    writer: ModuleType,
    dynamodb: Any,
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given a first version was written
    first = writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)
    read_metrics()

    # When a second version of the key arrives with the same S3 event time
    second = writer.lambda_handler(second_version(), lambda_context)

    # Then both are written: the first under its event time, the second under
    # "<event time>#<version id>", which sorts right after it
    tie_broken = f"{EVENT_TIME}#{SECOND_VERSION}"
    assert first == {"status": "written", "filename": "incoming/déjà vu.csv", "upload_timestamp": EVENT_TIME}
    assert second == {"status": "written", "filename": "incoming/déjà vu.csv", "upload_timestamp": tie_broken}
    assert read_metrics() == {"RecordsWritten": 1}
    rows = rows_of(dynamodb, "incoming/déjà vu.csv")
    assert [(row["UploadTimestamp"]["S"], row["VersionId"]["S"]) for row in rows] == [
        (EVENT_TIME, FIRST_VERSION),
        (tie_broken, SECOND_VERSION),
    ]
    assert rows[1]["ExecutionId"] == {"S": EXECUTION_ID + "-second"}
    assert rows[1]["Sequencer"] == {"S": "0055AED6DCD90281F0"}


def test_redeliveries_of_both_versions_are_duplicates_and_leave_two_rows(
    writer: ModuleType,
    dynamodb: Any,
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given two versions with one event time were written
    writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)
    writer.lambda_handler(second_version(), lambda_context)
    before = rows_of(dynamodb, "incoming/déjà vu.csv")
    read_metrics()

    # When each is delivered again, the second also as a re-drive would (no sequencer)
    redeliveries = [copy.deepcopy(VALID_EVENT), second_version(), second_version(sequencer=None)]
    again = [(writer.lambda_handler(event, lambda_context), read_metrics()) for event in redeliveries]

    # Then every one is a duplicate of its own row, and the table still holds the same two rows
    tie_broken = f"{EVENT_TIME}#{SECOND_VERSION}"
    assert [(result["status"], result["upload_timestamp"], metrics) for result, metrics in again] == [
        ("duplicate", EVENT_TIME, {"DuplicateRecords": 1}),
        ("duplicate", tie_broken, {"DuplicateRecords": 1}),
        ("duplicate", tie_broken, {"DuplicateRecords": 1}),
    ]
    assert rows_of(dynamodb, "incoming/déjà vu.csv") == before


def test_unversioned_writes_with_one_event_time_are_told_apart_by_their_sequencer(
    writer: ModuleType, dynamodb: Any
) -> None:
    # Given two writes of a key while versioning was off (S3's "null" version id), one event time
    first = writer.parse_write_request(event_with(version_id="null", sequencer="00A1"))
    second = writer.parse_write_request(event_with(version_id="null", sequencer="00B2"))

    statuses = [writer.put_record(dynamodb, TABLE, request) for request in (first, second, second, first)]

    # Then the second is its own row, tie-broken by its sequencer; the repeats are duplicates
    assert [(outcome.status, outcome.upload_timestamp) for outcome in statuses] == [
        ("written", EVENT_TIME),
        ("written", f"{EVENT_TIME}#00B2"),
        ("duplicate", f"{EVENT_TIME}#00B2"),
        ("duplicate", EVENT_TIME),
    ]
    assert len(rows_of(dynamodb, "incoming/déjà vu.csv")) == 2


def test_versions_that_cannot_be_told_apart_stay_one_row(writer: ModuleType, dynamodb: Any) -> None:
    # Given a row with neither version id nor sequencer, and a write with the same key and time
    anonymous = writer.parse_write_request(event_with(version_id=None, sequencer=None))
    versioned = writer.parse_write_request(copy.deepcopy(VALID_EVENT))

    # Then nothing says they differ: the second write is a duplicate, as is one the other way round
    assert writer.put_record(dynamodb, TABLE, anonymous).status == "written"
    assert writer.put_record(dynamodb, TABLE, versioned).status == "duplicate"
    assert len(rows_of(dynamodb, "incoming/déjà vu.csv")) == 1


def test_a_condition_failure_without_the_stored_item_counts_as_the_same_version(
    writer: ModuleType, dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a backend that does not return the stored item when the condition fails
    writer.put_record(dynamodb, TABLE, writer.parse_write_request(copy.deepcopy(VALID_EVENT)))
    drop_item = lambda parsed, **_: parsed.pop("Item", None)  # noqa: E731
    dynamodb.meta.events.register("after-call.dynamodb.PutItem", drop_item)

    outcome = writer.put_record(dynamodb, TABLE, writer.parse_write_request(second_version()))

    # Then the second version cannot be told apart: a duplicate, logged as such
    assert (outcome.status, outcome.upload_timestamp) == ("duplicate", EVENT_TIME)
    assert "Condition failed without the stored item; counted as the same version" in caplog.messages
    assert len(rows_of(dynamodb, "incoming/déjà vu.csv")) == 1


def test_a_tie_broken_key_held_by_another_version_is_an_error_not_a_duplicate(
    writer: ModuleType, dynamodb: Any, lambda_context: FakeLambdaContext
) -> None:
    # Given the second version's tie-broken key holds a row of a third version (written by hand)
    writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "Filename": {"S": "incoming/déjà vu.csv"},
            "UploadTimestamp": {"S": f"{EVENT_TIME}#{SECOND_VERSION}"},
            "VersionId": {"S": "a-third-version"},
        },
    )

    with pytest.raises(RuntimeError, match="holds version 'a-third-version'") as caught:
        writer.lambda_handler(second_version(), lambda_context)

    assert type(caught.value).__name__ == "RowKeyConflictError"


def test_a_tie_broken_timestamp_sorts_between_its_event_time_and_the_next(writer: ModuleType) -> None:
    tie_broken = writer.tie_broken_timestamp("2026-01-15T10:20:30.123Z", "zzz")

    assert tie_broken == "2026-01-15T10:20:30.123Z#zzz"
    assert "2026-01-15T10:20:30.123Z" < tie_broken < "2026-01-15T10:20:30.124Z"
    assert writer.version_identity("v1", "00A1") == "v1"
    assert writer.version_identity("null", "00A1") == "00A1"
    assert writer.version_identity(None, None) is None


# --- AWS errors --------------------------------------------------------------------------------


def test_a_missing_table_error_propagates_unchanged(
    load_function: Callable[..., ModuleType],
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    writer = load_function("lambda_writer", TABLE_NAME="no-such-table")

    with pytest.raises(ClientError) as caught:
        writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)

    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert read_metrics() == {"WriteErrors": 1}


def test_throttling_propagates_so_the_state_machine_retries(
    writer: ModuleType, dynamodb: Any, lambda_context: FakeLambdaContext
) -> None:
    def throttle(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
        )

    writer.DYNAMODB.meta.events.register("before-parameter-build.dynamodb.PutItem", throttle)

    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        writer.lambda_handler(copy.deepcopy(VALID_EVENT), lambda_context)
    assert stored_item(dynamodb, "incoming/déjà vu.csv") is None


# --- invalid input -----------------------------------------------------------------------------

INVALID_EVENTS = [
    pytest.param(["not", "an", "object"], "the event must be a JSON object (got list)", id="event-list"),
    pytest.param(None, "the event must be a JSON object (got null)", id="event-null"),
    pytest.param(
        {"execution_id": EXECUTION_ID}, "'file' must be a JSON object (got null)", id="file-missing"
    ),
    pytest.param(
        {"file": "x", "execution_id": EXECUTION_ID}, "'file' must be a JSON object (got str)", id="file-str"
    ),
    pytest.param(
        event_with(bucket=REMOVE), "file.bucket must be a non-empty string (got null)", id="bucket-missing"
    ),
    pytest.param(
        event_with(bucket=""), "file.bucket must be a non-empty string (got str)", id="bucket-empty"
    ),
    pytest.param(event_with(bucket=7), "file.bucket must be a non-empty string (got int)", id="bucket-int"),
    pytest.param(event_with(key=REMOVE), "file.key must be a string (got null)", id="key-missing"),
    pytest.param(event_with(key=42), "file.key must be a string (got int)", id="key-int"),
    pytest.param(event_with(key=""), "file.key is not acceptable: key is empty", id="key-empty"),
    pytest.param(
        event_with(key="a/../b"),
        "file.key is not acceptable: key contains a '..' path segment",
        id="key-dots",
    ),
    pytest.param(event_with(key="%2E%2E/b"), "percent-decoded again", id="key-encoded-dots"),
    pytest.param(event_with(key="a\x00b"), "control character U+0000", id="key-nul"),
    pytest.param(event_with(key="/abs"), "starts with '/'", id="key-absolute"),
    pytest.param(event_with(key="a\\b"), "backslash", id="key-backslash"),
    pytest.param(event_with(key="x" * 1025), "1025 bytes", id="key-too-long"),
    pytest.param(
        event_with(event_time=REMOVE),
        "file.event_time must be an ISO 8601 string (got null)",
        id="time-missing",
    ),
    pytest.param(
        event_with(event_time=1700000000),
        "file.event_time must be an ISO 8601 string (got int)",
        id="time-int",
    ),
    pytest.param(
        event_with(event_time="yesterday"), "file.event_time 'yesterday' is not an ISO 8601", id="time-text"
    ),
    pytest.param(
        event_with(event_name=REMOVE),
        "file.event_name must be a non-empty string (got null)",
        id="event-name-missing",
    ),
    pytest.param(event_with(key="a\u202eb"), "format character U+202E", id="key-format-character"),
    pytest.param(
        event_with(size="2048"), "file.size must be an integer >= 0 or null (got str)", id="size-str"
    ),
    pytest.param(
        event_with(size=-1), "file.size must be an integer >= 0 or null (got -1)", id="size-negative"
    ),
    pytest.param(
        event_with(size=True), "file.size must be an integer >= 0 or null (got bool)", id="size-bool"
    ),
    pytest.param(
        event_with(size=1.5), "file.size must be an integer >= 0 or null (got float)", id="size-float"
    ),
    pytest.param(event_with(etag=5), "file.etag must be a string or null (got int)", id="etag-int"),
    pytest.param(
        event_with(version_id=[]), "file.version_id must be a string or null (got list)", id="version-list"
    ),
    pytest.param(
        event_with(sequencer={}), "file.sequencer must be a string or null (got dict)", id="sequencer-dict"
    ),
    pytest.param(
        {"file": VALID_EVENT["file"]}, "execution_id must be a non-empty string (got null)", id="exec-missing"
    ),
    pytest.param(
        {**VALID_EVENT, "execution_id": ""},
        "execution_id must be a non-empty string (got str)",
        id="exec-empty",
    ),
    pytest.param(
        {**VALID_EVENT, "execution_id": 9}, "execution_id must be a non-empty string (got int)", id="exec-int"
    ),
]


@pytest.mark.parametrize(("event", "problem"), INVALID_EVENTS)
def test_each_invalid_input_raises_invalid_input_error(
    writer: ModuleType,
    dynamodb: Any,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
    event: Any,
    problem: str,
) -> None:
    with pytest.raises(writer.InvalidInputError) as caught:
        writer.lambda_handler(event, lambda_context)

    # The state machine matches the error type by class name and never retries it.
    assert type(caught.value).__name__ == "InvalidInputError"
    assert problem in str(caught.value)
    assert dynamodb.scan(TableName=TABLE)["Items"] == []
    [log] = [record for record in caplog.records if record.getMessage() == "Rejected writer input"]
    assert problem in log.reason
    assert log.levelno == logging.WARNING
    assert read_metrics() == {"InvalidInputs": 1}


def test_every_problem_of_an_input_is_listed_and_the_key_named(writer: ModuleType) -> None:
    with pytest.raises(writer.InvalidInputError) as caught:
        writer.parse_write_request(event_with(key="a/./b", size=-5, etag=1))

    assert caught.value.key == "a/./b"
    assert caught.value.problems == [
        "file.key is not acceptable: key contains a '.' path segment",
        "file.size must be an integer >= 0 or null (got -5)",
        "file.etag must be a string or null (got int)",
    ]
    assert str(caught.value).startswith("invalid writer input for key 'a/./b': file.key is not acceptable")


def test_missing_optional_fields_count_as_null(writer: ModuleType) -> None:
    request = writer.parse_write_request(
        event_with(size=REMOVE, etag=REMOVE, version_id=REMOVE, sequencer=REMOVE)
    )

    assert (request.size, request.etag, request.version_id, request.sequencer) == (None, None, None, None)


def test_a_missing_table_name_is_a_configuration_error(load_function: Callable[..., ModuleType]) -> None:
    with pytest.raises(RuntimeError, match="TABLE_NAME is not set") as caught:
        load_function("lambda_writer")

    assert type(caught.value).__name__ == "ConfigurationError"
    assert type(caught.value).__module__ == "lambda_common.errors", "the one shared class"
