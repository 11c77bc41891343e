"""`make demo`: the whole pipeline on the embedded emulator, no Docker, no internet.

Starts the emulator, applies the real Terraform with the real hashicorp/aws provider, then shows
five steps, each checked against what it should do:

1. two uploads (one key with spaces, ``+`` and non-ASCII) -> their rows and SUCCEEDED executions;
2. a path-traversal key -> rejected: no execution, no row, an alert;
3. a write that fails (a fault injected into DynamoDB) -> 3 retries, a FAILED execution, an alert;
4. a bucket without KMS and a table with the default key -> the security monitor names exactly
   those, and alerts;
5. a summary; then the stack is destroyed and the emulator stopped.

Exit status 0 only if every step behaved as stated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from devkit import toolchain, workspace
from devkit.pipeline import Pipeline, TimedOut
from devkit.stack import Stack
from emulator import Emulator, EmulatorError

TRAVERSAL_KEY = "../etc/passwd"


@dataclass
class Step:
    title: str
    expected: str
    observed: str = ""
    ok: bool = False


def say(message: str = "") -> None:
    print(message, flush=True)


def check(step: Step, condition: bool, observed: str) -> None:
    step.observed = observed
    step.ok = condition


def step_uploads(p: Pipeline, run_id: str) -> Step:
    step = Step(
        "uploads become rows", "2 rows with the exact keys and S3 event times, 2 SUCCEEDED executions"
    )
    keys = [f"demo-{run_id}/report-2026-11.csv", f"demo-{run_id}/Déjà vu + notes (v2) ✓.txt"]
    for key in keys:
        say(f"      uploading s3://{p.outputs['s3_bucket_name']}/{key}")
        p.upload(key, f"content of {key}\n".encode())
    good = 0
    for key in keys:
        execution = p.wait_for_final_execution(key)
        event_time = json.loads(execution["input"])["event_time"]
        rows = p.rows_for(key)
        row = rows[0] if len(rows) == 1 else {}
        exact = (
            row.get("Filename", {}).get("S") == key and row.get("UploadTimestamp", {}).get("S") == event_time
        )
        good += exact and execution["status"] == "SUCCEEDED"
        say(f"      row: Filename={key!r} UploadTimestamp={row.get('UploadTimestamp', {}).get('S')}")
        say(f"           execution {execution['name']} -> {execution['status']}")
    check(step, good == 2, f"{good} of 2 rows exact, executions SUCCEEDED")
    return step


def step_traversal(p: Pipeline) -> Step:
    step = Step("path traversal rejected", f"{TRAVERSAL_KEY!r}: no execution, no row, 1 alert naming it")
    before = len(p.executions())
    say(f"      uploading key {TRAVERSAL_KEY!r}")
    p.upload(TRAVERSAL_KEY, b"malicious\n")
    alerts = [
        a for a in p.wait_for_alerts(lambda a: TRAVERSAL_KEY in a.message) if TRAVERSAL_KEY in a.message
    ]
    started = len(p.executions()) - before
    rows = len(p.rows_for(TRAVERSAL_KEY))
    say(f"      alert: {alerts[0].subject}")
    for line in alerts[0].message.splitlines()[:6]:
        say(f"        | {line}")
    check(
        step,
        started == 0 and rows == 0 and len(alerts) == 1,
        f"{started} executions, {rows} rows, {len(alerts)} alert",
    )
    return step


def step_failing_write(p: Pipeline, emulator: Emulator, run_id: str) -> Step:
    step = Step(
        "failed write retried, alerted",
        "4 writer attempts (1 + 3 retries), FAILED, 1 alert with key and error",
    )
    key = f"demo-{run_id}-failing/ledger.csv"
    emulator.add_fault(
        "DynamoDB_20120810.PutItem",
        match=f"demo-{run_id}-failing/",
        error_code="ProvisionedThroughputExceededException",
        message="injected by the demo: table over capacity",
    )
    say("      injected fault: DynamoDB PutItem for this key -> ProvisionedThroughputExceededException")
    say(f"      uploading {key}")
    try:
        p.upload(key)
        execution = p.wait_for_final_execution(key, timeout=120)
    finally:
        emulator.clear_faults()
    attempts = p.writer_attempts(execution["executionArn"])
    alerts = [a.json() or {} for a in p.wait_for_alerts(lambda a: key in a.message) if key in a.message]
    alert = alerts[0] if alerts else {}
    say(f"      execution {execution['name']} -> {execution['status']} after {attempts} writer attempts")
    say(f"      alert: key={alert.get('key')!r} error={alert.get('error')!r}")
    check(
        step,
        attempts == 4 and execution["status"] == "FAILED" and len(alerts) == 1 and alert.get("key") == key,
        f"{attempts} attempts, {execution['status']}, {len(alerts)} alert",
    )
    return step


def step_monitor(p: Pipeline, run_id: str) -> Step:
    bucket, table = f"demo-unencrypted-{run_id}", f"demo-default-key-{run_id}"
    step = Step("security monitor", f"exactly {bucket} and {table} non-compliant, 1 alert")
    p.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": p.region})
    p.client("dynamodb").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    say(f"      created bucket {bucket} (no default encryption) and table {table} (AWS-owned key)")
    say("      invoking the security monitor")
    report = p.invoke_monitor()
    for finding in report["non_compliant"] + report["errors"]:
        say(f"      {finding['status']}: {finding['resource_type']} {finding['name']} - {finding['reason']}")
    say(f"      compliant: {', '.join(sorted(f['name'] for f in report['compliant']))}")
    flagged = {f["name"] for f in report["non_compliant"]}
    alerts = [a for a in p.wait_for_alerts(lambda a: bucket in a.message) if bucket in a.message]
    if alerts:
        say(f"      alert: {alerts[0].subject}")
    check(
        step,
        flagged == {bucket, table} and not report["errors"] and len(alerts) == 1,
        f"non-compliant: {sorted(flagged)}; {len(report['errors'])} errors; {len(alerts)} alert",
    )
    return step


def run(port: int, provider: str | None) -> int:
    run_id = uuid.uuid4().hex[:6]
    started = time.monotonic()
    build = toolchain.select(provider)
    say(f"[setup] embedded emulator on 127.0.0.1:{port} (moto server, local Lambda runtime)")
    emulator = Emulator(port=port, log_path=toolchain.ROOT / ".emulator" / "demo.log")
    try:
        emulator.start()
    except EmulatorError as error:
        say(f"[setup] {error}. Is `make up` running? Use `make down`, or PORT=4567 make demo.")
        return 1
    stack = Stack.staged(emulator.endpoint_url, build.version, name="demo")
    steps: list[Step] = []
    try:
        say(f"[setup] terraform apply with hashicorp/aws {build.version} ...")
        t0 = time.monotonic()
        outputs = stack.deploy()
        say(f"[setup] applied in {time.monotonic() - t0:.0f} s; bucket {outputs['s3_bucket_name']}")
        pipeline = Pipeline(emulator.endpoint_url, outputs)
        pipeline.subscribe_alerts(f"demo-alerts-{run_id}")
        plan: list[tuple[str, Callable[[], Step]]] = [
            ("two uploads -> rows and executions", lambda: step_uploads(pipeline, run_id)),
            ("a path-traversal key", lambda: step_traversal(pipeline)),
            ("a write that fails", lambda: step_failing_write(pipeline, emulator, run_id)),
            ("the security monitor", lambda: step_monitor(pipeline, run_id)),
        ]
        for number, (title, action) in enumerate(plan, start=1):
            say(f"[{number}/5] {title} ...")
            try:
                step = action()
            except (TimedOut, KeyError, IndexError) as error:
                step = Step(title, "see above", f"error: {error}", ok=False)
            steps.append(step)
            say(f"[{number}/5] {'OK' if step.ok else 'FAILED'}: {step.observed}")
    except workspace.TerraformError as error:
        say(str(error))
        steps.append(Step("terraform apply", "the stack applies", "apply failed", ok=False))
    finally:
        say("[5/5] summary")
        width = max((len(s.title) for s in steps), default=10)
        for step in steps:
            say(
                f"      {'PASS' if step.ok else 'FAIL'}  {step.title.ljust(width)}  expected: {step.expected}"
            )
            say(f"            {' ' * width}  observed: {step.observed}")
        say("[teardown] terraform destroy ...")
        try:
            if stack.has_state():
                stack.destroy()
        except workspace.TerraformError as error:
            say(str(error))
            steps.append(Step("terraform destroy", "the stack is destroyed", "destroy failed", ok=False))
        stack.remove_overrides()
        emulator.stop()
        say(f"[teardown] emulator stopped; {time.monotonic() - started:.0f} s in all")
    ok = len(steps) == 4 and all(s.ok for s in steps)
    say("demo: every step behaved as stated" if ok else "demo: some steps did not behave as stated")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--provider", default=None, help="hashicorp/aws version (default: newest offline)")
    args = parser.parse_args(argv)
    try:
        return run(args.port, args.provider)
    except toolchain.ToolchainError as error:
        say(f"demo: {error}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
