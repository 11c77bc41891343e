"""Security Monitor Lambda: daily check that every S3 bucket and DynamoDB table is encrypted with KMS.

parse -> validate -> act -> report:
the configuration (alert topic, regions) is read once at load; every bucket of the account and every
table of each configured region is classified COMPLIANT / NON_COMPLIANT / ERROR (an error on one
resource never stops the scan); each finding is logged as one JSON line, and one SNS summary is sent
when anything is non-compliant or errored.

Since 2023 every new bucket has SSE-S3 and every table an AWS-owned key, so "is it encrypted" is
always yes; the meaningful question is "is it KMS, and with which key".
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from lambda_common.alerts import MAX_ALERT_BYTES, MAX_SUBJECT_CHARS, truncate_listing

ResourceType = Literal["s3_bucket", "dynamodb_table"]
Status = Literal["COMPLIANT", "NON_COMPLIANT", "ERROR"]

KMS_ALGORITHMS: Final = frozenset({"aws:kms", "aws:kms:dsse"})
COMPLIANT_TABLE_SSE_STATUSES: Final = frozenset({"ENABLED", "UPDATING"})
AWS_MANAGED_DYNAMODB_KEY: Final = "alias/aws/dynamodb"
ALL_RESOURCES: Final = "*"

# ListBuckets returns BucketRegion (and pages) only when a parameter such as MaxBuckets is sent.
BUCKET_PAGE_SIZE: Final = 1000

logger = Logger()
metrics = Metrics()


class ConfigurationError(RuntimeError):
    """The function's environment is missing or has an unusable setting."""


class Finding(TypedDict):
    resource_type: ResourceType
    name: str
    region: str | None
    status: Status
    reason: str
    kms_key: str | None
    bucket_key_enabled: bool | None


class ScanReport(TypedDict):
    scanned_buckets: int
    scanned_tables: int
    compliant: list[Finding]
    non_compliant: list[Finding]
    errors: list[Finding]
    alert_sent: bool


@dataclass(frozen=True)
class MonitorConfig:
    alert_topic_arn: str
    scan_regions: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitorConfig:
        topic = environ.get("ALERT_TOPIC_ARN")
        if not topic:
            raise ConfigurationError("environment variable ALERT_TOPIC_ARN is not set")
        return cls(alert_topic_arn=topic, scan_regions=parse_regions(environ))


@dataclass(frozen=True)
class RegionClients:
    """The clients of one scanned region, created once at load."""

    region: str
    dynamodb: BaseClient
    kms: BaseClient


@dataclass(frozen=True)
class ManagedKeyLookup:
    """Which key ARN is the region's AWS-managed DynamoDB key; ``error`` when that is unknown."""

    arn: str | None
    error: str | None = None


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
    )


def _error_text(operation: str, err: ClientError) -> str:
    error = err.response.get("Error", {})
    message = error.get("Message")
    text = f"{operation} failed: {error.get('Code', 'Unknown')}"
    return f"{text}: {message}" if message else text


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


def check_bucket(s3: BaseClient, name: str, region: str | None) -> Finding:
    try:
        response = s3.get_bucket_encryption(Bucket=name)
    except ClientError as err:
        if err.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError":
            return _finding("s3_bucket", name, region, "NON_COMPLIANT", "no default encryption")
        return _finding("s3_bucket", name, region, "ERROR", _error_text("GetBucketEncryption", err))
    return classify_bucket_encryption(name, region, response.get("ServerSideEncryptionConfiguration", {}))


def scan_buckets(s3: BaseClient) -> tuple[int, list[Finding]]:
    """Every bucket of the account (ListBuckets is global; GetBucketEncryption follows redirects)."""
    findings: list[Finding] = []
    scanned = 0
    pages = s3.get_paginator("list_buckets").paginate(PaginationConfig={"PageSize": BUCKET_PAGE_SIZE})
    try:
        for page in pages:
            for bucket in page.get("Buckets", []):
                scanned += 1
                findings.append(check_bucket(s3, bucket["Name"], bucket.get("BucketRegion")))
    except ClientError as err:
        findings.append(_finding("s3_bucket", ALL_RESOURCES, None, "ERROR", _error_text("ListBuckets", err)))
    return scanned, findings


# --- DynamoDB ----------------------------------------------------------------------------------


def lookup_managed_key(kms: BaseClient) -> ManagedKeyLookup:
    try:
        response = kms.describe_key(KeyId=AWS_MANAGED_DYNAMODB_KEY)
    except ClientError as err:
        if err.response["Error"]["Code"] == "NotFoundException":
            return ManagedKeyLookup(arn=None)
        return ManagedKeyLookup(arn=None, error=err.response["Error"]["Code"])
    return ManagedKeyLookup(arn=response["KeyMetadata"]["Arn"])


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
        reason = (
            f"KMS; could not tell whether the key is {AWS_MANAGED_DYNAMODB_KEY} "
            f"(kms:DescribeKey failed: {lookup.error})"
        )
    elif key_arn is not None and key_arn == lookup.arn:
        reason = f"KMS with the AWS-managed key {AWS_MANAGED_DYNAMODB_KEY}"
    else:
        reason = "KMS with a customer managed key"
    return _finding("dynamodb_table", name, region, "COMPLIANT", reason, kms_key=key_arn)


