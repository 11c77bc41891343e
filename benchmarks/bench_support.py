"""Helpers the benchmark modules share (importable: benchmarks/ is on sys.path under pytest).

- :func:`calls_made`: how often ``benchmark.pedantic`` called the measured function.
- :class:`SimulatedAccount`: buckets and tables behind stand-in clients whose every call sleeps a
  fixed latency (50 ms, about what one call to AWS takes), so a scan's time is dominated by waiting
  on AWS, as in a Lambda, and not by moto's CPU; its exemptions are declared as Terraform's
  ``security_scan_exemptions`` declares them (the ``SECURITY_SCAN_EXEMPTIONS`` JSON).
- :func:`timed_scan`, :func:`speedup_summary`, :func:`measure_monitor_speedup`: the security
  monitor's concurrent scan against one-at-a-time (``SCAN_CONCURRENCY=1``). Another harness calls
  ``measure_monitor_speedup()`` and reads ``monitor_concurrent_over_serial`` from its result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from devkit.lambda_harness import FunctionLoader, use_fake_credentials

SIMULATED_CALL_SECONDS = 0.05
SIMULATED_REGION = "eu-central-1"
SIMULATED_ACCOUNT_ID = "123456789012"
CUSTOMER_KEY_ARN = f"arn:aws:kms:{SIMULATED_REGION}:{SIMULATED_ACCOUNT_ID}:key/0000-customer"
MANAGED_KEY_ID = "0000-aws-managed-dynamodb"
MANAGED_KEY_ARN = f"arn:aws:kms:{SIMULATED_REGION}:{SIMULATED_ACCOUNT_ID}:key/{MANAGED_KEY_ID}"
EXEMPTION_TAG = "SecurityScanExemption"


def calls_made(benchmark: Any, rounds: int, warmup_rounds: int = 1) -> int:
    """How many times ``benchmark.pedantic`` calls the function: once when benchmarks are disabled."""
    return 1 if benchmark.disabled else rounds + warmup_rounds


# --- a simulated account -----------------------------------------------------------------------


@dataclass
class CallLog:
    """Counts the simulated AWS calls (from every thread) and makes each one last ``latency``."""

    latency: float
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, operation: str) -> None:
        with self.lock:
            self.counts[operation] = self.counts.get(operation, 0) + 1
        time.sleep(self.latency)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _not_found(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "not found"}}, operation)


@dataclass(frozen=True)
class SimulatedAccount:
    """``buckets`` buckets and ``tables`` tables of which every tenth is not KMS-encrypted, half of
    those exempted (declared in :meth:`security_scan_exemptions`, as Terraform declares them); the
    other tables use the AWS-managed key (3 in 10) or a customer key.

    Half of the non-exempted ones carry the exemption tag without being declared: a tag exempts
    nothing, so they must stay non-compliant (and their findings say the tag is not declared).
    """

    buckets: int = 1000
    tables: int = 1000
    latency: float = SIMULATED_CALL_SECONDS
    region: str = SIMULATED_REGION

    def bucket_name(self, index: int) -> str:
        return f"bucket-{index:05d}"

    def table_name(self, index: int) -> str:
        return f"table-{index:05d}"

    @staticmethod
    def kind(index: int) -> str:
        """``compliant``, ``non_compliant`` or ``exempted`` for the resource at ``index``."""
        if index % 10:
            return "compliant"
        return "exempted" if index % 20 == 0 else "non_compliant"

    @staticmethod
    def tagged(index: int) -> bool:
        """Whether the resource at ``index`` carries the exemption tag (undeclared: it exempts nothing)."""
        return index % 40 == 10

    def security_scan_exemptions(self) -> dict[str, str]:
        """The declared exemptions, name -> reason: Terraform's ``security_scan_exemptions``."""
        buckets = {
            self.bucket_name(i): "archive, SEC-1" for i in range(self.buckets) if self.kind(i) == "exempted"
        }
        tables = {
            self.table_name(i): "replica, SEC-2" for i in range(self.tables) if self.kind(i) == "exempted"
        }
        return buckets | tables

    def environment(self) -> dict[str, str]:
        """The monitor's environment variable for those exemptions, as Terraform sets it (jsonencode)."""
        return {"SECURITY_SCAN_EXEMPTIONS": json.dumps(self.security_scan_exemptions())}

    def expected(self) -> dict[str, set[str]]:
        """Resource names by kind, as the monitor must report them."""
        names: dict[str, set[str]] = {"compliant": set(), "non_compliant": set(), "exempted": set()}
        for index in range(self.buckets):
            names[self.kind(index)].add(self.bucket_name(index))
        for index in range(self.tables):
            names[self.kind(index)].add(self.table_name(index))
        return names

    def tagged_names(self) -> set[str]:
        """Names of the resources that carry the (undeclared) exemption tag."""
        buckets = {self.bucket_name(index) for index in range(self.buckets) if self.tagged(index)}
        return buckets | {self.table_name(index) for index in range(self.tables) if self.tagged(index)}

    def clients(self, monitor: ModuleType, log: CallLog) -> Any:
        """The monitor's ``ScanClients``, every call going through ``log``."""
        return monitor.ScanClients(
            s3=SimulatedS3(self, log),
            sns=SimulatedSns(log),
            regions=(
                monitor.RegionClients(
                    region=self.region, dynamodb=SimulatedDynamoDB(self, log), kms=SimulatedKms(log)
                ),
            ),
        )


