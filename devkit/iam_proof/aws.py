"""``make iam-proof-aws``: the IAM proof against real IAM, in a sandbox deployment of the account.

``make iam-proof`` shows on MiniStack that every grant is needed by making, as each role and as each
service principal, the requests AWS makes, with markings from which MiniStack's evaluator gives them
the context AWS would (``kms:ViaService``, ``aws:SourceArn``...), and by reading MiniStack's denial
log. Neither exists on AWS: no caller can act as a service principal or set ``kms:ViaService``, and
there is no denial log. So on AWS the proof asks the question the way a user would see the answer:

* it deploys the stack as ``make e2e-aws`` does (``ingest-<run id>``, tagged with the run id, the
  confirmation first, destroy and sweep in a ``finally``);
* it runs the pipeline's own scenarios (:data:`AWS_SCENARIOS`: an upload becomes a row, a rejected
  key an alert, a failed write and a failed start are reported, the monitor finds its fixtures and
  runs on its schedule, the operator reconciles and re-drives the dead-letter queue, a key
  administrator administers the keys): every request in them is made by the real services with the
  real roles, keys and conditions;
* for each statement it takes the grants away through the AWS API, waits for the change to
  propagate (:data:`SETTLE_SECONDS`), runs the scenarios of the principals it applies to, and
  restores it (waiting again). A grant is **proven** when, with only that grant taken away, AWS
  answered one of the proof's own requests with an access denial naming its action, or a scenario
  broke (its outcome is in the report);
* what neither shows is **not shown** (with its MiniStack justification where there is one): mostly
  the services' own requests whose failure no scenario observes (an alarm's publish, log
  delivery), and credentials a service caches (a trust policy taken away does not stop a warm
  function).

Compared with ``build/iam-proof.json`` (``make iam-proof``), the report says which grants real IAM
needs that MiniStack could only justify (the key policies' conditions, ``kms:ViaService``, the
services' own requests), and which MiniStack showed that this run did not.

CLI: ``python -m devkit.iam_proof.aws [--yes] [--run-id ID] [--region R] [--only COMPONENT ...]
[--settle S] [--endpoint URL --ca-bundle PEM]`` (an endpoint: MiniStack with AUTH=true, as in
``make test``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from devkit import cost, sweep, toolchain
from devkit import pipeline as waits
from devkit.account import DEFAULT_REGION, AccountError, Caller, caller
from devkit.iam_proof.answered import SETTLE_SECONDS, TIMEOUT_SCALE, Answers, AwsProof
from devkit.iam_proof.grants import Locator, enumerate_grants
from devkit.iam_proof.policies import carriers, operator_carriers, output_documents, state_resources
from devkit.iam_proof.prove import key_administrator
from devkit.iam_proof.report import ROOT, Result
from devkit.iam_proof.scenarios import ProofError, Scenarios
from devkit.pipeline import Pipeline
from devkit.sandbox import Interrupted, SandboxError, check_run_id, new_run_id, on_sigterm, variables
from devkit.stack import Stack
from devkit.workspace import TerraformError

REPORT = ROOT / "build" / "iam-proof-aws.json"
MINISTACK_REPORT = ROOT / "build" / "iam-proof.json"


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    who: Caller
    run_id: str
    settle: float
    only: tuple[str, ...] = ()
    ca_bundle: Path | None = None
    report: Path = REPORT
    users: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"{sweep.PREFIX}-{self.run_id}"

    def tags(self, started: datetime) -> dict[str, str]:
        return {sweep.RUN_TAG: self.run_id, sweep.STARTED_TAG: started.isoformat(timespec="seconds")}

    def pipeline(self, outputs: dict[str, str]) -> Pipeline:
        local = self.who.endpoint is not None
        return Pipeline(
            self.who.endpoint,
            outputs,
            self.who.region,
            self.ca_bundle,
            credentials=("test", "test") if local else None,
            iam_settle=self.settle,
        )

    def prove(self, stack: Stack, outputs: dict[str, str], started: datetime) -> tuple[bool, list[Result]]:
        tags = self.tags(started)
        answers = Answers()
        answers.listen()
        pipeline = self.pipeline(outputs)
        pipeline.subscribe_alerts(f"{self.prefix}-proof-alerts", tags)
        resources = state_resources(stack)
        scenarios = Scenarios(pipeline, fixture_prefix=f"{self.prefix}-proof", fixture_tags=tags)
        on_aws = self.who.endpoint is None
        scenarios.shared_account, scenarios.purge_wait = on_aws, 60.0 if on_aws else 0.0
        scenarios.setup()
        try:
            scenarios.admin_keys = [r["values"]["arn"] for r in resources if r["type"] == "aws_kms_key"]
            admin = f"{self.prefix}-proof-key-administrator"
            self.users.append(admin)
            scenarios.key_admin, scenarios.key_admin_arn = key_administrator(
                pipeline, scenarios.admin_keys, admin, tags
            )
            operator_found, scenarios.operators = operator_carriers(
                pipeline, output_documents(stack), f"{self.prefix}-proof", tags
            )
            self.users += [operator.user for operator in scenarios.operators.values()]
            time.sleep(self.settle)  # the new users' keys and policies
            proof = AwsProof(pipeline, answers, scenarios, settle=self.settle)  # type: ignore[arg-type]
            proof.discover()
            print("[iam-proof-aws] baseline: every scenario, nothing denied ...", flush=True)
            baseline_ok = proof.baseline()
            groups = enumerate_grants(carriers(pipeline, resources) + operator_found, Locator())
            if self.only:
                groups = [(c, g) for c, g in groups if proof.components_of(g[0]) & set(self.only)]
            total = sum(len(g) for _, g in groups)
            print(
                f"[iam-proof-aws] {total} grants in {len(groups)} statements; taking each away ...",
                flush=True,
            )
            results: list[Result] = []
            if baseline_ok:  # a broken baseline would make every grant look needed
                for carrier, grants in groups:
                    results += proof.prove(carrier, grants)
            return baseline_ok, results
        finally:
            scenarios.teardown()
            pipeline.empty_bucket()

    def clean_up(self, stack: Stack) -> bool:
        """The proof's users, the stack, whatever the run id still tags; True when nothing is left."""
        destroyed, swept = False, 1
        iam = self.pipeline({}).client("iam")
        for user in self.users:
            with contextlib.suppress(ClientError):  # never created, or already gone
                sweep.delete_user(iam, user)
        try:
            print("[iam-proof-aws] terraform destroy", flush=True)
            stack.destroy(timeout=1800)
            destroyed = not stack.has_state()
        except (TerraformError, Interrupted, KeyboardInterrupt) as error:
            self.errors.append(f"destroy: {error}")
        try:
            swept = sweep.sweep(
                sweep.clients(self.who.endpoint, self.who.region),
                self.run_id,
                None,
                confirmed=True,
                out=lambda line: print(f"[iam-proof-aws] {line}"),
            )
        except sweep.SweepError as error:
            self.errors.append(f"sweep: {error}")
        finally:
            stack.remove_overrides()
        if destroyed and swept == 0:
            shutil.rmtree(stack.workspace.path, ignore_errors=True)
            return True
        print(f"[iam-proof-aws] something is left: run `make aws-sweep RUN_ID={self.run_id} CONFIRM=yes`")
        return False

    def execute(self) -> int:
        started = datetime.now(UTC)
        began = time.monotonic()
        stack = Stack.staged(
            self.who.endpoint, name=f"iam-proof-{self.run_id}", ca_bundle=self.ca_bundle, fresh=False
        )
        previous = signal.signal(signal.SIGTERM, on_sigterm)
        baseline_ok, results, clean = False, [], False
        try:
            try:
                print(f"[iam-proof-aws] terraform apply in {stack.workspace.path}", flush=True)
                outputs = stack.deploy(variables(self.run_id, started), timeout=1800)
                baseline_ok, results = self.prove(stack, outputs, started)
            except (
                TerraformError,
                ClientError,
                BotoCoreError,
                ProofError,
                Interrupted,
                KeyboardInterrupt,
            ) as error:
                self.errors.append(f"{type(error).__name__}: {error}")
                print(f"[iam-proof-aws] stopped: {type(error).__name__}: {str(error)[-2000:]}", flush=True)
        finally:
            signal.signal(signal.SIGTERM, on_sigterm)
            clean = self.clean_up(stack)
            signal.signal(signal.SIGTERM, previous)
        hours = (time.monotonic() - began) / 3600
        print(cost.summary(cost.Usage(files=0, executions=0), hours, "iam-proof-aws"), flush=True)
        facts = {
            "backend": self.who.where,
            "account": self.who.account,
            "region": self.who.region,
            "run_id": self.run_id,
            "provider": stack.provider,
            "settle_seconds": self.settle,
            "only": list(self.only),
            "seconds": round(time.monotonic() - began),
            "cleaned_up": clean,
            "errors": self.errors,
        }
        return finish(results, baseline_ok and not self.errors, clean, self.report, facts)


