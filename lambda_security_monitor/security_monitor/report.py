"""Reporting: the report the handler returns, one log line per finding, the summary alert and the
metrics. The logger, metrics and SNS client are the handler's, passed in.
"""

from __future__ import annotations

from typing import Final, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.client import BaseClient

from lambda_common.alerts import (
    MAX_ALERT_BYTES,
    MAX_SUBJECT_CHARS,
    display_name,
    display_text,
    truncate_listing,
)
from security_monitor.classify import EXEMPTIONS_VARIABLE, Finding
from security_monitor.scan import ScanTally

MAX_REPORTED_FINDINGS: Final = 500
"""At most this many findings per list (non-compliant, exempted, errors) in the returned report, so
its size is bounded whatever the account holds; the counts are always complete, and every finding
is logged."""


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


def log_finding(logger: Logger, finding: Finding) -> None:
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


def publish_alert(
    logger: Logger, sns: BaseClient, topic_arn: str, tally: ScanTally, regions: tuple[str, ...]
) -> None:
    subject, message = build_alert(tally, regions)
    response = sns.publish(TopicArn=topic_arn, Subject=subject, Message=message)
    logger.info("Alert sent", extra={"message_id": response.get("MessageId")})


def record_metrics(metrics: Metrics, counts: ScanCounts) -> None:
    for name, value in (
        ("CompliantResources", counts["compliant"]),
        ("NonCompliantResources", counts["non_compliant"]),
        ("ExemptedResources", counts["exempted"]),
        ("ScanErrors", counts["errors"]),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
