"""Writer Lambda: one Step Functions task -> one DynamoDB item per ingested object.

parse -> validate -> act -> report:
the task input ``{"file": {...}, "execution_id": "..."}`` is validated against the trigger ->
writer contract (``lambda_common/contract.py``; an invalid input raises ``InvalidInputError``,
which the state machine never retries); the item is written with a condition so that a second
write of the same upload is reported as a duplicate, not an error.
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

from lambda_common.contract import InvalidInputError, WriteRequest, parse_write_request

logger = Logger()
metrics = Metrics()

WriteStatus = Literal["written", "duplicate"]


class ConfigurationError(RuntimeError):
    """The function's environment is missing a setting it cannot run without."""


@dataclass(frozen=True)
class WriterConfig:
    table_name: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WriterConfig:
        table_name = environ.get("TABLE_NAME")
        if not table_name:
            raise ConfigurationError("environment variable TABLE_NAME is not set")
        return cls(table_name=table_name)


class WriteResult(TypedDict):
    status: WriteStatus
    filename: str
    upload_timestamp: str


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
        request = parse_write_request(event)
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
