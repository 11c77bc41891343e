"""``make iam-proof-aws`` run against MiniStack with AUTH=true, the only IAM this machine has, so the
AWS path cannot rot: the same command a user runs against AWS (``python -m devkit.iam_proof.aws``, a
subprocess), pointed at MiniStack with ``--endpoint``. Nothing in it reads MiniStack's denial log:
the evidence is what AWS also gives, the denials answered to the proof's own requests and the
scenarios that break. One part of the stack (the writer) is proven, to keep ``make test`` short;
the apply, the baseline of every AWS scenario, the mutation and restore, the destroy, the removal
of the proof's users and the sweep all run as they do on AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit import sweep, toolchain
from devkit.ministack import MiniStack

pytestmark = pytest.mark.e2e

ROOT = toolchain.ROOT
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniStack]:
    running = MiniStack(port=0, state_dir=tmp_path_factory.mktemp("ministack"), name="iam-proof-aws").start()
    before = os.environ.get("AWS_CA_BUNDLE")
    os.environ["AWS_CA_BUNDLE"] = str(running.ca_bundle)  # the sweeper's clients, as on a user's machine
    try:
        yield running
    finally:
        running.stop()
        if before is None:
            os.environ.pop("AWS_CA_BUNDLE", None)
        else:
            os.environ["AWS_CA_BUNDLE"] = before


def run_proof(server: MiniStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="test",  # MiniStack's account root
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        AWS_CA_BUNDLE=str(server.ca_bundle),
    )
    command = [
        sys.executable, "-m", "devkit.iam_proof.aws", "--endpoint", server.endpoint_url,
        "--ca-bundle", str(server.ca_bundle), "--region", REGION, *args,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False
    )


def test_unconfirmed_it_says_what_it_would_do_and_creates_nothing(server: MiniStack) -> None:
    result = run_proof(server, "--run-id", "unconfirmed")

    assert result.returncode == 2
    assert (
        "iam-proof-aws: run unconfirmed: every resource named ingest-unconfirmed-... and tagged"
        in result.stdout
    )
    assert result.stderr == (
        "make iam-proof-aws: not confirmed: run it again with CONFIRM=yes (or --yes) to deploy; "
        "nothing was created\n"
    )
    assert not (ROOT / "build" / "tf" / "iam-proof-unconfirmed").exists()
    assert sweep.discover(sweep.clients(server.endpoint_url, REGION), "unconfirmed") == []


def test_the_writers_grants_are_proven_by_what_aws_would_show_and_nothing_is_left(
    server: MiniStack, tmp_path: Path
) -> None:
    run_id = f"p{uuid.uuid4().hex[:6]}"
    report = tmp_path / "iam-proof-aws.json"

    result = run_proof(server, "--yes", "--run-id", run_id, "--only", "writer", "--report", str(report))

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    written = json.loads(report.read_text())
    grants = {(g["kind"], g["action"]): g for g in written["grants"]}
    # The writer's PutItem: no request of the proof's, but the upload scenario breaks without it.
    put = grants[("role-policy", "dynamodb:PutItem")]
    assert put["status"] == "proven", put
    assert put["scenario"] == "upload"
    assert put["denial"].startswith("broke with it taken away: upload:")
    assert {g["holder"] for g in written["grants"]} == {f"{sweep.PREFIX}-{run_id}-e2e-writer"}, (
        "--only writer: the writer role's grants only"
    )
    assert {g["status"] for g in written["grants"]} <= {"proven", "not shown"}
    assert written["cleaned_up"] is True
    assert written["errors"] == []
    assert "baseline upload" in output
    assert "BAD" not in output
    assert " grants shown on AWS (" in result.stdout.splitlines()[-1]
    # Nothing left: the stack destroyed, the proof's users deleted, nothing tagged with the run id.
    client = sweep.clients(server.endpoint_url, REGION)
    assert sweep.discover(client, run_id) == []
    users = [u["UserName"] for u in client("iam").list_users()["Users"]]
    assert not [u for u in users if u.startswith(f"{sweep.PREFIX}-{run_id}-")]
    assert not (ROOT / "build" / "tf" / f"iam-proof-{run_id}").exists()
