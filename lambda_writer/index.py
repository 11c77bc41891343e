"""Writer Lambda: one Step Functions task -> one DynamoDB item per ingested object.

parse -> validate -> act -> report:
the task input ``{"file": {...}, "execution_id": "..."}`` is validated (an invalid input raises
``InvalidInputError``, which the state machine never retries); the item is written with a
condition so that a second write of the same file name is reported as a duplicate, not an error.
Any other AWS error propagates unchanged so the state machine's retrier handles it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypedDict

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from lambda_common.key_validation import InvalidKeyError, validate_key

logger = Logger()
metrics = Metrics()

WriteStatus = Literal["written", "duplicate"]


class ConfigurationError(RuntimeError):
    """The function's environment is missing a setting it cannot run without."""


class InvalidInputError(ValueError):
    """The task input breaks the trigger -> state machine -> writer contract; retrying cannot help.

    The class name is part of the contract: Lambda reports it as the errorType and the state
    machine's first retrier lists it with MaxAttempts 0.
    """

    def __init__(self, problems: list[str], *, key: str | None = None) -> None:
        self.problems = problems
        self.key = key
        self.reason = "; ".join(problems)
        about = f" for key {key!r}" if key is not None else ""
        super().__init__(f"invalid writer input{about}: {self.reason}")


@dataclass(frozen=True)
class WriterConfig:
    table_name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WriterConfig:
        table_name = environ.get("TABLE_NAME")
        if not table_name:
            raise ConfigurationError("environment variable TABLE_NAME is not set")
        return cls(table_name=table_name)


@dataclass(frozen=True)
class WriteRequest:
    bucket: str
    key: str
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: str
    execution_id: str


class WriteResult(TypedDict):
    status: WriteStatus
    filename: str
    upload_timestamp: str


# --- parse / validate --------------------------------------------------------------------------


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_non_empty_str(name: str, value: object, problems: list[str]) -> None:
    if not isinstance(value, str) or not value:
        problems.append(f"{name} must be a non-empty string (got {_type_name(value)})")


def _check_optional_str(name: str, value: object, problems: list[str]) -> None:
    if value is not None and not isinstance(value, str):
        problems.append(f"{name} must be a string or null (got {_type_name(value)})")


def _check_key(value: object, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append(f"file.key must be a string (got {_type_name(value)})")
        return
    try:
        validate_key(value)
    except InvalidKeyError as err:
        problems.append(f"file.key is not acceptable: {err.reason}")


def _check_event_time(value: object, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append(f"file.event_time must be an ISO 8601 string (got {_type_name(value)})")
        return
    try:
        datetime.fromisoformat(value)
    except ValueError:
        problems.append(f"file.event_time {value[:64]!r} is not an ISO 8601 timestamp")


def _check_size(value: object, problems: list[str]) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"file.size must be an integer >= 0 or null (got {_type_name(value)})")
    elif value < 0:
        problems.append(f"file.size must be an integer >= 0 or null (got {value})")


def parse_request(event: object) -> WriteRequest:
    """Validate the task input; raise InvalidInputError listing every problem found."""
    if not isinstance(event, Mapping):
        raise InvalidInputError([f"the event must be a JSON object (got {_type_name(event)})"])
    file = event.get("file")
    if not isinstance(file, Mapping):
        raise InvalidInputError([f"'file' must be a JSON object (got {_type_name(file)})"])
    key = file.get("key")
    problems: list[str] = []
    _check_non_empty_str("file.bucket", file.get("bucket"), problems)
    _check_key(key, problems)
    _check_event_time(file.get("event_time"), problems)
    _check_size(file.get("size"), problems)
    for name in ("etag", "version_id", "sequencer"):
        _check_optional_str(f"file.{name}", file.get(name), problems)
    _check_non_empty_str("execution_id", event.get("execution_id"), problems)
    if problems:
        raise InvalidInputError(problems, key=key if isinstance(key, str) else None)
    return WriteRequest(
        bucket=file["bucket"],
        key=key,
        size=file.get("size"),
        etag=file.get("etag"),
        version_id=file.get("version_id"),
        sequencer=file.get("sequencer"),
        event_time=file["event_time"],
        execution_id=event["execution_id"],
    )


# --- act ---------------------------------------------------------------------------------------


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_item(request: WriteRequest, ingested_at: str) -> dict[str, dict[str, str]]:
    """The DynamoDB item (low-level attribute values); null optional attributes are omitted."""
    item: dict[str, dict[str, str]] = {
        "Filename": {"S": request.key},
        "UploadTimestamp": {"S": request.event_time},
        "Bucket": {"S": request.bucket},
        "ExecutionId": {"S": request.execution_id},
        "IngestedAt": {"S": ingested_at},
    }
    if request.size is not None:
        item["Size"] = {"N": str(request.size)}
    for attribute, value in (
        ("ETag", request.etag),
        ("VersionId", request.version_id),
        ("Sequencer", request.sequencer),
    ):
        if value is not None:
            item[attribute] = {"S": value}
    return item


def put_record(
    dynamodb: BaseClient, table_name: str, request: WriteRequest, now: Callable[[], str] = utc_now
) -> WriteStatus:
    """Write the item unless one with the same Filename exists; other errors propagate."""
    try:
        dynamodb.put_item(
            TableName=table_name,
            Item=build_item(request, ingested_at=now()),
            ConditionExpression="attribute_not_exists(Filename)",
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return "duplicate"
        raise
    return "written"


# --- report ------------------------------------------------------------------------------------


def report(request: WriteRequest, status: WriteStatus) -> WriteResult:
    log_fields: dict[str, Any] = {
        "bucket": request.bucket,
        "key": request.key,
        "execution_id": request.execution_id,
    }
    if status == "duplicate":
        logger.info("Item already exists; duplicate write skipped", extra=log_fields)
        metrics.add_metric(name="DuplicateRecords", unit=MetricUnit.Count, value=1)
    else:
        logger.info("Item written", extra=log_fields)
        metrics.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=1)
    return WriteResult(status=status, filename=request.key, upload_timestamp=request.event_time)


CONFIG: Final = WriterConfig.from_env(os.environ)
DYNAMODB: Final = boto3.client("dynamodb")


@logger.inject_lambda_context(correlation_id_path="execution_id")
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> WriteResult:
    try:
        request = parse_request(event)
    except InvalidInputError as err:
        logger.warning("Rejected writer input", extra={"key": err.key, "reason": err.reason})
        metrics.add_metric(name="InvalidInputs", unit=MetricUnit.Count, value=1)
        raise
    try:
        status = put_record(DYNAMODB, CONFIG.table_name, request)
    except ClientError as err:
        # Not handled here: the error propagates unchanged and the state machine's retrier decides.
        logger.error(
            "PutItem failed",
            extra={"key": request.key, "error_code": err.response["Error"]["Code"], "error": str(err)},
        )
        metrics.add_metric(name="WriteErrors", unit=MetricUnit.Count, value=1)
        raise
    return report(request, status)
