"""`make demo`: the whole pipeline on a local AWS, no Docker, no internet (given a local provider mirror).

Starts the emulator (``--emulator embedded``, the default, or ``ministack``: MiniStack with IAM
enforced), applies the real Terraform with the real hashicorp/aws provider, then shows five steps,
each checked against what it should do:

1. two uploads (one key with spaces, ``+`` and non-ASCII) -> their rows and SUCCEEDED executions;
2. a path-traversal key -> rejected: no execution, no row, an alert;
3. a write that fails -> 3 retries, a FAILED execution, an alert. On the embedded emulator a fault
   is injected into DynamoDB; on MiniStack an explicit IAM Deny of ``dynamodb:PutItem`` is attached
   to the writer's role (what would work on AWS too), then removed;
4. a bucket without KMS and a table with the default key -> the security monitor names exactly
   those, and alerts;
5. a summary; then the stack is destroyed and the emulator stopped (MiniStack: its whole process
   group, Lambda workers included).

Exit status 0 only if every step behaved as stated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from devkit import backends, toolchain, workspace
from devkit.backends import Backend
from devkit.ministack import MiniStackError
from devkit.pipeline import Pipeline, TimedOut
from devkit.stack import Stack
from emulator import EmulatorError

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


def seed_form_refused(p: Pipeline, key: str) -> str | None:
    """How the bucket answers the seed README's upload (``--sse aws:kms``, no key id); None if stored."""
    try:
        p.client("s3").put_object(
            Bucket=p.outputs["s3_bucket_name"], Key=key, Body=b"x", ServerSideEncryption="aws:kms"
        )
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{error.response['Error']['Code']} (HTTP {status})"
    return None


def step_uploads(p: Pipeline, run_id: str) -> Step:
    step = Step(
        "uploads become rows",
        "2 rows with the exact keys and S3 event times, 2 SUCCEEDED executions; `--sse aws:kms` alone refused",
    )
    keys = [f"demo-{run_id}/report-2026-11.csv", f"demo-{run_id}/Déjà vu + notes (v2) ✓.txt"]
    say("      upload form: no --sse option (default encryption applies the pipeline's key), or")
    say("      --sse aws:kms --sse-kms-key-id <kms_s3_key_arn>; the demo names the key")
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
    refused = seed_form_refused(p, f"demo-{run_id}/seed-form.txt")
    say(
        f"      the seed's `--sse aws:kms` without a key id -> {refused or 'STORED'}"
        " (it would be encrypted with the AWS-managed aws/s3 key, not the pipeline's)"
    )
    check(
        step,
        good == 2 and refused is not None,
        f"{good} of 2 rows exact, executions SUCCEEDED; seed form {refused}",
    )
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


def step_failing_write(p: Pipeline, backend: Backend, run_id: str) -> Step:
    step = Step(
        "failed write retried, alerted",
        "4 writer attempts (1 + 3 retries), FAILED, 1 alert with key and error",
    )
    key = f"demo-{run_id}-failing/ledger.csv"
    with backend.failing_writes(p, f"demo-{run_id}-failing/") as error:
        if backend.enforces_iam:
            say(
                f"      IAM: explicit Deny of dynamodb:PutItem attached to role {p.role_of('writer_lambda_name')}"
            )
        else:
            say(f"      injected fault: DynamoDB PutItem for this key -> {error}")
        say(f"      uploading {key}")
        p.upload(key)
        execution = p.wait_for_final_execution(key, timeout=120)
    if backend.enforces_iam:
        say("      IAM: the Deny is removed again")
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
    say(
        f"      created bucket {bucket} (no KMS: at most the default SSE-S3) and table {table} (AWS-owned key)"
    )
    say("      invoking the security monitor")
    try:
        report = p.invoke_monitor()
    finally:
        p.client("s3").delete_bucket(Bucket=bucket)
        p.client("dynamodb").delete_table(TableName=table)
    for finding in report["non_compliant"] + report["errors"]:
        say(f"      {finding['status']}: {finding['resource_type']} {finding['name']} - {finding['reason']}")
    counts = report.get("counts", {})
    say(f"      scanned {counts.get('scanned', '?')} resources, {counts.get('compliant', '?')} compliant")
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