@dataclass(frozen=True)
class SimulatedS3:
    account: SimulatedAccount
    log: CallLog

    def list_buckets(self, MaxBuckets: int, ContinuationToken: str | None = None) -> dict[str, Any]:
        self.log.call("ListBuckets")
        start = int(ContinuationToken or 0)
        end = min(start + MaxBuckets, self.account.buckets)
        page: dict[str, Any] = {
            "Buckets": [
                {"Name": self.account.bucket_name(index), "BucketRegion": self.account.region}
                for index in range(start, end)
            ]
        }
        if end < self.account.buckets:
            page["ContinuationToken"] = str(end)
        return page

    def get_bucket_encryption(self, Bucket: str) -> dict[str, Any]:
        self.log.call("GetBucketEncryption")
        index = int(Bucket.rsplit("-", 1)[1])
        if SimulatedAccount.kind(index) == "compliant":
            default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": CUSTOMER_KEY_ARN}
            rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}
        else:
            rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        return {"ServerSideEncryptionConfiguration": {"Rules": [rule]}}

    def get_bucket_tagging(self, Bucket: str) -> dict[str, Any]:
        self.log.call("GetBucketTagging")
        if not SimulatedAccount.tagged(int(Bucket.rsplit("-", 1)[1])):
            raise _not_found("NoSuchTagSet", "GetBucketTagging")
        return {"TagSet": [{"Key": EXEMPTION_TAG, "Value": "archive bucket, SEC-1"}]}


@dataclass(frozen=True)
class SimulatedDynamoDB:
    account: SimulatedAccount
    log: CallLog

    def list_tables(self, Limit: int, ExclusiveStartTableName: str | None = None) -> dict[str, Any]:
        self.log.call("ListTables")
        start = int(ExclusiveStartTableName.rsplit("-", 1)[1]) + 1 if ExclusiveStartTableName else 0
        end = min(start + Limit, self.account.tables)
        page: dict[str, Any] = {"TableNames": [self.account.table_name(index) for index in range(start, end)]}
        if end < self.account.tables:
            page["LastEvaluatedTableName"] = self.account.table_name(end - 1)
        return page

    def describe_table(self, TableName: str) -> dict[str, Any]:
        self.log.call("DescribeTable")
        index = int(TableName.rsplit("-", 1)[1])
        table: dict[str, Any] = {
            "TableName": TableName,
            "TableArn": f"arn:aws:dynamodb:{self.account.region}:{SIMULATED_ACCOUNT_ID}:table/{TableName}",
        }
        if SimulatedAccount.kind(index) == "compliant":
            key = MANAGED_KEY_ARN if index % 10 in (1, 2, 3) else CUSTOMER_KEY_ARN
            table["SSEDescription"] = {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key}
        return {"Table": table}

    def list_tags_of_resource(self, ResourceArn: str, NextToken: str | None = None) -> dict[str, Any]:
        self.log.call("ListTagsOfResource")
        if not SimulatedAccount.tagged(int(ResourceArn.rsplit("-", 1)[1])):
            return {"Tags": []}
        return {"Tags": [{"Key": EXEMPTION_TAG, "Value": "replica of an on-premises table, SEC-2"}]}


@dataclass(frozen=True)
class SimulatedKms:
    log: CallLog

    def list_aliases(self, Limit: int, Marker: str | None = None) -> dict[str, Any]:
        self.log.call("ListAliases")
        alias_arn = f"arn:aws:kms:{SIMULATED_REGION}:{SIMULATED_ACCOUNT_ID}:alias/aws/dynamodb"
        aliases = [{"AliasName": "alias/aws/dynamodb", "AliasArn": alias_arn, "TargetKeyId": MANAGED_KEY_ID}]
        return {"Aliases": aliases, "Truncated": False}


@dataclass(frozen=True)
class SimulatedSns:
    log: CallLog

    def publish(self, **_: Any) -> dict[str, Any]:
        self.log.call("Publish")
        return {"MessageId": "simulated"}


# --- the speedup ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimedScan:
    seconds: float
    concurrency: int
    report: dict[str, Any]
    calls: dict[str, int]


