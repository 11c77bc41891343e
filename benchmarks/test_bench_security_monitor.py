"""Security monitor benchmarks.

- Under moto, in-process: classify 50 S3 buckets and 50 DynamoDB tables. One invocation =
  ListBuckets + 50 GetBucketEncryption (+ GetBucketTagging for the 15 non-compliant), ListTables +
  50 DescribeTable (+ ListTagsOfResource for the 15 non-compliant), one kms:ListAliases (the
  AWS-managed key, looked up once), 100 finding log lines and one SNS alert. moto's CPU dominates
  here, so the thread pool gains little: this measures the code path, not the concurrency.
- Against a simulated account whose every call takes 50 ms (``bench_support.SimulatedAccount``):
  1,000 buckets + 1,000 tables scanned concurrently (SCAN_CONCURRENCY 16) and one at a time
  (SCAN_CONCURRENCY=1); the ratio is recorded in ``extra_info`` as
  ``monitor_concurrent_over_serial`` (the goal is >= 10). No timing is asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from bench_support import SimulatedAccount, calls_made, speedup_summary, timed_scan

MONITOR_ROUNDS = 10

# (how many, encryption configuration factory) -> expected status
BUCKET_KINDS = (
    (20, "kms-cmk", "COMPLIANT"),
    (10, "kms-aws-managed", "COMPLIANT"),
    (5, "dsse-cmk", "COMPLIANT"),
    (10, "sse-s3", "NON_COMPLIANT"),
    (5, "none", "NON_COMPLIANT"),
)
TABLE_KINDS = (
    (20, "kms-cmk", "COMPLIANT"),
    (15, "kms-aws-managed", "COMPLIANT"),
    (15, "aws-owned", "NON_COMPLIANT"),
)


def bucket_encryption(kind: str, key_arn: str) -> dict[str, Any] | None:
    rules: dict[str, dict[str, Any] | None] = {
        "kms-cmk": {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True,
        },
        "kms-aws-managed": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}},
        "dsse-cmk": {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse", "KMSMasterKeyID": key_arn}
        },
        "sse-s3": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}},
        "none": None,
    }
    rule = rules[kind]
    return None if rule is None else {"Rules": [rule]}


def table_sse(kind: str, key_arn: str) -> dict[str, Any] | None:
    return {
        "kms-cmk": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        "kms-aws-managed": {"Enabled": True, "SSEType": "KMS"},
        "aws-owned": None,
    }[kind]


@pytest.fixture
def account(aws: Any) -> dict[str, str]:
    """50 buckets and 50 tables; returns resource name -> expected status."""
    key_arn = aws.client("kms").create_key(Description="ingestion")["KeyMetadata"]["Arn"]
    s3 = aws.client("s3")
    dynamodb = aws.client("dynamodb")
    expected: dict[str, str] = {}
    for count, kind, status in BUCKET_KINDS:
        for index in range(count):
            name = f"bench-{kind}-{index:02d}"
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": aws.region})
            encryption = bucket_encryption(kind, key_arn)
            if encryption is not None:
                s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)
            expected[name] = status
    for count, kind, status in TABLE_KINDS:
        for index in range(count):
            name = f"bench-{kind}-table-{index:02d}"
            sse = table_sse(kind, key_arn)
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": "Filename", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "Filename", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                **({"SSESpecification": sse} if sse is not None else {}),
            )
            expected[name] = status
    assert len(expected) == 100
    return expected


@pytest.fixture
def monitor(load_function: Callable[..., ModuleType], account: dict[str, str], aws: Any) -> ModuleType:
    topic_arn = aws.client("sns").create_topic(Name="pipeline-alerts")["TopicArn"]
    return load_function("lambda_security_monitor", ALERT_TOPIC_ARN=topic_arn, SCAN_REGIONS=aws.region)


def reported(report: dict[str, Any]) -> dict[str, str]:
    """Name -> status of every finding the report lists (it lists no compliant resource)."""
    findings = report["non_compliant"] + report["exempted"] + report["errors"]
    return {finding["name"]: finding["status"] for finding in findings}


def test_monitor_classifies_50_buckets_and_50_tables(
    benchmark: Any,
    per_unit: Callable[[int, str], None],
    monitor: ModuleType,
    account: dict[str, str],
    lambda_context: Any,
) -> None:
    benchmark.group = "security monitor: lambda_handler under moto, 50 buckets + 50 tables"
    reports: list[dict[str, Any]] = []

    def scan(event: dict[str, Any], context: Any) -> dict[str, Any]:
        report = monitor.lambda_handler(event, context)
        reports.append(report)
        return report

    benchmark.pedantic(scan, args=({}, lambda_context), rounds=MONITOR_ROUNDS, warmup_rounds=1)

    assert len(reports) == calls_made(benchmark, MONITOR_ROUNDS)
    expected_problems = {name: status for name, status in account.items() if status != "COMPLIANT"}
    for report in reports:
        counts = report["counts"]
        assert (counts["scanned_buckets"], counts["scanned_tables"]) == (50, 50)
        assert reported(report) == expected_problems
        assert (counts["compliant"], counts["non_compliant"], counts["errors"]) == (70, 30, 0)
        assert report["alert_sent"] is True
    per_unit(len(account), "resource")


# --- 1,000 buckets + 1,000 tables at 50 ms per call ------------------------------------------------


def test_monitor_scans_2000_resources_at_50ms_per_call_concurrently(
    benchmark: Any, load_function: Callable[..., ModuleType], aws: Any, note: Callable[[str], None]
) -> None:
    benchmark.group = "security monitor: 1,000 buckets + 1,000 tables, 50 ms per AWS call (simulated)"
    monitor = load_function(
        "lambda_security_monitor",
        ALERT_TOPIC_ARN=f"arn:aws:sns:{aws.region}:{aws.account_id}:alerts",
        SCAN_REGIONS=aws.region,
    )
    # Under --benchmark-disable (make check and make test run every benchmark once, so none rots)
    # the same scans run over a small account with 1 ms calls; make bench measures the full one.
    account = (
        SimulatedAccount(buckets=100, tables=100, latency=0.001) if benchmark.disabled else SimulatedAccount()
    )
    scans: list[Any] = []

    def concurrent_scan() -> None:
        scans.append(timed_scan(monitor, account, monitor.CONFIG.scan_concurrency))

    # The concurrent scan is what the table shows; the serial one (about 2 minutes) runs once
    benchmark.pedantic(concurrent_scan, rounds=1, iterations=1, warmup_rounds=0)
    serial = timed_scan(monitor, account, 1)

    [concurrent] = scans  # timed_scan checked each report against the account
    assert concurrent.calls == serial.calls
    assert concurrent.report == serial.report
    summary = speedup_summary(serial, concurrent, account)
    benchmark.extra_info.update(summary)
    note(
        f"monitor_concurrent_over_serial = {summary['monitor_concurrent_over_serial']}x: "
        f"{summary['serial_seconds']} s one at a time, {summary['concurrent_seconds']} s with "
        f"{summary['scan_concurrency']} concurrent checks ({summary['aws_calls_per_scan']} calls per scan)"
    )
