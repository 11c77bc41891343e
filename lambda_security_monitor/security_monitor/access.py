"""AWS access: every call the scan makes, retried when throttled and read page by page.

The scan only reads: the AWS-managed DynamoDB key is found through kms:ListAliases, because
kms:DescribeKey on ``alias/aws/dynamodb`` creates that key when it does not exist yet. Every
failure that remains after the retries is an :class:`AwsCallError`.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

T = TypeVar("T")

AWS_MANAGED_DYNAMODB_KEY: Final = "alias/aws/dynamodb"

# ListBuckets returns BucketRegion (and pages) only when a parameter such as MaxBuckets is sent.
BUCKET_PAGE_SIZE: Final = 1000
TABLE_PAGE_SIZE: Final = 100
ALIAS_PAGE_SIZE: Final = 100

THROTTLING_ERROR_CODES: Final = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
"""Error codes that mean "slow down" (botocore's standard retry mode treats the same as throttling)."""

BOTOCORE_RETRIES: Final = {"mode": "standard", "total_max_attempts": 3}
"""botocore's own retries, stated rather than left to defaults: each call is tried up to 3 times
(throttling and transient errors, botocore's backoff and retry quota). :class:`RetryPolicy`
retries a call that is still throttled, with longer waits, on top of them."""


class AwsCallError(Exception):
    """One AWS call failed for good: any error but throttling, or throttling after every attempt."""

    def __init__(self, operation: str, code: str, message: str, *, attempts: int = 1) -> None:
        self.operation = operation
        self.code = code
        self.message = message
        self.attempts = attempts
        super().__init__(self.describe())

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLING_ERROR_CODES

    def describe(self) -> str:
        text = f"{self.operation} failed: {self.code}"
        if self.message:
            text = f"{text}: {self.message}"
        if self.throttled:
            text = f"{text} (still throttled after {self.attempts} attempts)"
        return text


# --- retries -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of throttled calls with exponential backoff and full jitter."""

    attempts: int = 4
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random  # full jitter spreads retries; not cryptography

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): uniform in [0, cap)."""
        cap = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))
        return self.jitter() * cap


def aws_call(operation: str, call: Callable[[], T], retry: RetryPolicy) -> T:
    """``call()``, retrying throttling errors; any failure that remains raises :class:`AwsCallError`."""
    attempt = 1
    while True:
        try:
            return call()
        except ClientError as err:
            error = err.response.get("Error", {})
            failure = AwsCallError(
                operation, error.get("Code", "Unknown"), error.get("Message", ""), attempts=attempt
            )
            if not failure.throttled or attempt >= retry.attempts:
                raise failure from err
        except BotoCoreError as err:  # connection errors, timeouts: after botocore's own retries
            raise AwsCallError(operation, type(err).__name__, str(err), attempts=attempt) from err
        retry.sleep(retry.delay(attempt))
        attempt += 1


# --- clients -----------------------------------------------------------------------------------


def client_config(concurrency: int) -> Config:
    """The clients' botocore settings: explicit retries, and a connection per concurrent check."""
    return Config(retries=dict(BOTOCORE_RETRIES), max_pool_connections=max(concurrency, 10))


@dataclass(frozen=True)
class RegionClients:
    """The clients of one scanned region, created once at load."""

    region: str
    dynamodb: BaseClient
    kms: BaseClient


@dataclass(frozen=True)
class ScanClients:
    """Every client the scan uses (boto3 clients are thread-safe once created)."""

    s3: BaseClient
    sns: BaseClient
    regions: tuple[RegionClients, ...]


def create_clients(scan_regions: tuple[str, ...], concurrency: int) -> ScanClients:
    """S3 and SNS in the function's region, DynamoDB and KMS in each scanned region."""
    botocore_config = client_config(concurrency)
    return ScanClients(
        s3=boto3.client("s3", config=botocore_config),
        sns=boto3.client("sns", config=client_config(1)),
        regions=tuple(
            RegionClients(
                region=region,
                dynamodb=boto3.client("dynamodb", region_name=region, config=botocore_config),
                kms=boto3.client("kms", region_name=region, config=botocore_config),
            )
            for region in scan_regions
        ),
    )


# --- S3 ----------------------------------------------------------------------------------------


