"""Benchmarks of the whole system (``make bench``, after the handler benchmarks).

Measured in one run, on this machine, as figures and ratios; nothing here asserts a time or a goal
(a figure with a goal is reported next to it, with whether this run met it).

The stack is applied **once** per provider version onto a fresh embedded emulator with its default
settings (S3 -> upload queue -> event source mapping of ``trigger_batch_size`` 10,
``trigger_batching_window_seconds`` 1, ``trigger_maximum_concurrency`` 5, ReportBatchItemFailures ->
trigger -> Step Functions -> writer; :data:`STACK_VARIABLES` puts back the trigger timeout and
receive count that devkit's local overrides shorten for tests), and every pipeline figure is taken
from the newest version's deployment, one after another, with single delivery and no faults;
between two figures the upload queue is drained and no execution runs. The pipeline figures are
filed under ``profiles[<type>]``, the state machine's type: ``STANDARD``, then ``EXPRESS`` from a
second deployment of the newest version with ``workflow_type = "EXPRESS"`` (its executions read
from the state machine's log group: Express has no ListExecutions; no cold burst there). A file that never becomes a row (dead-lettered) ends the wait for it and is
reported (``files_without_row``, ``dead_letters``) instead of hanging the run:

* ``burst_files_per_s_warm`` (goal >= 25 on 2 cores) / ``_cold``: N uploads at once (default 200)
  from 16 threads, files per second from the first upload to the last row; warm execution
  environments (the emulator's default, started from none so their cold starts count) vs a process
  per invocation (``--skip-cold`` leaves it out); ``warm_over_cold`` is their ratio;
* ``quota_utilisation`` (goal >= 0.9): StartExecution throttled by the emulator's token bucket
  (capacity 20, refilled at 5 a second), N uploads at once (default 300). From ListExecutions'
  startDate of this run's executions (their names start with the run's file-name prefix): the
  starts after the bucket's first 20 divided by the time from the 20th start to the last, over the
  refill rate. With the throttled StartExecution calls, the mapping's ``messages_received`` and
  ``messages_reported_failed`` during the run, the longest pause between two starts, the same
  utilisation over the ``first_pass`` (up to the first 10 s without a start: what follows waited
  for a visibility timeout, not for the quota) and the starts per 10 s;
* ``drain_seconds_after_1000``: 1,000 uploads at once (``--drain-files``), unthrottled: seconds from
  the first upload until the upload queue is drained (nothing visible, in flight or delayed and no
  batch running: the emulator's ``wait_for_event_sources`` and GetQueueAttributes) and until the
  last row exists;
* ``monitor_concurrent_over_serial``: the security monitor over 1,000 buckets + 1,000 tables at a
  simulated 50 ms per AWS call, one check at a time vs concurrently (read from the handler
  benchmarks' JSON when ``make bench`` ran them, else measured here);
* ``apply_seconds`` / ``replan_seconds`` per provider source (each hashicorp/aws version in a local
  mirror, or ``registry``): ``terraform apply`` of the stack onto a fresh emulator, and the second
  ``plan`` that must show no changes;
* ``apply_seconds_split`` / ``_inline``, ``apply_split_over_inline`` (goal <= 1.10, issue #15):
  ``terraform apply`` of the stack as it is (the S3 bucket's split versioning, encryption and
  lifecycle resources) and of a variant with the equivalent inline blocks instead
  (:mod:`benchmarks.split_apply`), each onto a fresh emulator, interleaved, N of each (default 3,
  ``--split-apply-runs``; ``--skip-split-apply`` leaves it out): the medians and their ratio;
* ``demo_seconds``: ``python -m devkit.demo`` end to end (setup, five steps, teardown).

The top-level ``burst_files_per_s_warm``, ``burst_files_per_s_cold``, ``warm_over_cold`` and
``burst`` repeat the Standard profile's. Writes ``build/bench-system.json`` and prints a table.
Usage: ``python -m benchmarks.system [--files 200] [--quota-files 300] [--drain-files 1000]
[--skip-cold] [--skip-demo] [--skip-monitor] [--split-apply-runs 3] [--skip-split-apply]
[--only-split-apply] [--handlers-json build/bench-handlers.json]``; ``--only-split-apply`` measures
the split/inline applies alone and writes ``build/bench-split-apply.json`` unless ``--output`` says.
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import split_apply
from benchmarks.goals import goal, goal_text
from benchmarks.quota_analysis import PAUSE_SECONDS, sustained_utilisation
from devkit import toolchain
from devkit.pipeline import Pipeline, wait_for
from devkit.stack import Stack
from emulator import Emulator

ROOT = toolchain.ROOT
OUTPUT = ROOT / "build" / "bench-system.json"
SPLIT_APPLY_OUTPUT = ROOT / "build" / "bench-split-apply.json"
UPLOAD_THREADS = 16
START_EXECUTION = "AWSStepFunctions.StartExecution"
QUOTA_CAPACITY = 20
QUOTA_REFILL_PER_SECOND = 5.0
WAIT_SECONDS = 3600
STACK_VARIABLES: dict[str, object] = {"trigger_lambda_timeout": 30, "queue_max_receive_count": 5}
"""The stack's own defaults (variables.tf) for what devkit's local overrides shorten for tests (a 5 s
trigger, so a 31 s visibility timeout, and dead-lettering on the second failed receive): under the
throttle a batch then runs out of time before its messages start and a message still throttled on
its second receive is dead-lettered, which measures the test settings, not the pipeline. The event
source mapping (batch size, batching window, maximum concurrency) keeps its defaults."""


@dataclass(frozen=True)
class Sizes:
    """How many uploads each pipeline figure makes."""

    burst: int = 200
    quota: int = 300
    drain: int = 1000
    cold: bool = True


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


@dataclass
class Deployment:
    """The one deployment every pipeline figure is taken from."""

    pipeline: Pipeline
    emulator: Emulator

    def upload_all(self, keys: list[str]) -> None:
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            list(pool.map(lambda key: self.pipeline.upload(key, b"benchmark\n"), keys))

    def workflow_type(self) -> str:
        sfn = self.pipeline.client("stepfunctions")
        return str(
            sfn.describe_state_machine(stateMachineArn=self.pipeline.outputs["step_function_arn"])["type"]
        )

    def mapping_stats(self) -> dict[str, Any]:
        """The counters of the upload queue's (only enabled) event source mapping."""
        [stats] = [m for m in self.emulator.event_source_stats()["mappings"] if m["state"] == "Enabled"]
        return dict(stats)

    def executions(self, name_prefix: str = "", status: str | None = None) -> list[dict[str, Any]]:
        """ListExecutions (STANDARD), or the state machine's log group (EXPRESS has no execution API)."""
        if self.pipeline.express:
            listed = self.pipeline.executions()
        else:
            sfn = self.pipeline.client("stepfunctions")
            arguments: dict[str, Any] = {"stateMachineArn": self.pipeline.outputs["step_function_arn"]}
            if status is not None:
                arguments["statusFilter"] = status
            pages = sfn.get_paginator("list_executions").paginate(**arguments)
            listed = [e for page in pages for e in page["executions"]]
        return [
            e
            for e in listed
            if e["name"].startswith(name_prefix) and (status is None or e["status"] == status)
        ]

    def queue_drained(self) -> bool:
        """No batch being processed and no message visible, in flight or delayed in the upload queue."""
        return self.emulator.wait_for_event_sources(timeout=5) and not any(
            self.pipeline.queue_depth().values()
        )

    def wait_drained(self) -> None:
        wait_for("the upload queue to drain", self.queue_drained, timeout=WAIT_SECONDS, interval=0.05)

    def dead_letters(self) -> int:
        return self.pipeline.queue_depth("dead_letter_queue_url")["visible"]

    def wait_for_rows(self, prefix: str, files: int) -> int:
        """Until ``files`` rows exist under ``prefix``, or no more can come (the queue drained, no
        execution running and no new row since the last look: a file was dead-lettered or failed);
        the rows found."""
        seen = [-1]

        def probe() -> tuple[int] | None:
            rows = rows_with_prefix(self.pipeline, prefix)
            stalled = rows == seen[0] and self.emulator.event_source_stats()["drained"]
            seen[0] = rows
            if rows >= files or (stalled and self.executions(status="RUNNING") == []):
                return (rows,)
            return None

        return wait_for(f"{files} rows", probe, timeout=WAIT_SECONDS, interval=0.5)[0]

    def settle(self) -> None:
        """Between two figures: the queue drained and no execution running."""
        wait_for(
            "the pipeline to settle",
            lambda: self.queue_drained() and self.executions(status="RUNNING") == [],
            timeout=900,
            interval=1,
        )


