"""Writer Lambda: one Step Functions task -> one DynamoDB item per ingested object.

parse -> validate -> act -> report:
the task input ``{"file": {...}, "execution_id": "..."}`` is validated against the trigger ->
writer contract (``lambda_common/contract.py``; an invalid input raises ``InvalidInputError``,
which the state machine never retries); the item is written with a condition so that a second
write of the same upload is reported as a duplicate, not an error.
Any other AWS error propagates unchanged so the state machine's retrier handles it.

The row key is (Filename, UploadTimestamp), UploadTimestamp being the event time. When that key is
taken, the condition failure returns the stored item (``ReturnValuesOnConditionCheckFailure``), and
the two versions are compared by their identity (:func:`version_identity`: the version id, else
the sequencer, as the execution name does). The same version is a duplicate; another version is
written under ``<event time>#<its identity>`` (:func:`tie_broken_timestamp`), again conditionally,
so its own redelivery is a duplicate there. When either side has no identity, or the backend
returns no item, the versions cannot be told apart and the write is a duplicate, as before.
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
from lambda_common.errors import ConfigurationError
from lambda_common.naming import has_version_id

logger = Logger()
metrics = Metrics()

WriteStatus = Literal["written", "duplicate"]
Item = Mapping[str, Mapping[str, str]]

TIE_BREAK_SEPARATOR: Final = "#"
"""Between the event time and the version identity in a tie-broken UploadTimestamp. Such a value
starts with the event time, so the rows of one key still sort by event time, a tie-broken row right
after the row whose event time it shares."""


class RowKeyConflictError(RuntimeError):
    """A version's tie-broken row key holds a row of another version (one this function did not write)."""


@dataclass(frozen=True)
class WriteOutcome:
    status: WriteStatus
    upload_timestamp: str
    """The UploadTimestamp of the version's row: the event time, or the tie-broken one."""


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


def version_identity(version_id: str | None, sequencer: str | None) -> str | None:
    """What tells one version of a key from another: the version id, else the S3 sequencer (the
    execution name's rule, ``lambda_common.naming``); None when neither is known."""
    if has_version_id(version_id):
        return version_id
    return sequencer or None


def stored_identity(item: Item) -> str | None:
    """The version identity of a stored row."""
    return version_identity(item.get("VersionId", {}).get("S"), item.get("Sequencer", {}).get("S"))


def is_other_version(stored: str | None, requested: str | None) -> bool:
    """True only when both identities are known and differ; unknown counts as the same version."""
    return stored is not None and requested is not None and stored != requested


def tie_broken_timestamp(event_time: str, identity: str) -> str:
    """The UploadTimestamp of a version whose event time is another version's row key: a pure
    function of the version, so each redelivery of it finds its row."""
    return f"{event_time}{TIE_BREAK_SEPARATOR}{identity}"


def put_if_absent(dynamodb: BaseClient, table_name: str, item: Item) -> Item | None:
    """Write ``item`` unless its key is taken; return None when written, else the stored item
    (empty when the backend does not return it). Other errors propagate."""
    try:
        dynamodb.put_item(
            TableName=table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(Filename)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as err:
        if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        stored: Item | None = err.response.get("Item")
        if stored is None:
            logger.warning(
                "Condition failed without the stored item; counted as the same version",
                extra={"key": item["Filename"]["S"], "upload_timestamp": item["UploadTimestamp"]["S"]},
            )
        return stored or {}
    return None


def put_record(
    dynamodb: BaseClient, table_name: str, request: WriteRequest, now: Callable[[], str] = utc_now
) -> WriteOutcome:
    """Write the version's row once: under its event time, or, when another version holds that
    key, under the tie-broken one; a row of the same version found there is a duplicate."""
    item = build_item(request, ingested_at=now())
    requested = version_identity(request.version_id, request.sequencer)
    stored = put_if_absent(dynamodb, table_name, item)
    if stored is None:
        return WriteOutcome("written", request.event_time)
    if requested is None or not is_other_version(stored_identity(stored), requested):
        return WriteOutcome("duplicate", request.event_time)
    tie_broken = tie_broken_timestamp(request.event_time, requested)
    stored = put_if_absent(dynamodb, table_name, {**item, "UploadTimestamp": {"S": tie_broken}})
    if stored is None:
        return WriteOutcome("written", tie_broken)
    if is_other_version(stored_identity(stored), requested):
        raise RowKeyConflictError(
            f"row ({request.key!r}, {tie_broken!r}) holds version {stored_identity(stored)!r}, "
            f"not {requested!r}"
        )
    return WriteOutcome("duplicate", tie_broken)


# --- report ------------------------------------------------------------------------------------


def report(request: WriteRequest, outcome: WriteOutcome) -> WriteResult:
    log_fields: dict[str, Any] = {
        "bucket": request.bucket,
        "key": request.key,
        "execution_id": request.execution_id,
        "upload_timestamp": outcome.upload_timestamp,
        "tie_broken": outcome.upload_timestamp != request.event_time,
    }
    if outcome.status == "duplicate":
        logger.info("Item already exists; duplicate write skipped", extra=log_fields)
        metrics.add_metric(name="DuplicateRecords", unit=MetricUnit.Count, value=1)
    else:
        logger.info("Item written", extra=log_fields)
        metrics.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=1)
    return WriteResult(status=outcome.status, filename=request.key, upload_timestamp=outcome.upload_timestamp)


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
        outcome = put_record(DYNAMODB, CONFIG.table_name, request)
    except (ClientError, RowKeyConflictError) as err:
        # Not handled here: the error propagates unchanged and the state machine's retrier decides.
        code = err.response["Error"]["Code"] if isinstance(err, ClientError) else type(err).__name__
        logger.error("PutItem failed", extra={"key": request.key, "error_code": code, "error": str(err)})
        metrics.add_metric(name="WriteErrors", unit=MetricUnit.Count, value=1)
        raise
    return report(request, outcome)
