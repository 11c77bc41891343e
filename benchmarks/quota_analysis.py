"""The StartExecution timeline of a quota-bound run (benchmarks/system.py): how much of the emulator's
token bucket refill the trigger used once the bucket's capacity was spent."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

PAUSE_SECONDS = 10.0
"""A quota-bound run starts an execution every 1 / refill seconds; a pause this long means the rest
waited for something else (a message reported failed comes back after the visibility timeout)."""


def sustained_utilisation(starts: list[float], capacity: int, refill_per_second: float) -> dict[str, Any]:
    """How much of a token bucket's refill a series of start times used once its capacity was spent.

    ``starts`` are epoch seconds. The first ``capacity`` starts may come from the full bucket; the
    sustained phase runs from the ``capacity``-th start to the last, and holds the other starts:
    their rate over the refill rate is ``quota_utilisation``. ``first_pass`` is the same up to the
    first pause of ``PAUSE_SECONDS`` without a start (what came after it waited for a visibility
    timeout, not for the quota); ``token_use`` is the cross-check over the whole run: starts /
    (capacity + refill x time from the first start to the last); ``starts_per_10s`` the timeline.
    """
    ordered = sorted(starts)
    result: dict[str, Any] = {"executions_started": len(ordered)}
    if len(ordered) <= capacity or ordered[-1] <= ordered[capacity - 1]:
        return {**result, "quota_utilisation": None}
    begin = capacity - 1
    seconds = ordered[-1] - ordered[begin]
    rate = (len(ordered) - capacity) / seconds
    gaps = [later - earlier for earlier, later in pairwise(ordered)]
    pause = next((i for i in range(begin, len(gaps)) if gaps[i] >= PAUSE_SECONDS), len(ordered) - 1)
    first_pass_seconds = ordered[pause] - ordered[begin]
    timeline = [0] * (int((ordered[-1] - ordered[0]) // 10) + 1)
    for start in ordered:
        timeline[int((start - ordered[0]) // 10)] += 1
    return {
        **result,
        "quota_utilisation": round(rate / refill_per_second, 3),
        "sustained_starts": len(ordered) - capacity,
        "sustained_seconds": round(seconds, 2),
        "sustained_starts_per_s": round(rate, 2),
        "burst_phase_seconds": round(ordered[begin] - ordered[0], 2),
        "longest_gap_seconds": round(max(gaps), 2),
        "first_pass": {
            "starts": pause - begin,
            "seconds": round(first_pass_seconds, 2),
            "utilisation": round((pause - begin) / first_pass_seconds / refill_per_second, 3)
            if first_pass_seconds > 0
            else None,
            "starts_after_it": len(ordered) - 1 - pause,
        },
        "token_use": round(len(ordered) / (capacity + refill_per_second * (ordered[-1] - ordered[0])), 3),
        "starts_per_10s": timeline,
    }
