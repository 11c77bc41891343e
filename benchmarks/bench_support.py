"""Small helpers the benchmark modules share (importable: benchmarks/ is on sys.path under pytest)."""

from __future__ import annotations

from typing import Any


def calls_made(benchmark: Any, rounds: int, warmup_rounds: int = 1) -> int:
    """How many times ``benchmark.pedantic`` calls the function: once when benchmarks are disabled."""
    return 1 if benchmark.disabled else rounds + warmup_rounds