def burst(deployment: Deployment, files: int, warm: bool) -> dict[str, Any]:
    """Upload ``files`` objects at once; files per second until every one is a row."""
    emulator = deployment.emulator
    emulator.configure_lambda(warm=warm)
    assert emulator.runner is not None
    emulator.runner.pool.stop_idle()  # every run starts without environments: cold starts count
    prefix = f"bench-{'warm' if warm else 'cold'}-{uuid.uuid4().hex[:6]}/"
    keys = [f"{prefix}file-{i:05d}.csv" for i in range(files)]
    before, dead_before = emulator.lambda_stats(), deployment.dead_letters()
    started = time.monotonic()
    deployment.upload_all(keys)
    rows = deployment.wait_for_rows(prefix, files)
    seconds = time.monotonic() - started
    after = emulator.lambda_stats()
    deployment.settle()
    return {
        "files": files,
        "seconds": round(seconds, 1),
        "files_per_s": round(files / seconds, 2),
        "cold_starts": after["cold_starts"] - before["cold_starts"],
        "warm_starts": after["warm_starts"] - before["warm_starts"],
        **missing(files, rows, deployment.dead_letters() - dead_before),
    }


def missing(files: int, rows: int, dead_letters: int) -> dict[str, int]:
    """Files without a row and new dead letters; nothing when every file arrived (the usual case)."""
    if rows >= files and dead_letters == 0:
        return {}
    return {"files_without_row": files - rows, "dead_letters": dead_letters}