def list_buckets(s3: BaseClient, retry: RetryPolicy) -> Iterator[tuple[str, str | None]]:
    """(name, region) of every bucket of the account, page by page (ListBuckets is global)."""
    params: dict[str, Any] = {"MaxBuckets": BUCKET_PAGE_SIZE}
    while True:
        page = aws_call("ListBuckets", functools.partial(s3.list_buckets, **params), retry)
        for bucket in page.get("Buckets", []):
            yield bucket["Name"], bucket.get("BucketRegion")
        if not page.get("ContinuationToken"):
            return
        params["ContinuationToken"] = page["ContinuationToken"]


def bucket_encryption(s3: BaseClient, name: str, retry: RetryPolicy) -> Mapping[str, Any]:
    """The bucket's ServerSideEncryptionConfiguration; empty when it has no default encryption."""
    try:
        response = aws_call(
            "GetBucketEncryption", functools.partial(s3.get_bucket_encryption, Bucket=name), retry
        )
    except AwsCallError as err:
        if err.code == "ServerSideEncryptionConfigurationNotFoundError":
            return {}
        raise
    return response.get("ServerSideEncryptionConfiguration", {})


def bucket_tags(s3: BaseClient, name: str, retry: RetryPolicy) -> dict[str, str]:
    try:
        response = aws_call("GetBucketTagging", functools.partial(s3.get_bucket_tagging, Bucket=name), retry)
    except AwsCallError as err:
        if err.code == "NoSuchTagSet":
            return {}
        raise
    return {tag["Key"]: tag.get("Value", "") for tag in response.get("TagSet", [])}


# --- DynamoDB ----------------------------------------------------------------------------------


def list_tables(dynamodb: BaseClient, retry: RetryPolicy) -> Iterator[str]:
    """Every table name of one region, page by page."""
    params: dict[str, Any] = {"Limit": TABLE_PAGE_SIZE}
    while True:
        page = aws_call("ListTables", functools.partial(dynamodb.list_tables, **params), retry)
        yield from page.get("TableNames", [])
        if not page.get("LastEvaluatedTableName"):
            return
        params["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]


def describe_table(dynamodb: BaseClient, name: str, retry: RetryPolicy) -> Mapping[str, Any]:
    """DescribeTable's ``Table``."""
    return aws_call("DescribeTable", functools.partial(dynamodb.describe_table, TableName=name), retry)[
        "Table"
    ]


def table_tags(dynamodb: BaseClient, table_arn: str, retry: RetryPolicy) -> dict[str, str]:
    tags: dict[str, str] = {}
    params: dict[str, str] = {"ResourceArn": table_arn}
    while True:
        page = aws_call(
            "ListTagsOfResource", functools.partial(dynamodb.list_tags_of_resource, **params), retry
        )
        tags.update({tag["Key"]: tag.get("Value", "") for tag in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        params["NextToken"] = page["NextToken"]


# --- KMS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagedKeyLookup:
    """Which key ARN is the region's AWS-managed DynamoDB key (None: there is none yet);
    ``error`` when that is unknown."""

    arn: str | None
    error: str | None = None


def key_arn_of_alias(alias_arn: str, target_key_id: str) -> str:
    """``arn:<partition>:kms:<region>:<account>:key/<id>`` for an alias's target key."""
    if target_key_id.startswith("arn:"):
        return target_key_id
    prefix = alias_arn.partition(":alias/")[0]
    return f"{prefix}:key/{target_key_id}"


def find_managed_key(kms: BaseClient, retry: RetryPolicy) -> ManagedKeyLookup:
    """The AWS-managed DynamoDB key of ``kms``'s region, through the read-only ListAliases.

    The alias ``alias/aws/dynamodb`` may be listed without a TargetKeyId: the key does not exist
    until a table first uses it.
    """
    params: dict[str, Any] = {"Limit": ALIAS_PAGE_SIZE}
    while True:
        try:
            page = aws_call("ListAliases", functools.partial(kms.list_aliases, **params), retry)
        except AwsCallError as err:
            return ManagedKeyLookup(arn=None, error=err.describe())
        for alias in page.get("Aliases", []):
            if alias.get("AliasName") == AWS_MANAGED_DYNAMODB_KEY:
                target = alias.get("TargetKeyId")
                return ManagedKeyLookup(arn=key_arn_of_alias(alias["AliasArn"], target) if target else None)
        if not page.get("Truncated") or not page.get("NextMarker"):
            return ManagedKeyLookup(arn=None)
        params["Marker"] = page["NextMarker"]
