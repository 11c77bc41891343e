"""`make iam-proof`: every IAM grant of the deployed stack is needed, shown on MiniStack with AUTH=true.

1. Deploy the stack once onto MiniStack (IAM, resource and key policies enforced; TLS).
2. Baseline: run every scenario of the pipeline (:data:`SCENARIOS`) and require that each behaves
   and that MiniStack denied nothing but what a scenario denies on purpose.
3. Enumerate the grants from what is deployed, never from a list: every action of every Allow
   statement of the role policies (inline, attached, trust), the topic, queue and bucket policies,
   the Lambda function policies and the KMS key policies, found through the terraform state and read
   back through the AWS API; and of every policy document the stack exports as an output for others
   to attach (the reconcile tool's operator policy): the proof attaches it to an IAM user of its own
   and runs the output's scenarios (reconcile, dead-letter re-drive) as that user.
4. For every grant: take that one action away through the AWS API (no re-apply), rerun the scenarios
   of the principals it applies to, and look in MiniStack's denial log for a denial of exactly that
   action (a delivery S3 makes to a queue answers no request: MiniStack logs a line refusing it);
   restore. Found: ``proven`` (with the scenario and the denial). Not found: ``justified``
   when :data:`JUSTIFICATIONS` says why no emulator can show it and which AWS document requires it,
   else ``unproven``. To save time a statement's actions are first taken away together: each action
   denied then is confirmed alone; the others are taken away together again (a denied call can hide
   a later one), until a run denies none of them. A run that denies none of the removed actions
   follows the baseline's path, so removing any one of them alone would deny nothing either.
5. Write ``build/iam-proof.json`` (one entry per grant, with where it is declared), print a table
   and, last, ``N of M grants proven, K justified, U unproven``. Exit 0 only with 0 unproven.

A grant added to the HCL later is enumerated automatically; if no scenario shows it and no
justification covers it, it is ``unproven`` and the exit status says so: add a scenario, a
justification with its AWS reference, or remove the grant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from devkit import toolchain, workspace
from devkit.iam_proof.acting import Acting
from devkit.iam_proof.actor import Acted, Credentials
from devkit.iam_proof.grants import (
    ROOT,
    Carrier,
    Grant,
    Locator,
    allow_statements,
    as_list,
    condition_keys,
    enumerate_grants,
    grants_of,
    principals_of,
    resources_of,
    shape,
    short,
    without,
)
from devkit.iam_proof.justifications import GROUPS, JUSTIFICATIONS, Group, Justification
from devkit.iam_proof.policies import (
    Operator,
    carriers,
    operator_carriers,
    output_documents,
    proof_user,
    state_resources,
)
from devkit.iam_proof.prove import (
    REFUSED_DELIVERIES,
    Proof,
    acting_for,
    key_administrator,
    prove_stack,
    refused_deliveries,
)
from devkit.iam_proof.report import (
    AWS_EVALUATION,
    REPORT,
    Result,
    denial_text,
    finish,
    note_overlaps,
    summary,
    table,
)
from devkit.iam_proof.scenarios import EXEMPTION_TAG, Outcome, ProofError, Scenarios, Stopped
from devkit.iam_proof.tables import (
    COMPONENT_SCENARIOS,
    DELIBERATE,
    INDEPENDENT_CALLS,
    KEY_ADMINISTRATION,
    KEY_SCENARIOS,
    OUTPUT_SCENARIOS,
    RESOURCE_POLICIES,
    SCENARIOS,
    SERVICE_SCENARIOS,
    WRONG_DENIALS,
)
from devkit.ministack import MiniStack, MiniStackError
from devkit.stack import Stack

__all__ = [
    "AWS_EVALUATION",
    "COMPONENT_SCENARIOS",
    "DELIBERATE",
    "EXEMPTION_TAG",
    "GROUPS",
    "INDEPENDENT_CALLS",
    "JUSTIFICATIONS",
    "KEY_ADMINISTRATION",
    "KEY_SCENARIOS",
    "OUTPUT_SCENARIOS",
    "REFUSED_DELIVERIES",
    "REPORT",
    "RESOURCE_POLICIES",
    "ROOT",
    "SCENARIOS",
    "SERVICE_SCENARIOS",
    "WRONG_DENIALS",
    "Acted",
    "Acting",
    "Carrier",
    "Credentials",
    "Grant",
    "Group",
    "Justification",
    "Locator",
    "Operator",
    "Outcome",
    "Proof",
    "ProofError",
    "Result",
    "Scenarios",
    "Stopped",
    "acting_for",
    "allow_statements",
    "as_list",
    "carriers",
    "condition_keys",
    "denial_text",
    "enumerate_grants",
    "finish",
    "grants_of",
    "key_administrator",
    "main",
    "note_overlaps",
    "operator_carriers",
    "output_documents",
    "principals_of",
    "proof_user",
    "prove_stack",
    "refused_deliveries",
    "resources_of",
    "run",
    "shape",
    "short",
    "state_resources",
    "summary",
    "table",
    "without",
]


def run(provider: str | None, report: Path = REPORT) -> int:
    started = time.monotonic()
    server = MiniStack(port=0, name="iam-proof")
    print("[iam-proof] MiniStack with AUTH=true (IAM, resource and key policies enforced) ...", flush=True)
    server.start()
    stack = Stack.staged(server.endpoint_url, provider, name="iam-proof", ca_bundle=server.ca_bundle)
    baseline_ok, results = False, []
    try:
        print(f"[iam-proof] terraform apply with hashicorp/aws {stack.provider} ...", flush=True)
        baseline_ok, results = prove_stack(stack, server, stack.deploy(), started)
    finally:
        try:
            if stack.has_state():
                stack.destroy(timeout=300)
        finally:
            stack.remove_overrides()
            server.stop()
    facts = {
        "backend": "ministack (AUTH=true)",
        "provider": stack.provider,
        "seconds": round(time.monotonic() - started),
    }
    return finish(results, baseline_ok, report, facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.iam_proof", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    try:
        # The provider source is resolved before MiniStack starts: without one, nothing is started.
        return run(toolchain.select().version, args.report)
    except (MiniStackError, ProofError, workspace.TerraformError, toolchain.ToolchainError) as error:
        print(f"iam-proof: {error}", file=sys.stderr)
        return 2