def quota_utilisation(
    deployment: Deployment,
    files: int,
    capacity: int = QUOTA_CAPACITY,
    refill_per_second: float = QUOTA_REFILL_PER_SECOND,
) -> dict[str, Any]:
    """Upload ``files`` objects at once with StartExecution throttled; how much of the refill was used."""
    emulator = deployment.emulator
    emulator.configure_lambda(warm=True)
    tag = uuid.uuid4().hex[:6]
    name_prefix = f"quota{tag}-"  # the execution name starts with the key's file name
    prefix = f"bench-quota-{tag}/"
    keys = [f"{prefix}{name_prefix}{i:05d}.csv" for i in range(files)]
    before, dead_before = deployment.mapping_stats(), deployment.dead_letters()
    emulator.set_throttle(START_EXECUTION, capacity=capacity, refill_per_second=refill_per_second)
    try:
        started = time.monotonic()
        deployment.upload_all(keys)
        upload_seconds = time.monotonic() - started
        deployment.wait_drained()
        drained_seconds = time.monotonic() - started
        [throttle] = [t for t in emulator.faults.list_throttles() if t["target"] == START_EXECUTION]
    finally:
        emulator.clear_throttles()
    after = deployment.mapping_stats()
    starts = [e["startDate"].timestamp() for e in deployment.executions(name_prefix)]
    rows = deployment.wait_for_rows(prefix, files)
    rows_seconds = time.monotonic() - started
    deployment.settle()
    return {
        "files": files,
        "throttle": {"capacity": capacity, "refill_per_second": refill_per_second},
        **sustained_utilisation(starts, capacity, refill_per_second),
        "throttled": throttle["throttled"],
        "start_execution_calls_allowed": throttle["allowed"],
        "messages_received": after["messages_received"] - before["messages_received"],
        "messages_reported_failed": after["messages_reported_failed"] - before["messages_reported_failed"],
        "batch_failures": after["batch_failures"] - before["batch_failures"],
        "upload_seconds": round(upload_seconds, 1),
        "queue_drained_seconds": round(drained_seconds, 1),
        "last_row_seconds": round(rows_seconds, 1),
        **missing(files, rows, deployment.dead_letters() - dead_before),
    }


