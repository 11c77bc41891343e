"""Benchmarks of the whole system (``make bench``, after the handler benchmarks).

Measured in one run, on this machine, as figures and ratios; nothing here asserts a time:

* ``burst_files_per_s_warm`` / ``_cold``: the deployed stack on the embedded emulator, N uploads at
  once (default 200), files per second from the first upload to the last row; warm execution
  environments (the emulator's default, cold starts included) vs a process per invocation;
  ``warm_over_cold`` is their ratio;
* ``monitor_concurrent_over_serial``: the security monitor over 1,000 buckets + 1,000 tables at a
  simulated 50 ms per AWS call, one check at a time vs concurrently (read from the handler
  benchmarks' JSON when ``make bench`` ran them, else measured here);
* ``apply_seconds`` / ``replan_seconds`` per provider source (each hashicorp/aws version in a local
  mirror, or ``registry``): ``terraform apply`` of the stack onto a fresh emulator, and the second
  ``plan`` that must show no changes; the burst runs on the newest;
* ``demo_seconds``: ``python -m devkit.demo`` end to end (setup, five steps, teardown).

Writes ``build/bench-system.json`` and prints a table. Usage:
``python -m benchmarks.system [--files 200] [--skip-demo] [--handlers-json build/bench-handlers.json]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devkit import toolchain
from devkit.pipeline import Pipeline, wait_for
from devkit.stack import Stack
from emulator import Emulator

ROOT = toolchain.ROOT
OUTPUT = ROOT / "build" / "bench-system.json"
UPLOAD_THREADS = 16


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rows_with_prefix(pipeline: Pipeline, prefix: str) -> int:
    pages = (
        pipeline.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=pipeline.outputs["dynamodb_table_name"],
            Select="COUNT",
            FilterExpression="begins_with(Filename, :p)",
            ExpressionAttributeValues={":p": {"S": prefix}},
        )
    )
    return sum(page["Count"] for page in pages)


def burst(pipeline: Pipeline, emulator: Emulator, files: int, warm: bool) -> dict[str, Any]:
    """Upload ``files`` objects at once; files per second until every one is a row."""
    emulator.configure_lambda(warm=warm)
    assert emulator.runner is not None
    emulator.runner.pool.stop_idle()  # every run starts without environments: cold starts count
    prefix = f"bench-{'warm' if warm else 'cold'}-{uuid.uuid4().hex[:6]}/"
    keys = [f"{prefix}file-{i:05d}.csv" for i in range(files)]
    before = emulator.lambda_stats()
    started = time.monotonic()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        list(pool.map(lambda key: pipeline.upload(key, b"benchmark\n"), keys))
    wait_for(
        f"{files} rows",
        lambda: rows_with_prefix(pipeline, prefix) >= files or None,
        timeout=3600,
        interval=0.5,
    )
    seconds = time.monotonic() - started
    after = emulator.lambda_stats()
    return {
        "files": files,
        "seconds": round(seconds, 1),
        "files_per_s": round(files / seconds, 2),
        "cold_starts": after["cold_starts"] - before["cold_starts"],
        "warm_starts": after["warm_starts"] - before["warm_starts"],
    }


def deploy_and_measure(provider: str, files: int | None) -> dict[str, Any]:
    """Apply onto a fresh emulator, time it and the re-plan; with ``files``, burst warm and cold."""
    emulator = Emulator(
        port=0, log_path=ROOT / "build" / f"bench-emulator-{provider}.log", async_retry_delays=(0.5, 0.5)
    )
    emulator.start()
    stack = Stack.staged(emulator.endpoint_url, provider, name="bench")
    result: dict[str, Any] = {"provider": provider}
    try:
        started = time.monotonic()
        outputs = stack.deploy()
        result["apply_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        changes = stack.pending_changes()
        result["replan_seconds"] = round(time.monotonic() - started, 1)
        result["replan_clean"] = changes == ""
        if files:
            pipeline = Pipeline(emulator.endpoint_url, outputs)
            result["warm"] = burst(pipeline, emulator, files, warm=True)
            result["cold"] = burst(pipeline, emulator, files, warm=False)
        stack.destroy()
    finally:
        stack.remove_overrides()
        emulator.stop()
    return result


def monitor_ratio(handlers_json: Path | None) -> dict[str, Any]:
    """The monitor's concurrent/serial ratio from the handler benchmarks, or measured now."""
    if handlers_json is not None and handlers_json.is_file():
        for bench in json.loads(handlers_json.read_text()).get("benchmarks", []):
            if "monitor_concurrent_over_serial" in bench.get("extra_info", {}):
                return dict(bench["extra_info"], source=str(handlers_json))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_support import measure_monitor_speedup  # the harness the handler benchmark uses

    return dict(measure_monitor_speedup(), source="measured by benchmarks/system.py")


