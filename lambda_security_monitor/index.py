"""Security Monitor Lambda: daily check that every S3 bucket and DynamoDB table is encrypted with KMS.

parse -> validate -> act -> report:
the configuration (alert topic, regions, declared exemptions, exemption tag, concurrency) is read
once at load; every bucket of the account and every table of each configured region is classified
COMPLIANT / NON_COMPLIANT / EXEMPTED / ERROR by a bounded pool of threads (an error on one resource
never stops the scan; throttled calls are retried with backoff); each finding is logged as one JSON
line; the returned report holds counts and the findings that need attention, never the compliant
ones; one SNS summary is sent whenever there is any finding, exempted ones included.

Exemptions are declared in Terraform (``security_scan_exemptions``, passed as the JSON object
``SECURITY_SCAN_EXEMPTIONS``: bucket or table name -> reason), where changing them takes a reviewed
apply. A resource's tags exempt nothing: anyone allowed to tag a bucket or table could otherwise
silence the monitor. The exemption tag (``EXEMPTION_TAG_KEY``) is still read on non-compliant
resources that are not declared, so that such a finding says the tag is there and not declared.

Since 2023 every new bucket has SSE-S3 and every table an AWS-owned key, so "is it encrypted" is
always yes; the meaningful question is "is it KMS, and with which key". The scan only reads: the
AWS-managed DynamoDB key is found through kms:ListAliases, because kms:DescribeKey on
``alias/aws/dynamodb`` creates that key when it does not exist yet.
"""

from __future__ import annotations

import functools
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, TypedDict, TypeVar

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambda_common.alerts import (
    MAX_ALERT_BYTES,
    MAX_SUBJECT_CHARS,
    display_name,
    display_text,
    truncate_listing,
)

ResourceType = Literal["s3_bucket", "dynamodb_table"]
Status = Literal["COMPLIANT", "NON_COMPLIANT", "EXEMPTED", "ERROR"]
T = TypeVar("T")

KMS_ALGORITHMS: Final = frozenset({"aws:kms", "aws:kms:dsse"})
COMPLIANT_TABLE_SSE_STATUSES: Final = frozenset({"ENABLED", "UPDATING"})
AWS_MANAGED_DYNAMODB_KEY: Final = "alias/aws/dynamodb"
ALL_RESOURCES: Final = "*"

# ListBuckets returns BucketRegion (and pages) only when a parameter such as MaxBuckets is sent.
BUCKET_PAGE_SIZE: Final = 1000
TABLE_PAGE_SIZE: Final = 100
ALIAS_PAGE_SIZE: Final = 100

DEFAULT_EXEMPTION_TAG_KEY: Final = "SecurityScanExemption"
EXEMPTIONS_VARIABLE: Final = "security_scan_exemptions"
"""The Terraform variable that declares exemptions, as findings name it."""
MAX_TAG_KEY_CHARS: Final = 128
DEFAULT_SCAN_CONCURRENCY: Final = 16
MAX_SCAN_CONCURRENCY: Final = 64

MAX_REPORTED_FINDINGS: Final = 500
"""At most this many findings per list (non-compliant, exempted, errors) in the returned report, so
its size is bounded whatever the account holds; the counts are always complete, and every finding
is logged."""

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

logger = Logger()
metrics = Metrics()


class ConfigurationError(RuntimeError):
    """The function's environment is missing or has an unusable setting."""


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


class Finding(TypedDict):
    resource_type: ResourceType
    name: str
    region: str | None
    status: Status
    reason: str
    kms_key: str | None
    bucket_key_enabled: bool | None
    exemption: str | None
    """For EXEMPTED: the reason declared in ``security_scan_exemptions``; else None."""


class ScanCounts(TypedDict):
    scanned: int
    scanned_buckets: int
    scanned_tables: int
    compliant: int
    non_compliant: int
    exempted: int
    errors: int


class ScanReport(TypedDict):
    counts: ScanCounts
    non_compliant: list[Finding]
    exempted: list[Finding]
    errors: list[Finding]
    alert_sent: bool


