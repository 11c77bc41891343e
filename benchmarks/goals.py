"""The goals of the system benchmarks (benchmarks/system.py): each is reported next to its figure,
with whether the run met it, and never asserted."""

from __future__ import annotations

from typing import Any

GOALS: dict[str, float] = {"burst_files_per_s_warm": 25.0, "quota_utilisation": 0.9}
"""Lower bounds."""
CEILINGS: dict[str, float] = {"apply_split_over_inline": 1.10}
"""Upper bounds: issue #15 lets the split S3 resources make `terraform apply` at most 10 % slower
than the inline blocks they replaced."""


def goal_met(figure: str, value: float | None) -> bool | None:
    if value is None:
        return None
    return value <= CEILINGS[figure] if figure in CEILINGS else value >= GOALS[figure]


def goal(figure: str, value: float | None) -> dict[str, Any]:
    """A figure's goal as reported: its bound (``at_least`` or ``at_most``) and whether it was ``met``."""
    bound = {"at_most": CEILINGS[figure]} if figure in CEILINGS else {"at_least": GOALS[figure]}
    return {**bound, "met": goal_met(figure, value)}


def goal_text(reported: dict[str, Any]) -> str:
    """``goal >= 25: met``, ``goal <= 1.1: NOT met``: a goal as :func:`goal` reported it."""
    verdict = {True: "met", False: "NOT met", None: "not measured"}[reported["met"]]
    bound = f"<= {reported['at_most']:g}" if "at_most" in reported else f">= {reported['at_least']:g}"
    return f"goal {bound}: {verdict}"