def summarize(steps: list[Step]) -> None:
    say("[5/5] summary")
    width = max((len(s.title) for s in steps), default=10)
    for step in steps:
        say(f"      {'PASS' if step.ok else 'FAIL'}  {step.title.ljust(width)}  expected: {step.expected}")
        say(f"            {' ' * width}  observed: {step.observed}")


def teardown(stack: Stack, backend: backends.Backend, pipeline: Pipeline | None, steps: list[Step]) -> None:
    """Destroy the stack, then, whatever happened, remove the overrides and stop the backend."""
    say("[teardown] terraform destroy ...")
    try:
        if pipeline is not None and backend.name == "ministack":
            # MiniStack ignores encoding-type=url, so force_destroy cannot delete keys with '+'.
            try:
                pipeline.empty_bucket()
            except (BotoCoreError, ClientError) as error:
                say(f"[teardown] emptying the bucket failed: {error}")
        if stack.has_state():
            stack.destroy()
    except workspace.TerraformError as error:
        say(str(error))
        steps.append(Step("terraform destroy", "the stack is destroyed", "destroy failed", ok=False))
    finally:
        try:
            stack.remove_overrides()
        finally:
            backend.stop()


def run(port: int, emulator: str = backends.DEFAULT) -> int:
    run_id = uuid.uuid4().hex[:6]
    started = time.monotonic()
    build = toolchain.select()  # before the backend starts: without a provider source nothing runs
    log = toolchain.ROOT / ".emulator" / "demo.log"
    backend = backends.make(emulator, port=port, log_path=log)
    if emulator == "ministack":
        say(
            f"[setup] MiniStack on 127.0.0.1:{port} (AUTH=true: IAM enforced; TLS; log .emulator/ministack.log)"
        )
    else:
        say(f"[setup] embedded emulator on 127.0.0.1:{port} (moto server, local Lambda runtime)")
    try:
        backend.start()
    except (EmulatorError, MiniStackError) as error:
        say(f"[setup] {error}. Is `make up` running? Use `make down`, or PORT=4567 make demo.")
        return 1
    stack = Stack.staged(
        backend.endpoint_url, build.version, name=f"demo-{emulator}", ca_bundle=backend.ca_bundle
    )
    steps: list[Step] = []
    pipeline: Pipeline | None = None
    try:
        say(f"[setup] terraform apply with hashicorp/aws {toolchain.provider_label(build.version)} ...")
        t0 = time.monotonic()
        outputs = stack.deploy()
        say(f"[setup] applied in {time.monotonic() - t0:.0f} s; bucket {outputs['s3_bucket_name']}")
        pipeline = backend.pipeline(outputs)
        pipeline.subscribe_alerts(f"demo-alerts-{run_id}")
        plan: list[tuple[str, Callable[[], Step]]] = [
            ("two uploads -> rows and executions", lambda: step_uploads(pipeline, run_id)),
            ("a path-traversal key", lambda: step_traversal(pipeline)),
            ("a write that fails", lambda: step_failing_write(pipeline, backend, run_id)),
            ("the security monitor", lambda: step_monitor(pipeline, run_id)),
        ]
        for number, (title, action) in enumerate(plan, start=1):
            say(f"[{number}/5] {title} ...")
            try:
                step = action()
            except (TimedOut, KeyError, IndexError, BotoCoreError, ClientError) as error:
                step = Step(title, "see above", f"error: {error}", ok=False)
            steps.append(step)
            say(f"[{number}/5] {'OK' if step.ok else 'FAILED'}: {step.observed}")
    except workspace.TerraformError as error:
        say(str(error))
        steps.append(Step("terraform apply", "the stack applies", "apply failed", ok=False))
    finally:
        summarize(steps)
        teardown(stack, backend, pipeline, steps)
        say(f"[teardown] {emulator} emulator stopped; {time.monotonic() - started:.0f} s in all")
    ok = len(steps) == 4 and all(s.ok for s in steps)
    say("demo: every step behaved as stated" if ok else "demo: some steps did not behave as stated")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--emulator",
        choices=backends.NAMES,
        default=os.environ.get("EMULATOR") or backends.DEFAULT,
        help="embedded (default) or ministack",
    )
    args = parser.parse_args(argv)
    try:
        return run(args.port, args.emulator)
    except toolchain.ToolchainError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