# --- the report ----------------------------------------------------------------------------------


def compared(results: list[Result], ministack: Path = MINISTACK_REPORT) -> list[str]:
    """What this run shows beside ``make iam-proof``'s report, when there is one."""
    if not ministack.is_file():
        return [f"no {ministack.name} to compare with: run `make iam-proof` first to see the difference"]
    earlier = {
        (g["kind"], g["sid"], g["action"]): g["status"]
        for g in json.loads(ministack.read_text()).get("grants", [])
    }
    lines = []
    for result in results:
        before = earlier.get((result.grant.kind, result.grant.sid, result.grant.action))
        if result.status == "proven" and before in ("justified", "unproven"):
            lines.append(
                f"shown on AWS, {before} on MiniStack: {result.grant.label()} ({result.grant.declared})"
            )
        elif result.status != "proven" and before == "proven":
            lines.append(f"shown on MiniStack, not on AWS: {result.grant.label()} ({result.grant.declared})")
    return lines


def summary(results: list[Result]) -> str:
    proven = sum(r.status == "proven" for r in results)
    answered = sum(r.status == "proven" and "AWS answered" in r.denial for r in results)
    return (
        f"{proven} of {len(results)} grants shown on AWS ({answered} by a denial AWS answered, "
        f"{proven - answered} by a scenario that broke), {len(results) - proven} not shown"
    )


