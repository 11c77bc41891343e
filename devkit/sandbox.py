"""``make e2e-aws``: the pipeline deployed into a real AWS account, tested, destroyed, swept.

The run, in order:

1. the caller: the standard credential chain (environment, ``~/.aws``, SSO, a role) asked through
   STS; without credentials, or refused, one sentence and nothing is created;
2. the plan: account, region, caller and the run's prefix (``ingest-<run id>``) are printed; without
   ``--yes`` (``CONFIRM=yes``) the run stops there, having created nothing;
3. ``terraform apply`` in a working directory of its own (``build/tf/sandbox-<run id>-<provider>``) with
   :func:`variables`: every resource tagged with the run id and its start time
   (:data:`devkit.sweep.RUN_TAG`, :data:`devkit.sweep.STARTED_TAG`), destroyable settings
   (force-destroyed bucket, no deletion protection, 7-day key deletion, 1-day logs);
4. the e2e cases that make sense on AWS (``tests/e2e``'s tests marked ``aws``) in a pytest
   subprocess with ``E2E_TARGET=aws``, against the deployment just made, their waits scaled for AWS's
   real latencies (``E2E_TIMEOUT_SCALE``);
5. in a ``finally`` (also after a failed apply, a failed case, Ctrl-C or SIGTERM): ``terraform
   destroy``, then :mod:`devkit.sweep` for anything still tagged with the run id (what the tests
   created beside the stack, or what a failed destroy left), then what the run cost by README's cost
   model (:mod:`devkit.cost`).

``make test`` runs this same path against the embedded emulator (``--endpoint``, moto's fake
account), so the AWS target cannot rot; nothing there needs credentials or leaves loopback.

CLI: ``python -m devkit.sandbox [--yes] [--run-id ID] [--endpoint URL] [--region R] [--keep-going]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from devkit import cost, sweep, toolchain
from devkit.account import DEFAULT_REGION, AccountError, Caller, caller
from devkit.backends import Sandbox
from devkit.stack import Stack
from devkit.workspace import TerraformError

ROOT = toolchain.ROOT
RUN_ID_PATTERN = re.compile(r"^[a-z0-9]{1,13}$")
"""13 at most: ``ingest-<run id>`` is the project name, 20 characters at most (variables.tf), and
GitHub's run ids have 11 digits (the workflow's ``gh<run id>``)."""
ENVIRONMENT = "e2e"
AWS_TIMEOUT_SCALE = 4.0
"""Real AWS is slower than an emulator: S3 notifications can take seconds to a minute, IAM changes
propagate in seconds, alarms evaluate each minute. Every e2e wait is scaled by this on AWS."""
APPLY_TIMEOUT = 1800.0
DESTROY_TIMEOUT = 1800.0
CASES_TIMEOUT = 3600.0


class SandboxError(RuntimeError):
    """The run cannot start: the message says why and what to do, in one sentence."""


def new_run_id() -> str:
    return secrets.token_hex(4)


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise SandboxError(
            f"RUN_ID {run_id!r} must be 1-13 lowercase letters or digits (it is part of every resource name)"
        )
    return run_id


def project_name(run_id: str) -> str:
    return f"{sweep.PREFIX}-{run_id}"


def variables(run_id: str, started: datetime) -> dict[str, object]:
    """The run's Terraform variables: its own names and tags, and settings that destroy cleanly."""
    return {
        "project_name": project_name(run_id),
        "environment": ENVIRONMENT,
        "tags": {sweep.RUN_TAG: run_id, sweep.STARTED_TAG: started.isoformat(timespec="seconds")},
        "s3_force_destroy": True,
        "dynamodb_deletion_protection": False,
        "kms_deletion_window_days": sweep.KMS_PENDING_DAYS,
        "log_retention_days": 1,
        # The dead-letter case: a failed start is back after 31 s and dead-lettered after two.
        "trigger_lambda_timeout": 5,
        "queue_max_receive_count": 2,
        "retry_interval_seconds": 1,
    }


def plan_text(who: Caller, run_id: str) -> str:
    return (
        f"e2e-aws: account {who.account} ({who.arn}), region {who.region}, endpoint {who.where}\n"
        f"e2e-aws: run {run_id}: every resource named {project_name(run_id)}-{ENVIRONMENT}-... and tagged "
        f"{sweep.RUN_TAG}={run_id}"
    )


class Interrupted(Exception):
    """SIGTERM (a CI job cancelled): raised so that the ``finally`` destroys the stack."""


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


@dataclass
class Outcome:
    applied: bool = False
    cases: int | None = None  # pytest's exit status
    destroyed: bool = False
    swept: int | None = None  # the sweep's exit status
    usage: cost.Usage | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.applied and self.cases == 0 and self.destroyed and self.swept == 0 and not self.errors