def drain(deployment: Deployment, files: int) -> dict[str, Any]:
    """Upload ``files`` objects at once, unthrottled; seconds until the queue is drained, and until the last row."""
    deployment.emulator.configure_lambda(warm=True)
    prefix = f"bench-drain-{uuid.uuid4().hex[:6]}/"
    keys = [f"{prefix}file-{i:05d}.csv" for i in range(files)]
    before, dead_before = deployment.mapping_stats(), deployment.dead_letters()
    started = time.monotonic()
    deployment.upload_all(keys)
    upload_seconds = time.monotonic() - started
    deployment.wait_drained()
    drained_seconds = time.monotonic() - started
    rows = deployment.wait_for_rows(prefix, files)
    rows_seconds = time.monotonic() - started
    after = deployment.mapping_stats()
    deployment.settle()
    return {
        "files": files,
        "upload_seconds": round(upload_seconds, 1),
        "queue_drained": round(drained_seconds, 1),
        "last_row": round(rows_seconds, 1),
        "files_per_s": round(files / rows_seconds, 2),
        "invocations": after["invocations"] - before["invocations"],
        "messages_received": after["messages_received"] - before["messages_received"],
        "messages_reported_failed": after["messages_reported_failed"] - before["messages_reported_failed"],
        **missing(files, rows, deployment.dead_letters() - dead_before),
    }


def measure_profile(deployment: Deployment, sizes: Sizes) -> dict[str, Any]:
    """Every pipeline figure of one workflow profile, from one deployment."""
    mapping = deployment.mapping_stats()
    warm = burst(deployment, sizes.burst, warm=True)
    quota = quota_utilisation(deployment, sizes.quota)
    drained = drain(deployment, sizes.drain)
    cold = burst(deployment, sizes.burst, warm=False) if sizes.cold else None
    deployment.emulator.configure_lambda(warm=True)
    profile: dict[str, Any] = {
        "workflow_type": deployment.workflow_type(),
        "burst_files_per_s_warm": warm["files_per_s"],
        "burst_files_per_s_cold": cold["files_per_s"] if cold else None,
        "warm_over_cold": round(warm["files_per_s"] / cold["files_per_s"], 1) if cold else None,
        "quota_utilisation": quota["quota_utilisation"],
        f"drain_seconds_after_{sizes.drain}": {
            "queue_drained": drained["queue_drained"],
            "last_row": drained["last_row"],
        },
        "goals": {
            figure: goal(figure, value)
            for figure, value in (
                ("burst_files_per_s_warm", warm["files_per_s"]),
                ("quota_utilisation", quota["quota_utilisation"]),
            )
        },
        "mapping": {
            key: mapping[key]
            for key in (
                "batch_size",
                "maximum_batching_window_in_seconds",
                "maximum_concurrency",
                "report_batch_item_failures",
            )
        },
        "burst": {"warm": warm, "cold": cold},
        "quota": quota,
        "drain": drained,
    }
    return profile