def finish(results: list[Result], ran_ok: bool, clean: bool, report: Path, facts: dict[str, Any]) -> int:
    """Write the report, print what was shown and what not; 0 when the baseline held, every
    statement was restored, and nothing was left behind."""
    report.parent.mkdir(parents=True, exist_ok=True)
    document = {**facts, "summary": summary(results), "grants": [r.entry() for r in results]}
    report.write_text(json.dumps(document, indent=2) + "\n")
    for result in results:
        evidence = result.denial if result.status == "proven" else result.reason
        print(f"{result.status:<9}  {result.grant.label()}  {result.grant.declared}  {evidence[:160]}")
    for line in compared(results):
        print(f"[iam-proof-aws] {line}")
    print(f"[iam-proof-aws] {report} written")
    print(summary(results))
    return 0 if ran_ok and clean and results else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.iam_proof.aws", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--yes", action="store_true", help="deploy (CONFIRM=yes); without it, only say what would be"
    )
    parser.add_argument("--run-id", default=None, help="1-13 lowercase letters/digits (default: random)")
    parser.add_argument("--region", default=None, help=f"default: the chain's region, else {DEFAULT_REGION}")
    parser.add_argument("--only", nargs="*", default=[], help="prove only these parts (trigger, writer, ...)")
    parser.add_argument(
        "--settle", type=float, default=None, help=f"seconds per change (AWS: {SETTLE_SECONDS:g})"
    )
    parser.add_argument("--endpoint", default=None, help="MiniStack (AUTH=true) instead of AWS (make test)")
    parser.add_argument("--ca-bundle", type=Path, default=None, help="the endpoint's certificate")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    try:
        run_id = check_run_id(args.run_id or new_run_id())
        who = caller(args.endpoint, args.region)
        print(
            f"iam-proof-aws: account {who.account} ({who.arn}), region {who.region}, endpoint {who.where}\n"
            f"iam-proof-aws: run {run_id}: every resource named {sweep.PREFIX}-{run_id}-... and tagged "
            f"{sweep.RUN_TAG}={run_id}; each grant of the stack is taken away in turn (3-4 hours on AWS)",
            flush=True,
        )
        if not args.yes:
            raise SandboxError(
                "not confirmed: run it again with CONFIRM=yes (or --yes) to deploy; nothing was created"
            )
        toolchain.select(None)
    except (SandboxError, AccountError, toolchain.ToolchainError) as error:
        print(f"make iam-proof-aws: {error}", file=sys.stderr)
        return 2
    settle = args.settle if args.settle is not None else (0.0 if who.endpoint else SETTLE_SECONDS)
    if who.endpoint is None and "E2E_TIMEOUT_SCALE" not in os.environ:
        waits.TIMEOUT_SCALE = TIMEOUT_SCALE  # read by every wait_for, at each call
    run = Run(who, run_id, settle, tuple(args.only), args.ca_bundle, args.report)
    return run.execute()


if __name__ == "__main__":
    sys.exit(main())
