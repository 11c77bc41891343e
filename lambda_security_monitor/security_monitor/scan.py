"""The scan: every bucket of the account and every table of each scanned region, checked by a
bounded pool of threads.

This thread lists (so checks start while later pages are fetched); the pool checks. An error on
one resource never stops the scan: it becomes an ERROR finding, as does a listing that fails.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from botocore.client import BaseClient

from security_monitor.access import (
    AwsCallError,
    ManagedKeyLookup,
    RegionClients,
    RetryPolicy,
    ScanClients,
    bucket_encryption,
    bucket_tags,
    describe_table,
    find_managed_key,
    list_buckets,
    list_tables,
    table_tags,
)
from security_monitor.classify import (
    ExemptionRules,
    Finding,
    apply_exemption,
    classify_bucket_encryption,
    classify_table,
    new_finding,
)
from security_monitor.config import MonitorConfig

ALL_RESOURCES: Final = "*"
"""The name of the finding for a listing that failed: every resource it would have listed."""


def _ignore(_: Finding) -> None:
    return None


@dataclass
class ScanTally:
    """What the scan found: compliant resources only counted, the others kept for the report.

    ``on_finding`` sees every finding as it is added (the handler logs each one there).
    """

    scanned_buckets: int = 0
    scanned_tables: int = 0
    compliant: int = 0
    non_compliant: list[Finding] = field(default_factory=list)
    exempted: list[Finding] = field(default_factory=list)
    errors: list[Finding] = field(default_factory=list)
    on_finding: Callable[[Finding], None] = field(default=_ignore, repr=False, compare=False)

    def add(self, finding: Finding) -> None:
        self.on_finding(finding)
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


def check_bucket(
    s3: BaseClient, name: str, region: str | None, rules: ExemptionRules, retry: RetryPolicy
) -> Finding:
    try:
        configuration = bucket_encryption(s3, name, retry)
    except AwsCallError as err:
        return new_finding("s3_bucket", name, region, "ERROR", err.describe())
    finding = classify_bucket_encryption(name, region, configuration)
    if finding["status"] != "NON_COMPLIANT":
        return finding
    return apply_exemption(finding, rules, functools.partial(bucket_tags, s3, name, retry))


def check_table(
    clients: RegionClients,
    name: str,
    managed_key: Callable[[], ManagedKeyLookup],
    rules: ExemptionRules,
    retry: RetryPolicy,
) -> Finding:
    try:
        table = describe_table(clients.dynamodb, name, retry)
    except AwsCallError as err:
        return new_finding("dynamodb_table", name, clients.region, "ERROR", err.describe())
    finding = classify_table(name, clients.region, table, managed_key)
    if finding["status"] != "NON_COMPLIANT":
        return finding
    read_tags = functools.partial(table_tags, clients.dynamodb, table["TableArn"], retry)
    return apply_exemption(finding, rules, read_tags)


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
        tally.add(new_finding("s3_bucket", ALL_RESOURCES, None, "ERROR", err.describe()))
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
        tally.add(new_finding("dynamodb_table", ALL_RESOURCES, clients.region, "ERROR", err.describe()))
    return futures


def scan(
    clients: ScanClients,
    config: MonitorConfig,
    retry: RetryPolicy,
    on_finding: Callable[[Finding], None] = _ignore,
) -> ScanTally:
    """Check every bucket and table with at most ``config.scan_concurrency`` checks at once;
    ``on_finding`` sees each finding as it comes in."""
    tally = ScanTally(on_finding=on_finding)
    with ThreadPoolExecutor(max_workers=config.scan_concurrency, thread_name_prefix="scan") as pool:
        futures = submit_bucket_checks(pool, clients.s3, config, retry, tally)
        for region_clients in clients.regions:
            futures.extend(submit_table_checks(pool, region_clients, config, retry, tally))
        for future in futures:
            tally.add(future.result())
    return tally