def run_cases(state_file: Path, who: Caller, run_id: str, pytest_args: list[str]) -> int:
    """The ``aws`` e2e cases against the deployment described by ``state_file``; pytest's status."""
    env = {
        **os.environ,
        "E2E_TARGET": "aws",
        "E2E_SANDBOX_STATE": str(state_file),
        "E2E_TIMEOUT_SCALE": "1" if who.endpoint else str(AWS_TIMEOUT_SCALE),
        "AWS_DEFAULT_REGION": who.region,
        "AWS_REGION": who.region,
    }
    # Against an emulator the cases must stay on loopback, as every test here does.
    loopback = ["--allow-hosts=127.0.0.1,localhost,::1"] if who.endpoint else []
    command = [
        sys.executable, "-m", "pytest", "tests/e2e", "-m", "aws", "-p", "no:cacheprovider",
        f"--junitxml=build/sandbox-{run_id}.xml", *loopback, *pytest_args,
    ]  # fmt: skip
    print(f"e2e-aws: running the AWS cases: {' '.join(command[1:])}", flush=True)
    try:
        return subprocess.run(command, cwd=ROOT, env=env, timeout=CASES_TIMEOUT, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"e2e-aws: the cases did not finish within {CASES_TIMEOUT:.0f} s and were stopped", flush=True)
        return 124


def _usage(who: Caller, outputs: dict[str, str]) -> cost.Usage:
    """What the run made the pipeline do, read before the destroy: rows written, executions."""
    pipeline = Sandbox(who.endpoint, who.region).pipeline(outputs)
    return cost.Usage(files=pipeline.row_count(), executions=len(pipeline.executions()))


def e2e(who: Caller, run_id: str, pytest_args: list[str]) -> Outcome:
    """Apply, run the cases, and always destroy and sweep (see the module's docstring)."""
    outcome = Outcome()
    started = datetime.now(UTC)
    began = time.monotonic()
    # A run id used again (a run that was killed) applies over its own state instead of forgetting it.
    stack = Stack.staged(who.endpoint, name=f"sandbox-{run_id}", fresh=False)
    client = sweep.clients(who.endpoint, who.region)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        try:
            print(f"e2e-aws: terraform apply in {stack.workspace.path}", flush=True)
            outputs = stack.deploy(variables(run_id, started), timeout=APPLY_TIMEOUT)
            outcome.applied = True
            state_file = stack.workspace.path / "sandbox-state.json"
            state = {"outputs": outputs, "second_plan": stack.pending_changes(), "region": who.region}
            state |= {
                "endpoint": who.endpoint,
                "run_id": run_id,
                "started": started.isoformat(timespec="seconds"),
            }
            state_file.write_text(json.dumps(state, indent=2))
            outcome.cases = run_cases(state_file, who, run_id, pytest_args)
            outcome.usage = _usage(who, outputs)
        except (TerraformError, ClientError, BotoCoreError, Interrupted, KeyboardInterrupt) as error:
            outcome.errors.append(f"{type(error).__name__}: {error}")
            print(f"e2e-aws: stopped: {type(error).__name__}: {str(error)[-2000:]}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, on_sigterm)  # a second SIGTERM must not skip the cleanup either
        _clean_up(stack, client, run_id, outcome)
        signal.signal(signal.SIGTERM, previous)
    hours = (time.monotonic() - began) / 3600
    print(cost.summary(outcome.usage or cost.Usage(files=0, executions=0), hours), flush=True)
    return outcome


def _clean_up(stack: Stack, client: Any, run_id: str, outcome: Outcome) -> None:
    errors = outcome.errors
    try:
        print("e2e-aws: terraform destroy", flush=True)
        stack.destroy(timeout=DESTROY_TIMEOUT)
        outcome.destroyed = not stack.has_state()
    except (TerraformError, Interrupted, KeyboardInterrupt) as error:
        errors.append(f"destroy: {error}")
        print(f"e2e-aws: terraform destroy failed; the sweep deletes what is left: {str(error)[-2000:]}")
    try:
        outcome.swept = sweep.sweep(
            client, run_id, None, confirmed=True, out=lambda line: print(f"e2e-aws: {line}")
        )
    except sweep.SweepError as error:
        errors.append(f"sweep: {error}")
        print(f"e2e-aws: the sweep failed: {error}; run `make aws-sweep RUN_ID={run_id} CONFIRM=yes`")
    finally:
        stack.remove_overrides()
    if outcome.destroyed and outcome.swept == 0:  # nothing left to find: the working directory goes too
        shutil.rmtree(stack.workspace.path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--yes", action="store_true", help="deploy (CONFIRM=yes); without it, only say what would be"
    )
    parser.add_argument("--run-id", default=None, help="1-13 lowercase letters/digits (default: random)")
    parser.add_argument("--endpoint", default=None, help="an emulator's endpoint instead of AWS (make test)")
    parser.add_argument("--region", default=None, help=f"default: the chain's region, else {DEFAULT_REGION}")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments for the cases (after --)")
    args = parser.parse_args(argv)
    try:
        run_id = check_run_id(args.run_id or new_run_id())
        who = caller(args.endpoint, args.region)
        print(plan_text(who, run_id), flush=True)
        if not args.yes:
            raise SandboxError(
                "not confirmed: run it again with CONFIRM=yes (or --yes) to deploy; nothing was created"
            )
        toolchain.select(None)  # the provider source, before anything is created
    except (SandboxError, AccountError, toolchain.ToolchainError) as error:
        print(f"make e2e-aws: {error}", file=sys.stderr)
        return 2
    outcome = e2e(who, run_id, args.pytest_args)
    verdict = "passed" if outcome.ok else "FAILED"
    print(
        f"e2e-aws: {verdict}: applied {outcome.applied}, cases exit {outcome.cases}, destroyed "
        f"{outcome.destroyed}, sweep exit {outcome.swept}",
        flush=True,
    )
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