def demo_seconds() -> dict[str, Any]:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "devkit.demo", "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    return {"seconds": round(time.monotonic() - started, 1), "exit_status": completed.returncode}


def commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or "unknown"


def collect(files: int, skip_demo: bool, handlers_json: Path | None) -> dict[str, Any]:
    versions = [build.version for build in toolchain.providers()]
    newest = versions[-1]
    runs = {
        version: deploy_and_measure(version, files if version == newest else None) for version in versions
    }
    warm, cold = runs[newest]["warm"], runs[newest]["cold"]
    monitor = monitor_ratio(handlers_json)
    figures: dict[str, Any] = {
        "burst_files_per_s_warm": warm["files_per_s"],
        "burst_files_per_s_cold": cold["files_per_s"],
        "warm_over_cold": round(warm["files_per_s"] / cold["files_per_s"], 1),
        "monitor_concurrent_over_serial": monitor["monitor_concurrent_over_serial"],
        "apply_seconds": {v: r["apply_seconds"] for v, r in runs.items()},
        "replan_seconds": {v: r["replan_seconds"] for v, r in runs.items()},
        "replan_clean": {v: r["replan_clean"] for v, r in runs.items()},
        "burst": {"provider": newest, "warm": warm, "cold": cold},
        "monitor": monitor,
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit(),
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    if not skip_demo:
        figures["demo"] = demo_seconds()
        figures["demo_seconds"] = figures["demo"]["seconds"]
    return figures


def table(figures: dict[str, Any]) -> str:
    burst_figures = figures["burst"]
    lines = [
        "system benchmarks (one run on this machine; ratios are what to compare)",
        f"  burst of {burst_figures['warm']['files']} uploads,"
        f" hashicorp/aws {toolchain.provider_label(burst_figures['provider'])}:",
        f"    warm environments       {figures['burst_files_per_s_warm']:>7} files/s"
        f"  ({burst_figures['warm']['seconds']} s, {burst_figures['warm']['cold_starts']} cold starts)",
        f"    process per invocation  {figures['burst_files_per_s_cold']:>7} files/s"
        f"  ({burst_figures['cold']['seconds']} s, {burst_figures['cold']['cold_starts']} cold starts)",
        f"    warm_over_cold          {figures['warm_over_cold']:>7}x",
        f"  monitor_concurrent_over_serial {figures['monitor_concurrent_over_serial']}x"
        f" ({figures['monitor'].get('serial_seconds')} s -> {figures['monitor'].get('concurrent_seconds')} s)",
    ]
    for version, seconds in figures["apply_seconds"].items():
        clean = "no changes" if figures["replan_clean"][version] else "CHANGES"
        lines.append(
            f"  terraform apply, hashicorp/aws {toolchain.provider_label(version)}: {seconds} s;"
            f" re-plan {figures['replan_seconds'][version]} s ({clean})"
        )
    if "demo" in figures:
        lines.append(f"  make demo: {figures['demo_seconds']} s (exit {figures['demo']['exit_status']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.system", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="uploads per burst (default 200)")
    parser.add_argument("--skip-demo", action="store_true", help="do not time the demo")
    parser.add_argument("--handlers-json", type=Path, default=ROOT / "build" / "bench-handlers.json")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    try:
        figures = collect(args.files, args.skip_demo, args.handlers_json)
    except toolchain.ToolchainError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