# --- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorConfig:
    alert_topic_arn: str
    scan_regions: tuple[str, ...]
    exemption_tag_key: str = DEFAULT_EXEMPTION_TAG_KEY
    scan_concurrency: int = DEFAULT_SCAN_CONCURRENCY
    exemptions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Declared exemptions: bucket or table name -> reason (``security_scan_exemptions``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitorConfig:
        topic = environ.get("ALERT_TOPIC_ARN")
        if not topic:
            raise ConfigurationError("environment variable ALERT_TOPIC_ARN is not set")
        return cls(
            alert_topic_arn=topic,
            scan_regions=parse_regions(environ),
            exemption_tag_key=parse_exemption_tag_key(environ),
            scan_concurrency=parse_scan_concurrency(environ),
            exemptions=parse_scan_exemptions(environ),
        )

    @property
    def exemption_rules(self) -> ExemptionRules:
        return ExemptionRules(declared=self.exemptions, tag_key=self.exemption_tag_key)


def parse_regions(environ: Mapping[str, str]) -> tuple[str, ...]:
    """SCAN_REGIONS (comma-separated, duplicates dropped) or, when empty, the function's own region."""
    regions = dict.fromkeys(part.strip() for part in environ.get("SCAN_REGIONS", "").split(","))
    regions.pop("", None)
    if regions:
        return tuple(regions)
    own_region = environ.get("AWS_REGION")
    if not own_region:
        raise ConfigurationError("SCAN_REGIONS is empty and AWS_REGION is not set")
    return (own_region,)


def parse_scan_concurrency(environ: Mapping[str, str]) -> int:
    """SCAN_CONCURRENCY: how many checks run at once, 1 to 64; 16 when unset or empty."""
    text = environ.get("SCAN_CONCURRENCY", "").strip()
    if not text:
        return DEFAULT_SCAN_CONCURRENCY
    if not text.isdecimal() or not 1 <= int(text) <= MAX_SCAN_CONCURRENCY:
        raise ConfigurationError(
            f"SCAN_CONCURRENCY must be a whole number from 1 to {MAX_SCAN_CONCURRENCY}, got {text!r}"
        )
    return int(text)


def parse_exemption_tag_key(environ: Mapping[str, str]) -> str:
    """EXEMPTION_TAG_KEY: the tag reported on undeclared resources (it exempts nothing);
    SecurityScanExemption when unset or empty."""
    key = environ.get("EXEMPTION_TAG_KEY", "").strip() or DEFAULT_EXEMPTION_TAG_KEY
    if len(key) > MAX_TAG_KEY_CHARS:
        raise ConfigurationError(f"EXEMPTION_TAG_KEY is {len(key)} characters; a tag key has at most 128")
    return key


def parse_scan_exemptions(environ: Mapping[str, str]) -> Mapping[str, str]:
    """SECURITY_SCAN_EXEMPTIONS: a JSON object, bucket or table name -> the reason it is exempted;
    none when unset or empty. Anything else (not JSON, not an object, an empty name, a reason that
    is not a string or is blank) is a :class:`ConfigurationError`: a typo must not exempt or hide."""
    text = environ.get("SECURITY_SCAN_EXEMPTIONS", "").strip()
    if not text:
        return MappingProxyType({})
    try:
        declared = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigurationError(f"SECURITY_SCAN_EXEMPTIONS is not valid JSON: {err}") from err
    if not isinstance(declared, dict):
        raise ConfigurationError(
            f"SECURITY_SCAN_EXEMPTIONS must be a JSON object of name -> reason, got {type(declared).__name__}"
        )
    for name, reason in declared.items():
        if not name.strip():
            raise ConfigurationError("SECURITY_SCAN_EXEMPTIONS has an empty resource name")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError(
                f"SECURITY_SCAN_EXEMPTIONS: the reason for {name!r} must be a non-empty string, got {reason!r}"
            )
    return MappingProxyType(dict(declared))


# --- AWS calls: throttling retried with backoff -------------------------------------------------


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


def _finding(
    resource_type: ResourceType,
    name: str,
    region: str | None,
    status: Status,
    reason: str,
    kms_key: str | None = None,
    bucket_key_enabled: bool | None = None,
) -> Finding:
    return Finding(
        resource_type=resource_type,
        name=name,
        region=region,
        status=status,
        reason=reason,
        kms_key=kms_key,
        bucket_key_enabled=bucket_key_enabled,
        exemption=None,
    )


# --- exemptions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExemptionRules:
    """What exempts a non-compliant resource: being named in ``declared`` (and nothing else).

    A name exempts every bucket and every table of that name (in every scanned region).
    ``tag_key`` is only read to report a resource that carries it without being declared.
    """

    declared: Mapping[str, str]
    tag_key: str = DEFAULT_EXEMPTION_TAG_KEY

    def reason_for(self, name: str) -> str | None:
        return self.declared.get(name)


def _with_note(finding: Finding, note: str) -> Finding:
    return Finding(**{**finding, "reason": f"{finding['reason']}; {note}"})


def undeclared_tag_note(tag_key: str, value: str) -> str:
    """What a non-compliant finding says about an exemption tag that is not backed by a declaration
    (the value is quoted and escaped: whoever tagged the resource chose it)."""
    return f"tagged {tag_key}={display_text(value)} but not declared in {EXEMPTIONS_VARIABLE}"


def apply_exemption(
    finding: Finding, rules: ExemptionRules, read_tags: Callable[[], Mapping[str, str]]
) -> Finding:
    """A NON_COMPLIANT finding, EXEMPTED (with the declared reason) when its name is declared.

    Otherwise it stays NON_COMPLIANT; its tags are read only to say so when it carries the
    exemption tag (which exempts nothing), or that they could not be read.
    """
    declared_reason = rules.reason_for(finding["name"])
    if declared_reason is not None:
        return Finding(**{**finding, "status": "EXEMPTED", "exemption": declared_reason})
    try:
        tags = read_tags()
    except AwsCallError as err:
        return _with_note(finding, f"exemption tag {rules.tag_key} could not be read: {err.describe()}")
    value = tags.get(rules.tag_key)
    if value is None:
        return finding
    return _with_note(finding, undeclared_tag_note(rules.tag_key, value))


def bucket_tags(s3: BaseClient, name: str, retry: RetryPolicy) -> dict[str, str]:
    try:
        response = aws_call("GetBucketTagging", functools.partial(s3.get_bucket_tagging, Bucket=name), retry)
    except AwsCallError as err:
        if err.code == "NoSuchTagSet":
            return {}
        raise
    return {tag["Key"]: tag.get("Value", "") for tag in response.get("TagSet", [])}


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


# --- S3 ----------------------------------------------------------------------------------------


def classify_bucket_encryption(name: str, region: str | None, configuration: Mapping[str, Any]) -> Finding:
    """Classify a GetBucketEncryption ServerSideEncryptionConfiguration."""
    for rule in configuration.get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault")
        if not default:
            continue
        algorithm = default.get("SSEAlgorithm")
        bucket_key = bool(rule.get("BucketKeyEnabled", False))
        if algorithm in KMS_ALGORITHMS:
            key_id = default.get("KMSMasterKeyID")
            key_text = f"key {key_id}" if key_id else "the AWS-managed key aws/s3"
            bucket_key_text = "enabled" if bucket_key else "disabled"
            return _finding(
                "s3_bucket",
                name,
                region,
                "COMPLIANT",
                f"{algorithm} with {key_text}, S3 Bucket Key {bucket_key_text}",
                kms_key=key_id,
                bucket_key_enabled=bucket_key,
            )
        if algorithm == "AES256":
            return _finding("s3_bucket", name, region, "NON_COMPLIANT", "SSE-S3, not KMS")
        return _finding(
            "s3_bucket", name, region, "NON_COMPLIANT", f"default encryption {algorithm!r} is not KMS"
        )
    return _finding("s3_bucket", name, region, "NON_COMPLIANT", "no default encryption")


def check_bucket(
    s3: BaseClient, name: str, region: str | None, rules: ExemptionRules, retry: RetryPolicy
) -> Finding:
    try:
        response = aws_call(
            "GetBucketEncryption", functools.partial(s3.get_bucket_encryption, Bucket=name), retry
        )
    except AwsCallError as err:
        if err.code != "ServerSideEncryptionConfigurationNotFoundError":
            return _finding("s3_bucket", name, region, "ERROR", err.describe())
        finding = _finding("s3_bucket", name, region, "NON_COMPLIANT", "no default encryption")
    else:
        finding = classify_bucket_encryption(
            name, region, response.get("ServerSideEncryptionConfiguration", {})
        )
    if finding["status"] != "NON_COMPLIANT":
        return finding
    return apply_exemption(finding, rules, functools.partial(bucket_tags, s3, name, retry))


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


# --- DynamoDB ----------------------------------------------------------------------------------


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


class OnceCache:
    """Calls ``compute`` at most once, however many threads ask; later calls get its result."""

    def __init__(self, compute: Callable[[], ManagedKeyLookup]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._value: ManagedKeyLookup | None = None

    def __call__(self) -> ManagedKeyLookup:
        with self._lock:
            if self._value is None:
                self._value = self._compute()
            return self._value


def classify_table(
    name: str, region: str, table: Mapping[str, Any], managed_key: Callable[[], ManagedKeyLookup]
) -> Finding:
    """Classify a DescribeTable ``Table``; ``managed_key`` is called only for KMS tables."""
    sse = table.get("SSEDescription")
    if not sse:
        return _finding(
            "dynamodb_table", name, region, "NON_COMPLIANT", "encrypted with an AWS-owned key, not KMS"
        )
    key_arn = sse.get("KMSMasterKeyArn")
    sse_type, sse_status = sse.get("SSEType"), sse.get("Status")
    if sse_type != "KMS" or sse_status not in COMPLIANT_TABLE_SSE_STATUSES:
        return _finding(
            "dynamodb_table",
            name,
            region,
            "NON_COMPLIANT",
            f"server-side encryption is type {sse_type}, status {sse_status} (expected KMS, ENABLED)",
            kms_key=key_arn,
        )
    lookup = managed_key()
    if lookup.error is not None:
        reason = f"KMS; could not tell whether the key is {AWS_MANAGED_DYNAMODB_KEY} ({lookup.error})"
    elif key_arn is not None and key_arn == lookup.arn:
        reason = f"KMS with the AWS-managed key {AWS_MANAGED_DYNAMODB_KEY}"
    else:
        reason = "KMS with a customer managed key"
    return _finding("dynamodb_table", name, region, "COMPLIANT", reason, kms_key=key_arn)


def check_table(
    clients: RegionClients,
    name: str,
    managed_key: Callable[[], ManagedKeyLookup],
    rules: ExemptionRules,
    retry: RetryPolicy,
) -> Finding:
    try:
        table = aws_call(
            "DescribeTable", functools.partial(clients.dynamodb.describe_table, TableName=name), retry
        )["Table"]
    except AwsCallError as err:
        return _finding("dynamodb_table", name, clients.region, "ERROR", err.describe())
    finding = classify_table(name, clients.region, table, managed_key)
    if finding["status"] != "NON_COMPLIANT":
        return finding
    read_tags = functools.partial(table_tags, clients.dynamodb, table["TableArn"], retry)
    return apply_exemption(finding, rules, read_tags)


def list_tables(dynamodb: BaseClient, retry: RetryPolicy) -> Iterator[str]:
    """Every table name of one region, page by page."""
    params: dict[str, Any] = {"Limit": TABLE_PAGE_SIZE}
    while True:
        page = aws_call("ListTables", functools.partial(dynamodb.list_tables, **params), retry)
        yield from page.get("TableNames", [])
        if not page.get("LastEvaluatedTableName"):
            return
        params["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]


# --- the scan ----------------------------------------------------------------------------------


@dataclass
class ScanTally:
    """What the scan found: compliant resources only counted, the others kept for the report."""

    scanned_buckets: int = 0
    scanned_tables: int = 0
    compliant: int = 0
    non_compliant: list[Finding] = field(default_factory=list)
    exempted: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        log_finding(finding)
        if finding["status"] == "COMPLIANT":
            self.compliant += 1
        elif finding["status"] == "NON_COMPLIANT":
            self.non_compliant.append(finding)
        elif finding["status"] == "EXEMPTED":
            self.exempted.append(finding)
        else:
            self.errors.append(finding)

    @property
    def needs_alert(self) -> bool:
        """Any finding at all: an exemption is reported too, so that none goes unseen."""
        return bool(self.non_compliant or self.errors or self.exempted)

    def unused_exemptions(self, declared: Mapping[str, str]) -> list[str]:
        """Declared names that exempted nothing in this scan (compliant, errored or absent)."""
        used = {finding["name"] for finding in self.exempted}
        return sorted(set(declared) - used)


def submit_bucket_checks(
    pool: ThreadPoolExecutor, s3: BaseClient, config: MonitorConfig, retry: RetryPolicy, tally: ScanTally
) -> list[Future[Finding]]:
    """List the buckets here, check each in the pool; a listing failure is an ERROR finding."""
    futures = []
    try:
        for name, region in list_buckets(s3, retry):
            tally.scanned_buckets += 1
            futures.append(pool.submit(check_bucket, s3, name, region, config.exemption_rules, retry))
    except AwsCallError as err:
        tally.add(_finding("s3_bucket", ALL_RESOURCES, None, "ERROR", err.describe()))
    return futures


def submit_table_checks(
    pool: ThreadPoolExecutor,
    clients: RegionClients,
    config: MonitorConfig,
    retry: RetryPolicy,
    tally: ScanTally,
) -> list[Future[Finding]]:
    """List one region's tables here, check each in the pool; the AWS-managed key is looked up at
    most once per region, when a table uses KMS."""
    managed_key = OnceCache(functools.partial(find_managed_key, clients.kms, retry))
    futures = []
    try:
        for name in list_tables(clients.dynamodb, retry):
            tally.scanned_tables += 1
            futures.append(
                pool.submit(check_table, clients, name, managed_key, config.exemption_rules, retry)
            )
    except AwsCallError as err:
        tally.add(_finding("dynamodb_table", ALL_RESOURCES, clients.region, "ERROR", err.describe()))
    return futures


def scan(clients: ScanClients, config: MonitorConfig, retry: RetryPolicy) -> ScanTally:
    """Check every bucket and table with at most ``config.scan_concurrency`` checks at once.

    This thread lists (so checks start while later pages are fetched); the pool checks.
    """
    tally = ScanTally()
    with ThreadPoolExecutor(max_workers=config.scan_concurrency, thread_name_prefix="scan") as pool:
        futures = submit_bucket_checks(pool, clients.s3, config, retry, tally)
        for region_clients in clients.regions:
            futures.extend(submit_table_checks(pool, region_clients, config, retry, tally))
        for future in futures:
            tally.add(future.result())
    return tally


# --- report ------------------------------------------------------------------------------------


def log_finding(finding: Finding) -> None:
    if finding["status"] == "COMPLIANT":
        logger.info("Compliant resource", extra={"finding": finding})
    elif finding["status"] == "EXEMPTED":
        logger.info("Exempted resource", extra={"finding": finding})
    elif finding["status"] == "NON_COMPLIANT":
        logger.warning("Non-compliant resource", extra={"finding": finding})
    else:
        logger.error("Could not check resource", extra={"finding": finding})


def _sort_key(finding: Finding) -> tuple[str, str, str]:
    return finding["resource_type"], finding["region"] or "", finding["name"]


def build_report(tally: ScanTally) -> ScanReport:
    """Counts, and at most :data:`MAX_REPORTED_FINDINGS` of each kind of finding, in a stable order."""
    counts = ScanCounts(
        scanned=tally.scanned_buckets + tally.scanned_tables,
        scanned_buckets=tally.scanned_buckets,
        scanned_tables=tally.scanned_tables,
        compliant=tally.compliant,
        non_compliant=len(tally.non_compliant),
        exempted=len(tally.exempted),
        errors=len(tally.errors),
    )
    return ScanReport(
        counts=counts,
        non_compliant=sorted(tally.non_compliant, key=_sort_key)[:MAX_REPORTED_FINDINGS],
        exempted=sorted(tally.exempted, key=_sort_key)[:MAX_REPORTED_FINDINGS],
        errors=sorted(tally.errors, key=_sort_key)[:MAX_REPORTED_FINDINGS],
        alert_sent=False,
    )


def format_finding(finding: Finding) -> str:
    region = finding["region"] or "region unknown"
    resource = f"{finding['resource_type']} {display_name(finding['name'])} ({region})"
    line = f"- [{finding['status']}] {resource}: {finding['reason']}"
    if finding["exemption"] is not None:
        line += f"; exempted by {EXEMPTIONS_VARIABLE}: {display_text(finding['exemption'])}"
    return line + "\n"


def build_alert(
    tally: ScanTally, regions: tuple[str, ...], max_bytes: int = MAX_ALERT_BYTES
) -> tuple[str, str]:
    """Subject and plain-text body of the summary alert: problems first, then the exemptions."""
    counts = (
        f"{len(tally.non_compliant)} non-compliant, {len(tally.errors)} error(s), "
        f"{len(tally.exempted)} exempted"
    )
    subject = f"Security monitor: {counts}"[:MAX_SUBJECT_CHARS]
    header = (
        f"Encryption scan found {counts}.\n"
        f"Scanned {tally.scanned_buckets} S3 bucket(s) and {tally.scanned_tables} DynamoDB "
        f"table(s) in {', '.join(regions)}. Every bucket and table must use KMS encryption.\n\n"
    )
    listed = [
        *sorted(tally.non_compliant, key=_sort_key),
        *sorted(tally.errors, key=_sort_key),
        *sorted(tally.exempted, key=_sort_key),
    ]
    return subject, truncate_listing(header, [format_finding(finding) for finding in listed], max_bytes)


def publish_alert(sns: BaseClient, topic_arn: str, tally: ScanTally, regions: tuple[str, ...]) -> None:
    subject, message = build_alert(tally, regions)
    response = sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    logger.info("Alert sent", extra={"message_id": response.get("MessageId")})


def record_metrics(counts: ScanCounts) -> None:
    for name, value in (
        ("CompliantResources", counts["compliant"]),
        ("NonCompliantResources", counts["non_compliant"]),
        ("ExemptedResources", counts["exempted"]),
        ("ScanErrors", counts["errors"]),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def run_scan(clients: ScanClients, config: MonitorConfig, retry: RetryPolicy) -> ScanReport:
    tally = scan(clients, config, retry)
    unused = tally.unused_exemptions(config.exemptions)
    if unused:
        logger.warning(
            "Declared exemptions matched no non-compliant resource (compliant, errored or absent)",
            extra={"unused_exemptions": unused},
        )
    report = build_report(tally)
    if tally.needs_alert:
        publish_alert(clients.sns, config.alert_topic_arn, tally, config.scan_regions)
        report["alert_sent"] = True
    record_metrics(report["counts"])
    return report


def create_clients(config: MonitorConfig) -> ScanClients:
    botocore_config = client_config(config.scan_concurrency)
    return ScanClients(
        s3=boto3.client("s3", config=botocore_config),
        sns=boto3.client("sns", config=client_config(1)),
        regions=tuple(
            RegionClients(
                region=region,
                dynamodb=boto3.client("dynamodb", region_name=region, config=botocore_config),
                kms=boto3.client("kms", region_name=region, config=botocore_config),
            )
            for region in config.scan_regions
        ),
    )


CONFIG: Final = MonitorConfig.from_env(os.environ)
CLIENTS: Final = create_clients(CONFIG)
RETRY = RetryPolicy()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> ScanReport:
    report = run_scan(CLIENTS, CONFIG, RETRY)
    logger.info("Scan complete", extra={"counts": report["counts"], "alert_sent": report["alert_sent"]})
    return report
