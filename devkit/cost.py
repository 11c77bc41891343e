"""What a sandbox run cost, by README's cost model ("Cost per million files").

The figures are README's: the per-file cost of a STANDARD workflow (about $35 per million files,
Step Functions' transitions three quarters of it) and the fixed monthly costs that a short run pays
by the hour (six customer-managed KMS keys at $1, ten alarms at $0.10, up to 19 Powertools metrics
at $0.30). KMS does not charge for a key pending deletion, which is where a run leaves its keys.
An estimate to know the order of magnitude, not a bill: free tiers and Terraform's own API calls
are ignored. tests/tooling/test_sandbox.py checks that README still states these figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PER_MILLION_FILES_STANDARD: Final = 35.0
"""README's total per million files, STANDARD workflow (dollars)."""
MONTHLY_FIXED: Final = {"KMS keys": 6 * 1.00, "CloudWatch alarms": 10 * 0.10, "custom metrics": 19 * 0.30}
HOURS_PER_MONTH: Final = 730.0


@dataclass(frozen=True)
class Usage:
    """What a run made the pipeline do."""

    files: int
    executions: int


def estimate(usage: Usage, hours: float) -> float:
    """Dollars: the files at README's per-file cost, and the fixed costs for ``hours``."""
    per_file = usage.files * PER_MILLION_FILES_STANDARD / 1_000_000
    fixed = (
        sum(MONTHLY_FIXED.values()) * max(hours, 1.0) / HOURS_PER_MONTH
    )  # billed by the hour, at least one
    return per_file + fixed


def summary(usage: Usage, hours: float, label: str = "e2e-aws") -> str:
    dollars = estimate(usage, hours)
    return (
        f"{label}: cost by README's model: about ${dollars:.2f} ({usage.files} file(s) ingested, "
        f"{usage.executions} execution(s), {hours * 60:.0f} min of six keys, ten alarms and the "
        "metrics; free tiers ignored)"
    )