def timed_scan(monitor: ModuleType, account: SimulatedAccount, concurrency: int) -> TimedScan:
    """One scan of ``account`` by the monitor's ``run_scan`` with at most ``concurrency`` checks at
    once and the account's declared exemptions (read from ``SECURITY_SCAN_EXEMPTIONS`` by the
    monitor's own parser, as at load; its configuration otherwise unchanged); checks that the
    report is exactly right."""
    log = CallLog(account.latency)
    exemptions = monitor.parse_scan_exemptions(account.environment())
    config = dataclasses.replace(monitor.CONFIG, scan_concurrency=concurrency, exemptions=exemptions)
    start = time.perf_counter()
    report = monitor.run_scan(account.clients(monitor, log), config, monitor.RetryPolicy())
    seconds = time.perf_counter() - start
    check_report(report, account)
    return TimedScan(seconds=seconds, concurrency=concurrency, report=report, calls=dict(log.counts))


def check_report(report: dict[str, Any], account: SimulatedAccount) -> None:
    expected = account.expected()
    counts = report["counts"]
    problems = []
    if (counts["scanned_buckets"], counts["scanned_tables"]) != (account.buckets, account.tables):
        problems.append(f"scanned {counts['scanned_buckets']} buckets, {counts['scanned_tables']} tables")
    for kind in ("compliant", "non_compliant", "exempted"):
        if counts[kind] != len(expected[kind]):
            problems.append(f"{counts[kind]} {kind}, expected {len(expected[kind])}")
    for kind in ("non_compliant", "exempted"):
        if {finding["name"] for finding in report[kind]} != expected[kind]:
            problems.append(f"the {kind} findings name other resources")
    declared = account.security_scan_exemptions()
    if any(finding["exemption"] != declared.get(finding["name"]) for finding in report["exempted"]):
        problems.append("an exempted finding does not give its declared reason")
    undeclared = "not declared in security_scan_exemptions"  # a tag alone exempts nothing
    noted = {finding["name"] for finding in report["non_compliant"] if undeclared in finding["reason"]}
    if noted != account.tagged_names():
        problems.append(
            f"{len(noted)} findings report an undeclared exemption tag, expected {len(account.tagged_names())}"
        )
    if report["errors"] or report["alert_sent"] is not True:
        problems.append(f"errors {report['errors'][:3]}, alert_sent {report['alert_sent']}")
    if problems:
        raise AssertionError("the monitor's report is wrong: " + "; ".join(problems))


def speedup_summary(serial: TimedScan, concurrent: TimedScan, account: SimulatedAccount) -> dict[str, Any]:
    """What a benchmark records: the setup, both durations and their ratio."""
    return {
        "buckets": account.buckets,
        "tables": account.tables,
        "simulated_call_seconds": account.latency,
        "aws_calls_per_scan": sum(concurrent.calls.values()),
        "scan_concurrency": concurrent.concurrency,
        "serial_seconds": round(serial.seconds, 3),
        "concurrent_seconds": round(concurrent.seconds, 3),
        "monitor_concurrent_over_serial": round(serial.seconds / concurrent.seconds, 2),
    }


@contextlib.contextmanager
def loaded_monitor(account: SimulatedAccount) -> Iterator[ModuleType]:
    """The monitor's ``index`` loaded as the unit tests and benchmarks load it (fake credentials,
    its own environment with ``account``'s declared exemptions, only what its zip holds), its log
    lines kept off the terminal."""
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(io.StringIO()):
        use_fake_credentials(monkeypatch, SIMULATED_REGION)
        loader = FunctionLoader(monkeypatch, service_prefix="bench", metrics_namespace="Benchmarks")
        try:
            yield loader.load(
                "lambda_security_monitor",
                ALERT_TOPIC_ARN=f"arn:aws:sns:{SIMULATED_REGION}:{SIMULATED_ACCOUNT_ID}:alerts",
                SCAN_REGIONS=SIMULATED_REGION,
                **account.environment(),
            )
        finally:
            loader.close()


def measure_monitor_speedup(
    monitor: ModuleType | None = None,
    *,
    buckets: int = 1000,
    tables: int = 1000,
    latency: float = SIMULATED_CALL_SECONDS,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """Scan a simulated account one check at a time, then concurrently; return
    :func:`speedup_summary`, whose ``monitor_concurrent_over_serial`` is serial time / concurrent
    time (how many times faster the concurrent scan is; the goal is >= 10).

    ``monitor`` is a loaded ``lambda_security_monitor`` ``index`` (loaded here when None);
    ``concurrency`` defaults to the monitor's configured ``SCAN_CONCURRENCY`` (16). With the
    defaults the serial scan takes about 2 minutes.
    """
    account = SimulatedAccount(buckets=buckets, tables=tables, latency=latency)
    if monitor is None:
        with loaded_monitor(account) as loaded:
            return measure_monitor_speedup(
                loaded, buckets=buckets, tables=tables, latency=latency, concurrency=concurrency
            )
    serial = timed_scan(monitor, account, 1)
    concurrent = timed_scan(monitor, account, concurrency or monitor.CONFIG.scan_concurrency)
    return speedup_summary(serial, concurrent, account)