def deploy_and_measure(provider: str, sizes: Sizes | None, workflow_type: str = "STANDARD") -> dict[str, Any]:
    """Apply onto a fresh emulator, time it and the re-plan; with ``sizes``, the pipeline figures."""
    label = provider if workflow_type == "STANDARD" else f"{provider}-{workflow_type.lower()}"
    emulator = Emulator(
        port=0, log_path=ROOT / "build" / f"bench-emulator-{label}.log", async_retry_delays=(0.5, 0.5)
    )
    emulator.start()
    stack = Stack.staged(emulator.endpoint_url, provider, name=f"bench-{workflow_type.lower()}")
    result: dict[str, Any] = {"provider": provider}
    try:
        started = time.monotonic()
        outputs = stack.deploy({**STACK_VARIABLES, "workflow_type": workflow_type})
        result["apply_seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        changes = stack.pending_changes()
        result["replan_seconds"] = round(time.monotonic() - started, 1)
        result["replan_clean"] = changes == ""
        if sizes is not None:
            deployment = Deployment(Pipeline(emulator.endpoint_url, outputs), emulator)
            deployment.settle()  # S3's test event, sent when the notification configuration was saved
            result["profile"] = measure_profile(deployment, sizes)
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
    from benchmarks.bench_support import measure_monitor_speedup  # the handler benchmark's harness

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


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def pipeline_figures(sizes: Sizes, versions: list[str]) -> dict[str, Any]:
    """Each version's apply and re-plan; both workflow profiles' figures from the newest."""
    newest = versions[-1]
    runs = {
        version: deploy_and_measure(version, sizes if version == newest else None) for version in versions
    }
    profile = runs[newest]["profile"]
    # The Express profile: the same figures from a deployment of its own (the cold burst measures
    # Lambda's execution environments, which the workflow type does not change: left out).
    express = deploy_and_measure(newest, replace(sizes, cold=False), workflow_type="EXPRESS")["profile"]
    return {
        "profiles": {profile["workflow_type"]: profile, express["workflow_type"]: express},
        "burst_files_per_s_warm": profile["burst_files_per_s_warm"],
        "burst_files_per_s_cold": profile["burst_files_per_s_cold"],
        "warm_over_cold": profile["warm_over_cold"],
        "apply_seconds": {v: r["apply_seconds"] for v, r in runs.items()},
        "replan_seconds": {v: r["replan_seconds"] for v, r in runs.items()},
        "replan_clean": {v: r["replan_clean"] for v, r in runs.items()},
        "burst": {"provider": newest, **profile["burst"]},
    }


def collect(
    sizes: Sizes | None,
    skip_demo: bool,
    skip_monitor: bool,
    handlers_json: Path | None,
    split_apply_runs: int,
) -> dict[str, Any]:
    """Every figure; without ``sizes``, no pipeline figures (and no deployment for them)."""
    load_at_start = load_average()
    versions = [build.version for build in toolchain.providers()]
    figures: dict[str, Any] = {"provider": versions[-1]}
    if sizes is not None:
        figures.update(pipeline_figures(sizes, versions))
    if split_apply_runs > 0:
        figures.update(split_apply.figures(versions[-1], split_apply_runs, STACK_VARIABLES))
    if not skip_monitor:
        monitor = monitor_ratio(handlers_json)
        figures["monitor_concurrent_over_serial"] = monitor["monitor_concurrent_over_serial"]
        figures["monitor"] = monitor
    if not skip_demo:
        figures["demo"] = demo_seconds()
        figures["demo_seconds"] = figures["demo"]["seconds"]
    figures.update(
        measured_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        commit=commit(),
        cpus=os.cpu_count(),
        load_average_at_start=load_at_start,
        load_average_at_end=load_average(),
    )
    return figures


def _goal(profile: dict[str, Any], figure: str) -> str:
    return goal_text(profile["goals"][figure])


def _lost(figures: dict[str, Any]) -> str:
    if "files_without_row" not in figures:
        return ""
    return f"; {figures['files_without_row']} FILES WITHOUT A ROW, {figures['dead_letters']} dead-lettered"


def profile_lines(name: str, profile: dict[str, Any]) -> list[str]:
    mapping, warm, cold = profile["mapping"], profile["burst"]["warm"], profile["burst"]["cold"]
    quota, drained = profile["quota"], profile["drain"]
    lines = [
        f"  profile {name}: mapping of {mapping['maximum_concurrency']} concurrent batches of up to"
        f" {mapping['batch_size']} messages, {mapping['maximum_batching_window_in_seconds']} s window",
        f"    burst of {warm['files']} uploads, warm environments  {warm['files_per_s']:>7} files/s"
        f"  ({_goal(profile, 'burst_files_per_s_warm')}; {warm['seconds']} s, {warm['cold_starts']} cold starts{_lost(warm)})",
    ]
    if cold is not None:
        lines += [
            f"    burst of {cold['files']} uploads, process per invocation {cold['files_per_s']:>7} files/s"
            f"  ({cold['seconds']} s, {cold['cold_starts']} cold starts{_lost(cold)})",
            f"    warm_over_cold          {profile['warm_over_cold']:>7}x",
        ]
    throttle = quota["throttle"]
    lines += [
        f"    quota_utilisation       {quota['quota_utilisation']!s:>7}"
        f"  ({_goal(profile, 'quota_utilisation')}; {quota['files']} uploads, StartExecution"
        f" {throttle['capacity']} at once + {throttle['refill_per_second']:g}/s)",
        f"      {quota.get('sustained_starts')} starts in {quota.get('sustained_seconds')} s after the first"
        f" {throttle['capacity']} ({quota.get('sustained_starts_per_s')}/s; longest gap"
        f" {quota.get('longest_gap_seconds')} s); {quota['executions_started']} started, {quota['throttled']}"
        f" throttled calls; messages received {quota['messages_received']}, reported failed"
        f" {quota['messages_reported_failed']}; last row after {quota['last_row_seconds']} s{_lost(quota)}",
    ]
    first_pass = quota.get("first_pass")
    if first_pass is not None:
        lines.append(
            f"      first pass (until the first {PAUSE_SECONDS:g} s without a start): {first_pass['starts']}"
            f" starts in {first_pass['seconds']} s, utilisation {first_pass['utilisation']};"
            f" {first_pass['starts_after_it']} starts after it"
        )
    lines += [
        f"    drain_seconds_after_{drained['files']}: queue drained {drained['queue_drained']} s,"
        f" last row {drained['last_row']} s ({drained['files_per_s']} files/s; uploads took"
        f" {drained['upload_seconds']} s{_lost(drained)})",
    ]
    return lines


def table(figures: dict[str, Any]) -> str:
    deployment = "one deployment, " if "profiles" in figures else ""
    lines = [
        "system benchmarks (one run on this machine; ratios are what to compare)",
        f"  {deployment}hashicorp/aws {toolchain.provider_label(figures['provider'])};"
        f" load average {figures['load_average_at_start']} at the start, {figures['load_average_at_end']} at the end",
    ]
    for name, profile in figures.get("profiles", {}).items():
        lines += profile_lines(name, profile)
    if "monitor" in figures:
        lines.append(
            f"  monitor_concurrent_over_serial {figures['monitor_concurrent_over_serial']}x"
            f" ({figures['monitor'].get('serial_seconds')} s -> {figures['monitor'].get('concurrent_seconds')} s)"
        )
    for version, seconds in figures.get("apply_seconds", {}).items():
        clean = "no changes" if figures["replan_clean"][version] else "CHANGES"
        lines.append(
            f"  terraform apply, hashicorp/aws {toolchain.provider_label(version)}: {seconds} s;"
            f" re-plan {figures['replan_seconds'][version]} s ({clean})"
        )
    if "split_apply" in figures:
        lines += split_apply.lines(
            figures["split_apply"], goal_text(figures["goals"]["apply_split_over_inline"])
        )
    if "demo" in figures:
        lines.append(f"  make demo: {figures['demo_seconds']} s (exit {figures['demo']['exit_status']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.system", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=Sizes.burst, help="uploads per burst (default 200)")
    parser.add_argument(
        "--quota-files", type=int, default=Sizes.quota, help="uploads of the throttled run (default 300)"
    )
    parser.add_argument(
        "--drain-files", type=int, default=Sizes.drain, help="uploads to drain (default 1000)"
    )
    parser.add_argument("--skip-cold", action="store_true", help="no burst with a process per invocation")
    parser.add_argument("--skip-demo", action="store_true", help="do not time the demo")
    parser.add_argument("--skip-monitor", action="store_true", help="no security monitor ratio")
    parser.add_argument(
        "--split-apply-runs", type=int, default=3, help="applies of each S3 variant (default 3)"
    )
    parser.add_argument("--skip-split-apply", action="store_true", help="no split/inline S3 apply figure")
    parser.add_argument("--only-split-apply", action="store_true", help="that figure alone")
    parser.add_argument("--handlers-json", type=Path, default=ROOT / "build" / "bench-handlers.json")
    parser.add_argument(
        "--output", type=Path, help="default build/bench-system.json, or bench-split-apply.json"
    )
    args = parser.parse_args(argv)
    if args.quota_files <= QUOTA_CAPACITY:
        parser.error(f"--quota-files must exceed the bucket's capacity ({QUOTA_CAPACITY})")
    if min(args.files, args.drain_files) < 1:
        parser.error("--files and --drain-files must be at least 1")
    if args.split_apply_runs < 1:
        parser.error("--split-apply-runs must be at least 1 (--skip-split-apply leaves the figure out)")
    if args.only_split_apply and args.skip_split_apply:
        parser.error("--only-split-apply and --skip-split-apply exclude each other")
    only = args.only_split_apply
    sizes = Sizes(burst=args.files, quota=args.quota_files, drain=args.drain_files, cold=not args.skip_cold)
    output = args.output or (SPLIT_APPLY_OUTPUT if only else OUTPUT)
    try:
        figures = collect(
            None if only else sizes,
            args.skip_demo or only,
            args.skip_monitor or only,
            args.handlers_json,
            0 if args.skip_split_apply else args.split_apply_runs,
        )
    except toolchain.ToolchainError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