def scan_tables(clients: RegionClients) -> tuple[int, list[Finding]]:
    """Every table of one region; the AWS-managed key is looked up at most once, when a table uses KMS."""
    findings: list[Finding] = []
    scanned = 0
    managed_key = functools.cache(functools.partial(lookup_managed_key, clients.kms))
    try:
        for page in clients.dynamodb.get_paginator("list_tables").paginate():
            for name in page.get("TableNames", []):
                scanned += 1
                try:
                    table = clients.dynamodb.describe_table(TableName=name)["Table"]
                except ClientError as err:
                    findings.append(
                        _finding(
                            "dynamodb_table", name, clients.region, "ERROR", _error_text("DescribeTable", err)
                        )
                    )
                    continue
                findings.append(classify_table(name, clients.region, table, managed_key))
    except ClientError as err:
        findings.append(
            _finding("dynamodb_table", ALL_RESOURCES, clients.region, "ERROR", _error_text("ListTables", err))
        )
    return scanned, findings


# --- report ------------------------------------------------------------------------------------


def log_finding(finding: Finding) -> None:
    if finding["status"] == "COMPLIANT":
        logger.info("Compliant resource", extra={"finding": finding})
    elif finding["status"] == "NON_COMPLIANT":
        logger.warning("Non-compliant resource", extra={"finding": finding})
    else:
        logger.error("Could not check resource", extra={"finding": finding})


def format_finding(finding: Finding) -> str:
    region = finding["region"] or "region unknown"
    resource = f"{finding['resource_type']} {finding['name']} ({region})"
    return f"- [{finding['status']}] {resource}: {finding['reason']}\n"


def build_alert(
    report: ScanReport, regions: Iterable[str], max_bytes: int = MAX_ALERT_BYTES
) -> tuple[str, str]:
    """Subject and plain-text body of the summary alert."""
    problems = report["non_compliant"] + report["errors"]
    counts = f"{len(report['non_compliant'])} non-compliant, {len(report['errors'])} error(s)"
    subject = f"Security monitor: {counts}"[:MAX_SUBJECT_CHARS]
    header = (
        f"Encryption scan found {counts}.\n"
        f"Scanned {report['scanned_buckets']} S3 bucket(s) and {report['scanned_tables']} DynamoDB "
        f"table(s) in {', '.join(regions)}. Every bucket and table must use KMS encryption.\n\n"
    )
    return subject, truncate_listing(header, [format_finding(finding) for finding in problems], max_bytes)


def publish_alert(sns: BaseClient, topic_arn: str, report: ScanReport, regions: Iterable[str]) -> None:
    subject, message = build_alert(report, regions)
    response = sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    logger.info("Alert sent", extra={"message_id": response.get("MessageId")})


def record_metrics(report: ScanReport) -> None:
    for name, value in (
        ("CompliantResources", len(report["compliant"])),
        ("NonCompliantResources", len(report["non_compliant"])),
        ("ScanErrors", len(report["errors"])),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def run_scan(
    s3: BaseClient, region_clients: Iterable[RegionClients], sns: BaseClient, config: MonitorConfig
) -> ScanReport:
    scanned_buckets, findings = scan_buckets(s3)
    scanned_tables = 0
    for clients in region_clients:
        scanned, table_findings = scan_tables(clients)
        scanned_tables += scanned
        findings.extend(table_findings)
    for finding in findings:
        log_finding(finding)
    report = ScanReport(
        scanned_buckets=scanned_buckets,
        scanned_tables=scanned_tables,
        compliant=[finding for finding in findings if finding["status"] == "COMPLIANT"],
        non_compliant=[finding for finding in findings if finding["status"] == "NON_COMPLIANT"],
        errors=[finding for finding in findings if finding["status"] == "ERROR"],
        alert_sent=False,
    )
    if report["non_compliant"] or report["errors"]:
        publish_alert(sns, config.alert_topic_arn, report, config.scan_regions)
        report["alert_sent"] = True
    record_metrics(report)
    return report


CONFIG: Final = MonitorConfig.from_env(os.environ)
S3: Final = boto3.client("s3")
SNS: Final = boto3.client("sns")
REGION_CLIENTS: Final = tuple(
    RegionClients(
        region=region,
        dynamodb=boto3.client("dynamodb", region_name=region),
        kms=boto3.client("kms", region_name=region),
    )
    for region in CONFIG.scan_regions
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> ScanReport:
    report = run_scan(S3, REGION_CLIENTS, SNS, CONFIG)
    logger.info(
        "Scan complete",
        extra={
            "scanned_buckets": report["scanned_buckets"],
            "scanned_tables": report["scanned_tables"],
            "non_compliant": len(report["non_compliant"]),
            "errors": len(report["errors"]),
            "alert_sent": report["alert_sent"],
        },
    )
    return report
