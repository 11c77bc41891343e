"""The reconcile tool (``ingestion_reconcile``; scripts/reconcile.py) against the embedded emulator,
with the pipeline's real pieces.

One in-process emulator for the module holds a versioned bucket per test, the metadata table with
the deployed key schema, the writer function from ``dist/lambda_writer.zip`` (``make package``)
and, per test, a state machine rendered from ``state_machine.asl.json`` as step_functions.tf
renders it. "The trigger" is played by starting an execution the way the trigger does (its name
and input contract), so the rows are written by the real writer.

An EXPRESS stack's state machine is created with ``type="EXPRESS"``: the emulator then serves it as
AWS does (names not idempotent, ListExecutions refused, express executions not described), and the
tool's Step Functions client fails the test outright if it calls ListExecutions, DescribeExecution
or GetExecutionHistory.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

import ingestion_reconcile as reconcile
from devkit.lambda_harness import create_metadata_table
from emulator import Emulator
from emulator.stepfunctions_api import running_executions
from ingestion_reconcile import cli, executions, objects, verdict
from lambda_common.contract import UploadRecord
from lambda_common.naming import execution_name

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "reconcile.py"
WRITER_ZIP = REPO_ROOT / "dist" / "lambda_writer.zip"
TEMPLATE = REPO_ROOT / "state_machine.asl.json"
REGION = "eu-central-1"
TABLE = "reconcile-file-metadata"
# A failed write is retried once, after this long: an execution whose first write fails stays
# RUNNING for that long, which is how a test holds an execution in flight.
RETRY_INTERVAL_SECONDS = 6
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,80}")
EXECUTION_API = ("ListExecutions", "DescribeExecution", "GetExecutionHistory")
"""What Step Functions does not serve for an EXPRESS state machine: the tool must not call it."""
SUMMARY = re.compile(
    r"objects=(\d+) ingested=(\d+) in_flight=(\d+) missing=(\d+) redriven=(\d+)"
    r" rejected=(\d+) folder_markers=(\d+) failed=(\d+)"
)

_names = itertools.count(1)


# --- the stack ---------------------------------------------------------------------------------


def render_state_machine(writer_arn: str, topic_arn: str) -> str:
    """state_machine.asl.json with step_functions.tf's variables; an unknown placeholder fails."""
    values = {
        "partition": "aws",
        "writer_function_arn": writer_arn,
        "alert_topic_arn": topic_arn,
        "task_timeout_seconds": "40",
        "jsonencode(non_retryable_errors)": json.dumps(["InvalidInputError"]),
        "retry_interval_seconds": str(RETRY_INTERVAL_SECONDS),
        "retry_max_attempts": "1",
        "retry_backoff_rate": "1.0",
    }
    rendered = re.sub(r"\$\{([^}]+)\}", lambda match: values[match.group(1)], TEMPLATE.read_text())
    json.loads(rendered)
    return rendered


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool's command line takes credentials from the default chain, as an operator's would:
    here the emulator's test key, whatever the machine has (or lacks) in its environment or files."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    if not WRITER_ZIP.is_file():
        pytest.fail(f"{WRITER_ZIP.relative_to(REPO_ROOT)} is missing: run `make package` first")
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    emu = Emulator(port=0, log_path=log_path, state_dir=log_path.parent)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)


@pytest.fixture(scope="module")
def clients(emulator: Emulator, session: boto3.session.Session) -> Any:
    return reconcile.Clients.create(session=session, region=REGION, endpoint_url=emulator.endpoint_url)


@dataclass(frozen=True)
class Pipeline:
    writer_arn: str
    topic_arn: str
    role_arn: str


@pytest.fixture(scope="module")
def pipeline(clients: Any, session: boto3.session.Session, emulator: Emulator) -> Pipeline:
    iam = session.client("iam", endpoint_url=emulator.endpoint_url)
    role_arn = iam.create_role(
        RoleName="reconcile-test",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    create_metadata_table(clients.dynamodb, TABLE)
    writer_arn = session.client("lambda", endpoint_url=emulator.endpoint_url).create_function(
        FunctionName="reconcile-writer",
        Runtime="python3.12",
        Role=role_arn,
        Handler="index.lambda_handler",
        Code={"ZipFile": WRITER_ZIP.read_bytes()},
        Timeout=30,
        Environment={
            "Variables": {
                "TABLE_NAME": TABLE,
                "POWERTOOLS_SERVICE_NAME": "ingestion-writer",
                "POWERTOOLS_METRICS_NAMESPACE": "ReconcileTests",
                "LOG_LEVEL": "INFO",
            }
        },
    )["FunctionArn"]
    topic_arn = session.client("sns", endpoint_url=emulator.endpoint_url).create_topic(Name="alerts")[
        "TopicArn"
    ]
    return Pipeline(writer_arn=writer_arn, topic_arn=topic_arn, role_arn=role_arn)


@dataclass(frozen=True)
class Upload:
    key: str
    version_id: str
    last_modified: str  # as the listing says, in the event-time format


@dataclass
class Stack:
    """A versioned bucket and a state machine of its own, over the module's writer and table."""

    bucket: str
    machine_arn: str
    clients: Any
    emulator: Emulator

    @property
    def s3(self) -> Any:
        return self.clients.s3

    @property
    def sfn(self) -> Any:
        return self.clients.stepfunctions

    def upload(self, key: str, body: bytes = b"data") -> Upload:
        version_id = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)["VersionId"]
        [listed] = [
            v
            for v in self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)["Versions"]
            if v["Key"] == key and v["VersionId"] == version_id
        ]
        return Upload(key, version_id, objects.iso_timestamp(listed["LastModified"]))

    def upload_in_a_later_second(self, key: str, body: bytes) -> Upload:
        """An upload whose LastModified (listed to the second) is after every earlier one's."""
        time.sleep(1.05 - time.time() % 1)
        return self.upload(key, body)

    def upload_twice_within_a_second(self, key: str) -> tuple[Upload, Upload]:
        """Two versions of `key` listed with the same second. Each pair starts just after a second
        begins; a pair that straddles one anyway (a loaded machine) is deleted, versions and all,
        so that the bucket holds exactly the two versions returned."""
        for _ in range(5):
            time.sleep(1.02 - time.time() % 1)
            first, second = self.upload(key, b"v1"), self.upload(key, b"v2")
            if first.last_modified == second.last_modified:
                return first, second
            for upload in (first, second):
                self.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=upload.version_id)
        raise AssertionError("five pairs of uploads all straddled a second")

    def start_like_the_trigger(
        self,
        upload: Upload,
        *,
        event_time: str = "2026-01-15T10:20:30.123Z",
        sequencer: str = "0A1B",
        sfn: Any = None,
    ) -> str:
        """What the trigger does for one notification: its name and input; returns the execution ARN."""
        payload = UploadRecord(
            bucket=self.bucket,
            key=upload.key,
            size=4,
            etag=None,
            version_id=upload.version_id,
            sequencer=sequencer,
            event_time=event_time,
            event_name="ObjectCreated:Put",
        )
        name = execution_name(self.bucket, upload.key, upload.version_id, sequencer)
        return str(
            (sfn or self.sfn).start_execution(
                stateMachineArn=self.machine_arn, name=name, input=payload.execution_input_json()
            )["executionArn"]
        )

    def first_write_failed(self, execution_arn: str) -> bool:
        history = self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return any(event["type"] == "TaskFailed" for event in history)

    def stop_held(self, execution_arn: str, timeout: float = 30) -> None:
        """Stop an execution held by :func:`keep_running` once its first write has failed (moto
        cannot stop an execution whose worker has not started yet)."""
        deadline = time.monotonic() + timeout
        while not self.first_write_failed(execution_arn):
            assert time.monotonic() < deadline, f"{execution_arn}: the first write never failed"
            time.sleep(0.1)
        self.sfn.stop_execution(executionArn=execution_arn)

    def settle(self, timeout: float = 30) -> None:
        """Let running executions finish; stop those waiting to retry a failed write."""
        prefix = self.machine_arn.replace(":stateMachine:", ":execution:")
        deadline = time.monotonic() + timeout
        while running := [name for name, status in self.executions().items() if status == "RUNNING"]:
            for name in running:
                if self.first_write_failed(f"{prefix}:{name}"):
                    self.sfn.stop_execution(executionArn=f"{prefix}:{name}")
            assert time.monotonic() < deadline, f"executions still running: {running}"
            time.sleep(0.1)

    def executions(self) -> dict[str, str]:
        """Name -> status of every execution of the state machine."""
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine_arn)
        return {e["name"]: e["status"] for page in pages for e in page["executions"]}

    def wait_until_settled(self, timeout: float = 60) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (statuses := self.executions()) and "RUNNING" in statuses.values():
            assert time.monotonic() < deadline, f"executions still running: {statuses}"
            time.sleep(0.2)
        return statuses

    def rows(self, key: str) -> list[dict[str, Any]]:
        items = self.clients.dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="Filename = :key",
            ExpressionAttributeValues={":key": {"S": key}},
            ConsistentRead=True,
        )["Items"]
        return [{name: next(iter(value.values())) for name, value in item.items()} for item in items]

    def run(self, redrive: bool = False, **kwargs: Any) -> Any:
        return reconcile.reconcile(self.clients, self.bucket, TABLE, self.machine_arn, redrive, **kwargs)

    def cli(self, *args: str) -> tuple[int, list[str], str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        status = cli.main(
            [
                "--bucket", self.bucket,
                "--table", TABLE,
                "--state-machine-arn", self.machine_arn,
                "--endpoint-url", self.emulator.endpoint_url,
                *args,
            ],
            stdout=stdout,
            stderr=stderr,
        )  # fmt: skip
        return status, stdout.getvalue().splitlines(), stderr.getvalue()


@pytest.fixture
def stack(clients: Any, pipeline: Pipeline, emulator: Emulator) -> Iterator[Stack]:
    number = next(_names)
    bucket = f"reconcile-uploads-{number}"
    clients.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    clients.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    machine_arn = clients.stepfunctions.create_state_machine(
        name=f"reconcile-ingestion-{number}",
        definition=render_state_machine(pipeline.writer_arn, pipeline.topic_arn),
        roleArn=pipeline.role_arn,
    )["stateMachineArn"]
    stack = Stack(bucket=bucket, machine_arn=machine_arn, clients=clients, emulator=emulator)
    yield stack
    emulator.clear_faults()
    stack.settle()  # nothing keeps running into the next test


def forbid_execution_api(sfn: Any) -> list[str]:
    """Fail the test as soon as ``sfn`` calls ListExecutions, DescribeExecution or
    GetExecutionHistory (``pytest.fail`` is no ``Exception``: nothing in the tool can catch it).
    Returns the names of such calls, for an assertion as well."""
    called: list[str] = []

    def fail(model: Any, **_: Any) -> None:
        called.append(model.name)
        pytest.fail(f"{model.name} was called for an EXPRESS state machine")

    for operation in EXECUTION_API:
        sfn.meta.events.register(f"before-call.sfn.{operation}", fail)
    return called


def record_calls(clients: Any) -> list[str]:
    """The operation names of every call the three clients make from now on, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    for client in (clients.s3, clients.dynamodb, clients.stepfunctions):
        client.meta.events.register("before-call", record)
    return calls


@pytest.fixture
def express_stack(
    session: boto3.session.Session, pipeline: Pipeline, emulator: Emulator
) -> Iterator[tuple[Stack, list[str]]]:
    """A versioned bucket and an EXPRESS state machine, on clients of its own whose Step Functions
    client fails the test on any execution API call; and the names of such calls."""
    clients = reconcile.Clients.create(session=session, region=REGION, endpoint_url=emulator.endpoint_url)
    forbidden = forbid_execution_api(clients.stepfunctions)
    number = next(_names)
    bucket = f"reconcile-express-{number}"
    clients.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    clients.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    machine_arn = clients.stepfunctions.create_state_machine(
        name=f"reconcile-express-{number}",
        definition=render_state_machine(pipeline.writer_arn, pipeline.topic_arn),
        roleArn=pipeline.role_arn,
        type="EXPRESS",
    )["stateMachineArn"]
    yield Stack(bucket=bucket, machine_arn=machine_arn, clients=clients, emulator=emulator), forbidden
    emulator.clear_faults()
    # An express execution cannot be listed or stopped: wait until none runs into the next test.
    deadline = time.monotonic() + 30
    while running_executions():
        assert time.monotonic() < deadline, "express executions still running"
        time.sleep(0.2)


def wait_for_rows(stack: Stack, key: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (rows := stack.rows(key)):
        assert time.monotonic() < deadline, f"no row for {key!r}"
        time.sleep(0.1)
    return rows


def counts(summary: Any) -> dict[str, int]:
    return {
        name: getattr(summary, name)
        for name in (
            "objects",
            "ingested",
            "in_flight",
            "missing",
            "redriven",
            "rejected",
            "folder_markers",
            "failed",
        )
    }


def keep_running(stack: Stack, key: str) -> None:
    """The writer's PutItem for ``key`` fails, so its execution waits RETRY_INTERVAL_SECONDS to retry."""
    stack.emulator.add_fault("DynamoDB_20120810.PutItem", match=json.dumps(key)[1:-1])


# --- classification ----------------------------------------------------------------------------


def test_when_every_upload_has_its_row_nothing_is_missing(stack: Stack) -> None:
    # Given two uploads that the trigger started and the writer wrote
    uploads = [stack.upload("in/a.csv"), stack.upload("in/b.csv")]
    for upload in uploads:
        stack.start_like_the_trigger(upload)
    assert set(stack.wait_until_settled().values()) == {"SUCCEEDED"}

    # When the tool compares bucket and table
    status, lines, _ = stack.cli()

    # Then both are ingested, nothing else is listed, and it exits 0
    assert (status, lines) == (
        0,
        ["objects=2 ingested=2 in_flight=0 missing=0 redriven=0 rejected=0 folder_markers=0 failed=0"],
    )


def test_uploads_without_rows_are_missing_and_only_reported_without_redrive(stack: Stack) -> None:
    # Given two uploads whose events never reached the state machine
    uploads = [stack.upload("lost/one.csv"), stack.upload("lost/two.csv")]

    # When the tool runs without --redrive
    status, lines, _ = stack.cli()

    # Then both are missing, listed with the name a re-drive would use, and nothing was started
    assert status == 1
    assert SUMMARY.fullmatch(lines[-1]).groups() == ("2", "0", "0", "2", "0", "0", "0", "0")
    assert sorted(json.loads(line)["key"] for line in lines[:-1]) == ["lost/one.csv", "lost/two.csv"]
    assert {json.loads(line)["execution_name"] for line in lines[:-1]} == {
        execution_name(stack.bucket, upload.key, upload.version_id) for upload in uploads
    }
    assert stack.executions() == {}


def test_redrive_writes_each_missing_row_once_and_a_second_run_finds_nothing_to_do(stack: Stack) -> None:
    # Given one ingested upload and two lost ones: another key, and a later version of the first
    ingested = stack.upload("batch/ok.csv")
    stack.start_like_the_trigger(ingested)
    stack.wait_until_settled()
    lost = [stack.upload("batch/lost.csv", b"v1"), stack.upload_in_a_later_second("batch/ok.csv", b"v2")]

    # When the tool re-drives
    status, lines, _ = stack.cli("--redrive")

    # Then the two lost versions are started under the trigger's names, and it exits 0
    assert status == 0
    assert SUMMARY.fullmatch(lines[-1]).groups() == ("3", "1", "0", "2", "2", "0", "0", "0")
    findings = [json.loads(line) for line in lines[:-1]]
    assert {(f["execution_name"], f["action"]) for f in findings} == {
        (execution_name(stack.bucket, upload.key, upload.version_id), "redriven") for upload in lost
    }
    statuses = stack.wait_until_settled()
    assert set(statuses.values()) == {"SUCCEEDED"}
    # And the writer wrote one row per version, with the contract's re-drive fields
    for upload in lost:
        [row] = [row for row in stack.rows(upload.key) if row["VersionId"] == upload.version_id]
        assert row["UploadTimestamp"] == upload.last_modified
        assert row["Size"] == "2"
        assert "Sequencer" not in row
    assert len(stack.rows("batch/ok.csv")) == 2

    # When it runs again, with --redrive
    again = stack.run(redrive=True)

    # Then there is nothing to do: no new execution, no second row
    assert counts(again) == {
        "objects": 3, "ingested": 3, "in_flight": 0, "missing": 0, "redriven": 0,
        "rejected": 0, "folder_markers": 0, "failed": 0,
    }  # fmt: skip
    assert again.exit_status == 0
    assert stack.executions() == statuses
    assert (len(stack.rows("batch/ok.csv")), len(stack.rows("batch/lost.csv"))) == (2, 1)


def test_versions_whose_row_key_is_taken_are_redriven_under_the_tie_break_unless_the_row_is_anonymous(
    stack: Stack,
) -> None:
    # Given two lost versions of one key written within the same second (LastModified is listed
    # to the second, and a re-drive's row is keyed by it), a lost version whose second is taken by
    # a row of another version, and one whose second is taken by a row with neither VersionId nor
    # Sequencer (nothing tells it from another version)
    first, second = stack.upload_twice_within_a_second("same/second.csv")
    taken = stack.upload("taken/slot.csv")
    anonymous = stack.upload("anonymous/slot.csv")
    for upload, version in ((taken, {"VersionId": {"S": "another-version"}}), (anonymous, {})):
        stack.clients.dynamodb.put_item(
            TableName=TABLE,
            Item={
                "Filename": {"S": upload.key},
                "UploadTimestamp": {"S": upload.last_modified},
                **version,
            },
        )

    # When the tool re-drives
    summary = stack.run(redrive=True)

    # Then all but the anonymous row's version are started, and that one is reported
    assert (summary.missing, summary.redriven, summary.exit_status) == (4, 3, 1)
    assert sorted(summary.redriven_executions) == sorted(
        execution_name(stack.bucket, upload.key, upload.version_id) for upload in (first, second, taken)
    )
    [refused] = [f for f in summary.findings if f.action is reconcile.Action.TIMESTAMP_TAKEN]
    assert (refused.key, refused.version_id) == (anonymous.key, anonymous.version_id)
    assert "upload the object again" in str(refused.reason)
    # And the writer kept every re-driven version: the first write under LastModified, a version
    # whose LastModified was taken under "<LastModified>#<version id>"
    assert set(stack.wait_until_settled().values()) == {"SUCCEEDED"}
    plain, tie_broken = stack.rows(first.key)  # in UploadTimestamp order
    assert {plain["VersionId"], tie_broken["VersionId"]} == {first.version_id, second.version_id}
    assert plain["UploadTimestamp"] == first.last_modified
    assert tie_broken["UploadTimestamp"] == f"{first.last_modified}#{tie_broken['VersionId']}"
    assert {row["VersionId"]: row["UploadTimestamp"] for row in stack.rows(taken.key)} == {
        "another-version": taken.last_modified,
        taken.version_id: f"{taken.last_modified}#{taken.version_id}",
    }
    # And a second run finds them ingested by their version ids, whatever their UploadTimestamp
    again = stack.run(redrive=True)
    assert (again.objects, again.ingested, again.missing, again.redriven) == (4, 3, 1, 0)


def test_two_versions_with_one_event_time_each_keep_their_row_and_are_both_ingested(
    express_stack: tuple[Stack, list[str]],
) -> None:
    # Given two versions of one key whose notifications carry the same S3 event time (an EXPRESS
    # workflow: the tool judges by rows alone, no execution can vouch for a version)
    stack, forbidden = express_stack
    first = stack.upload("tie/report.csv", b"v1")
    second = stack.upload("tie/report.csv", b"v2")

    # When the trigger starts both, and then each again (S3 delivers at least once)
    for upload, sequencer in ((first, "0A1B"), (second, "0A1C"), (first, "0A1B"), (second, "0A1C")):
        stack.start_like_the_trigger(upload, sequencer=sequencer)
        wait_for_rows(stack, upload.key)
        deadline = time.monotonic() + 30
        while running_executions():
            assert time.monotonic() < deadline, "express executions still running"
            time.sleep(0.1)

    # Then the writer kept one row per version: the first under the event time, the second
    # tie-broken by its version id; the redeliveries added none
    event_time = "2026-01-15T10:20:30.123Z"
    assert sorted((row["UploadTimestamp"], row["VersionId"]) for row in stack.rows(first.key)) == [
        (event_time, first.version_id),
        (f"{event_time}#{second.version_id}", second.version_id),
    ]
    # And the tool finds both versions ingested, nothing missing
    summary = stack.run(settle_seconds=0)
    assert (summary.objects, summary.ingested, summary.missing, summary.exit_status) == (2, 2, 0, 0)
    assert summary.findings == ()
    assert forbidden == []


def test_an_upload_whose_execution_is_running_is_in_flight_and_not_redriven(stack: Stack) -> None:
    # Given an upload whose execution is still running (its write waits for a retry)
    upload = stack.upload("slow/report.csv")
    keep_running(stack, "slow/report.csv")
    stack.start_like_the_trigger(upload)

    # When the tool re-drives
    summary = stack.run(redrive=True)

    # Then it is in flight, nothing was started, and the run exits 0 (nothing is missing)
    assert (summary.in_flight, summary.missing, summary.redriven, summary.exit_status) == (1, 0, 0, 0)
    assert list(stack.executions().values()) == ["RUNNING"]


def test_an_upload_whose_execution_failed_is_redriven_under_a_new_name(stack: Stack) -> None:
    # Given an upload whose execution ended FAILED (its input was refused by the writer)
    upload = stack.upload("retry/report.csv")
    arn = stack.start_like_the_trigger(upload, event_time="not a time")
    assert set(stack.wait_until_settled().values()) == {"FAILED"}
    trigger_name = arn.rsplit(":", 1)[1]

    # When the tool re-drives, twice
    first = stack.run(redrive=True)
    statuses = stack.wait_until_settled()
    second = stack.run(redrive=True)

    # Then the first run started it under the first re-drive name, which wrote the row
    assert first.redriven_executions == (f"{trigger_name}-r1",)
    assert (first.missing, first.redriven, first.exit_status) == (1, 1, 0)
    assert statuses == {trigger_name: "FAILED", f"{trigger_name}-r1": "SUCCEEDED"}
    [row] = stack.rows("retry/report.csv")
    assert (row["VersionId"], row["UploadTimestamp"]) == (upload.version_id, upload.last_modified)
    assert row["ExecutionId"].endswith(f":{trigger_name}-r1")
    # And the second run found it ingested, and started nothing
    assert (second.ingested, second.missing, second.redriven) == (1, 0, 0)
    assert stack.executions() == statuses


def test_an_aborted_execution_counts_in_flight_until_it_has_settled_then_is_redriven(stack: Stack) -> None:
    # Given an upload whose execution was stopped while its write was failing
    upload = stack.upload("stopped/report.csv")
    keep_running(stack, "stopped/report.csv")
    arn = stack.start_like_the_trigger(upload)
    stack.stop_held(arn)
    assert set(stack.wait_until_settled().values()) == {"ABORTED"}
    stack.emulator.clear_faults()
    trigger_name = arn.rsplit(":", 1)[1]

    # When the tool re-drives just after, and again once the writer cannot be running any more
    just_after = stack.run(redrive=True)
    settled = stack.run(redrive=True, settle_seconds=0)

    # Then it first counts in flight (a writer invocation may outlive a stopped execution) ...
    assert (just_after.in_flight, just_after.missing, just_after.redriven) == (1, 0, 0)
    # ... and then it is re-driven under the next name, which writes the row
    assert settled.redriven_executions == (f"{trigger_name}-r1",)
    assert stack.wait_until_settled() == {trigger_name: "ABORTED", f"{trigger_name}-r1": "SUCCEEDED"}
    [row] = stack.rows("stopped/report.csv")
    assert row["ExecutionId"].endswith(f":{trigger_name}-r1")


def test_a_redrive_that_loses_the_race_to_the_trigger_counts_in_flight(
    stack: Stack, session: boto3.session.Session
) -> None:
    # Given a lost-looking upload whose notification the trigger handles while the tool runs
    upload = stack.upload("race/report.csv")
    trigger_client = reconcile.Clients.create(
        session=session, region=REGION, endpoint_url=stack.emulator.endpoint_url
    ).stepfunctions

    def trigger_first(**_: Any) -> None:
        stack.start_like_the_trigger(upload, sfn=trigger_client)

    stack.sfn.meta.events.register_first("before-call.sfn.StartExecution", trigger_first)
    try:
        # When the tool re-drives it
        summary = stack.run(redrive=True)
    finally:
        stack.sfn.meta.events.unregister("before-call.sfn.StartExecution", trigger_first)

    # Then ExecutionAlreadyExists counts as in flight: one execution, the trigger's, one row
    assert (summary.in_flight, summary.missing, summary.redriven, summary.exit_status) == (1, 0, 0, 0)
    assert set(stack.wait_until_settled().values()) == {"SUCCEEDED"}
    [row] = stack.rows("race/report.csv")
    assert row["UploadTimestamp"] == "2026-01-15T10:20:30.123Z"


def test_rejected_keys_and_folder_markers_are_counted_apart_and_never_redriven(stack: Stack) -> None:
    # Given a key the validator rejects, a folder marker, and a key ending in '/' that carries data
    stack.upload("invoice\u202efdp.exe")
    stack.upload("reports/", b"")
    with_data = stack.upload("odd/", b"xx")

    # When the tool re-drives
    status, lines, _ = stack.cli("--redrive")

    # Then only the one with data is started; the rejected key is listed with its reason
    assert status == 0
    assert SUMMARY.fullmatch(lines[-1]).groups() == ("3", "0", "0", "1", "1", "1", "1", "0")
    findings = [json.loads(line) for line in lines[:-1]]
    assert {(f["status"], f["key"]) for f in findings} == {
        ("rejected", "invoice\u202efdp.exe"),
        ("missing", "odd/"),
    }
    assert "U+202E" in next(f["reason"] for f in findings if f["status"] == "rejected")
    assert list(stack.executions()) == [execution_name(stack.bucket, "odd/", with_data.version_id)]


def test_a_version_hidden_by_a_delete_marker_is_still_an_upload_and_is_redriven(stack: Stack) -> None:
    # Given a lost upload deleted afterwards (a delete marker is now its key's latest version), and
    # a lost upload whose version was deleted for good (DeleteObject with its version id)
    hidden = stack.upload("deleted/report.csv")
    stack.s3.delete_object(Bucket=stack.bucket, Key=hidden.key)
    purged = stack.upload("purged/report.csv")
    stack.s3.delete_object(Bucket=stack.bucket, Key=purged.key, VersionId=purged.version_id)
    listing = stack.s3.list_object_versions(Bucket=stack.bucket)
    assert [(m["Key"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [(hidden.key, True)]

    # When the tool re-drives
    summary = stack.run(redrive=True)

    # Then the hidden version counts as an upload (the table records uploads, and the trigger
    # would have ingested it before the delete): it is re-driven and gets its row. The delete
    # marker is no object version, and the purged version, no longer listed, is not re-driven.
    assert counts(summary) == {
        "objects": 1, "ingested": 0, "in_flight": 0, "missing": 1, "redriven": 1,
        "rejected": 0, "folder_markers": 0, "failed": 0,
    }  # fmt: skip
    assert summary.redriven_executions == (execution_name(stack.bucket, hidden.key, hidden.version_id),)
    assert set(stack.wait_until_settled().values()) == {"SUCCEEDED"}
    [row] = stack.rows(hidden.key)
    assert (row["VersionId"], row["UploadTimestamp"]) == (hidden.version_id, hidden.last_modified)
    assert stack.rows(purged.key) == []


def test_more_object_versions_than_one_page_are_all_seen(stack: Stack) -> None:
    # Given seven versions, listed two per page
    uploads = [stack.upload(f"paged/{index}.csv") for index in range(5)]
    uploads += [stack.upload("paged/0.csv", b"again"), stack.upload("paged/1.csv", b"again")]
    stack.start_like_the_trigger(uploads[0])
    stack.wait_until_settled()
    list_calls: list[str] = []
    record = lambda **_: list_calls.append("ListObjectVersions")  # noqa: E731
    stack.s3.meta.events.register("after-call.s3.ListObjectVersions", record)
    try:
        # When the tool runs with that page size
        summary = stack.run(page_size=2)
    finally:
        stack.s3.meta.events.unregister("after-call.s3.ListObjectVersions", record)

    # Then every version was classified, over four pages
    assert counts(summary) == {
        "objects": 7, "ingested": 1, "in_flight": 0, "missing": 6, "redriven": 0,
        "rejected": 0, "folder_markers": 0, "failed": 0,
    }  # fmt: skip
    assert len(list_calls) == 4
    assert {(f.key, f.version_id) for f in summary.findings} == {(u.key, u.version_id) for u in uploads[1:]}
    # And the command line takes the page size too
    status, lines, _ = stack.cli("--page-size", "2")
    assert (status, lines[-1]) == (1, summary.line())


def test_objects_without_a_version_id_are_reported_but_not_redriven(stack: Stack, clients: Any) -> None:
    # Given an object written while the bucket was not versioned (S3's "null" version)
    bucket = f"reconcile-unversioned-{next(_names)}"
    clients.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    clients.s3.put_object(Bucket=bucket, Key="plain.csv", Body=b"data")

    # When the tool re-drives
    summary = reconcile.reconcile(clients, bucket, TABLE, stack.machine_arn, True)

    # Then it is missing, not started (its trigger name digests a sequencer no listing shows)
    assert (summary.missing, summary.redriven, summary.exit_status) == (1, 0, 1)
    assert [f.action for f in summary.findings] == [reconcile.Action.UNVERSIONED]
    assert stack.executions() == {}


# --- the workflow type, and EXPRESS state machines --------------------------------------------


def test_the_workflow_type_is_read_first_and_a_standard_run_asks_the_executions(
    stack: Stack, session: boto3.session.Session
) -> None:
    # Given a STANDARD state machine and an upload without a row
    stack.upload("standard/lost.csv")
    clients = reconcile.Clients.create(
        session=session, region=REGION, endpoint_url=stack.emulator.endpoint_url
    )
    calls = record_calls(clients)

    # When the tool runs
    summary = reconcile.reconcile(clients, stack.bucket, TABLE, stack.machine_arn)

    # Then it read the type before anything else, and judged the upload by its executions
    assert summary.workflow_type is reconcile.WorkflowType.STANDARD
    assert calls[0] == "DescribeStateMachine"
    assert {"ListExecutions", "DescribeExecution"} <= set(calls)
    assert (summary.missing, summary.notes) == (1, ())


def test_an_express_run_judges_versions_without_a_row_by_age_and_never_asks_executions(
    express_stack: tuple[Stack, list[str]],
) -> None:
    # Given an EXPRESS state machine; an ingested upload, a rejected key, a folder marker, and two
    # uploads without a row, one (lost) four seconds older than the other (just uploaded)
    stack, forbidden = express_stack
    ingested = stack.upload("express/ingested.csv")
    stack.start_like_the_trigger(ingested)
    wait_for_rows(stack, ingested.key)
    stack.upload("express/bad\u202ename.csv")
    stack.upload("express/folder/", b"")
    old = stack.upload("express/old.csv")
    time.sleep(4)
    young = stack.upload("express/young.csv")
    calls = record_calls(stack.clients)

    # When the tool runs with a settle window between their ages
    summary = stack.run(settle_seconds=2.5)

    # Then it read the type first and never called the execution API; the old one is missing, the
    # young one in flight (its notification may still be on its way), the others as always
    assert summary.workflow_type is reconcile.WorkflowType.EXPRESS
    assert calls[0] == "DescribeStateMachine"
    assert not set(calls) & set(EXECUTION_API)
    assert forbidden == []
    assert counts(summary) == {
        "objects": 5, "ingested": 1, "in_flight": 1, "missing": 1, "redriven": 0,
        "rejected": 1, "folder_markers": 1, "failed": 0,
    }  # fmt: skip
    missing = [f for f in summary.findings if f.status is reconcile.Status.MISSING]
    assert [(f.key, f.version_id, f.action, f.execution_name) for f in missing] == [
        (
            old.key,
            old.version_id,
            reconcile.Action.REPORTED,
            execution_name(stack.bucket, old.key, old.version_id),
        )
    ]
    assert young.key not in {f.key for f in summary.findings}
    assert summary.exit_status == 1
    # And with the default window (900 s) both count in flight: the command line exits 0, and the
    # emulator, which refuses ListExecutions for an EXPRESS machine, was never asked either
    status, lines, stderr = stack.cli()
    assert (status, lines[-1], stderr) == (
        0,
        "objects=5 ingested=1 in_flight=2 missing=0 redriven=0 rejected=1 folder_markers=1 failed=0",
        "",
    )


def test_an_express_version_without_a_version_id_is_judged_by_age_and_never_redriven(
    express_stack: tuple[Stack, list[str]],
) -> None:
    stack, forbidden = express_stack
    bucket = f"reconcile-express-unversioned-{next(_names)}"
    stack.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    stack.s3.put_object(Bucket=bucket, Key="plain.csv", Body=b"data")

    young = reconcile.reconcile(stack.clients, bucket, TABLE, stack.machine_arn, True)
    old = reconcile.reconcile(stack.clients, bucket, TABLE, stack.machine_arn, True, settle_seconds=0)

    assert (young.in_flight, young.missing, young.findings) == (1, 0, ())
    assert (old.missing, old.redriven, old.exit_status) == (1, 0, 1)
    assert [f.action for f in old.findings] == [reconcile.Action.UNVERSIONED]
    assert forbidden == []


def test_an_express_redrive_starts_again_on_every_run_and_the_writer_keeps_one_row(
    express_stack: tuple[Stack, list[str]],
) -> None:
    # Given two lost uploads, one with a long key of characters no execution name may carry, whose
    # writes fail at first (each execution retries its write after RETRY_INTERVAL_SECONDS)
    stack, forbidden = express_stack
    long_key = "express/Quarterly report (final) \u00e9t\u00e9 " + "x" * 150 + ".csv"
    lost = [stack.upload("express/lost.csv"), stack.upload(long_key)]
    for upload in lost:
        keep_running(stack, upload.key)
    starts: list[str] = []
    stack.sfn.meta.events.register(
        "before-parameter-build.sfn.StartExecution", lambda params, **_: starts.append(params["name"])
    )

    # When the tool re-drives, and again before the rows are written
    first = stack.run(redrive=True, settle_seconds=0)
    second = stack.run(redrive=True, settle_seconds=0)

    # Then each run started every version under the trigger's name (a valid execution name):
    # Express keeps no names, so the second run starts them again, and says so
    names = tuple(execution_name(stack.bucket, upload.key, upload.version_id) for upload in lost)
    for summary in (first, second):
        assert (summary.missing, summary.redriven, summary.failed, summary.exit_status) == (2, 2, 0, 0)
        assert sorted(summary.redriven_executions) == sorted(names)
        [note] = summary.notes
        assert note.startswith("EXPRESS workflow: 2 execution(s) started.")
        assert "conditional put keeps one row per version" in note
        assert "re-drive only once both queues are empty" in note
    assert all(NAME_PATTERN.fullmatch(name) for name in names)
    assert sorted(starts) == sorted(names * 2)
    # And once the writes go through, the writer kept one row per version (the second execution's
    # write found it), keyed by LastModified, with the re-drive's fields
    stack.emulator.clear_faults()
    for upload in lost:
        wait_for_rows(stack, upload.key)
    deadline = time.monotonic() + 30
    while running_executions():
        assert time.monotonic() < deadline, "express executions still running"
        time.sleep(0.2)
    for upload in lost:
        [row] = stack.rows(upload.key)
        assert (row["VersionId"], row["UploadTimestamp"]) == (upload.version_id, upload.last_modified)
        assert ":express:" in row["ExecutionId"]
    # And a third run, from the command line, finds both ingested, starts nothing and notes nothing
    status, lines, stderr = stack.cli("--redrive", "--settle-seconds", "0")
    assert (status, lines, stderr) == (
        0,
        ["objects=2 ingested=2 in_flight=0 missing=0 redriven=0 rejected=0 folder_markers=0 failed=0"],
        "",
    )
    assert len(starts) == 4
    assert forbidden == []


def test_the_command_line_prints_an_express_redrive_note_on_stderr(
    express_stack: tuple[Stack, list[str]],
) -> None:
    stack, forbidden = express_stack
    upload = stack.upload("express/noted.csv")

    status, lines, stderr = stack.cli("--redrive", "--settle-seconds", "0")

    assert status == 0
    assert lines[-1].startswith("objects=1 ingested=0 in_flight=0 missing=1 redriven=1 ")
    assert json.loads(lines[0])["execution_name"] == execution_name(
        stack.bucket, upload.key, upload.version_id
    )
    assert stderr.startswith("reconcile: note: EXPRESS workflow: 1 execution(s) started.")
    assert stderr.count("\n") == 1
    wait_for_rows(stack, upload.key)
    assert forbidden == []


@dataclass(frozen=True)
class FakeStepFunctions:
    """Answers DescribeStateMachine with ``type``; nothing else."""

    type: str

    def describe_state_machine(self, stateMachineArn: str) -> dict[str, str]:
        return {"stateMachineArn": stateMachineArn, "type": self.type}


def test_a_workflow_type_the_tool_does_not_know_stops_the_run() -> None:
    machine = reconcile.StateMachine.parse("arn:aws:states:eu-central-1:123456789012:stateMachine:m")

    assert (
        executions.describe_workflow_type(FakeStepFunctions("EXPRESS"), machine)
        is reconcile.WorkflowType.EXPRESS
    )
    with pytest.raises(
        reconcile.UnsupportedWorkflowError, match="is of type 'TURBO'; this tool knows STANDARD, EXPRESS"
    ):
        executions.describe_workflow_type(FakeStepFunctions("TURBO"), machine)


def test_an_express_version_is_in_flight_until_it_is_settle_seconds_old() -> None:
    uploaded = datetime(2026, 1, 15, 10, 20, 30, tzinfo=UTC)
    obj = reconcile.ObjectVersion("b", "k.csv", "v1", uploaded, None, 4)

    def at(seconds: float) -> Any:
        return verdict.judge_by_age(obj, 900, uploaded + timedelta(seconds=seconds))

    assert (at(0), at(899.9), at(900), at(86_400)) == (
        reconcile.Status.IN_FLIGHT,
        reconcile.Status.IN_FLIGHT,
        reconcile.Status.MISSING,
        reconcile.Status.MISSING,
    )


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"--bucket": "no-such-bucket"}, "bucket 'no-such-bucket' not found", id="bucket"),
        pytest.param({"--table": "no-such-table"}, "table 'no-such-table' not found", id="table"),
        pytest.param(
            {"--state-machine-arn": "arn:aws:states:eu-central-1:123456789012:stateMachine:none"},
            "state machine 'arn:aws:states:eu-central-1:123456789012:stateMachine:none' not found",
            id="state-machine",
        ),
    ],
)
def test_a_missing_resource_is_a_typed_error_with_exit_status_2(
    stack: Stack, change: dict[str, str], message: str
) -> None:
    stack.upload("some.csv")  # so that executions are looked at
    options = {"--bucket": stack.bucket, "--table": TABLE, "--state-machine-arn": stack.machine_arn} | change
    args = [item for pair in options.items() for item in pair]
    stderr = io.StringIO()

    status = cli.main([*args, "--endpoint-url", stack.emulator.endpoint_url], io.StringIO(), stderr)

    assert status == 2
    assert stderr.getvalue().startswith("reconcile: error: ")
    assert message in stderr.getvalue()


def test_access_denied_is_a_typed_error_naming_the_policy(stack: Stack) -> None:
    stack.emulator.add_fault(
        "DynamoDB_20120810.Scan", error_code="AccessDeniedException", message="not authorized to Scan"
    )

    with pytest.raises(reconcile.AccessDeniedError, match="reconcile_operator_policy_json"):
        stack.run()
    status, lines, stderr = stack.cli()
    assert (status, lines) == (2, [])
    assert f"access denied to table '{TABLE}'" in stderr


def test_access_denied_to_the_workflow_type_is_a_typed_error_naming_the_policy(
    stack: Stack, session: boto3.session.Session
) -> None:
    # Given an operator role without states:DescribeStateMachine
    stack.emulator.add_fault(
        "AWSStepFunctions.DescribeStateMachine",
        error_code="AccessDeniedException",
        message="not authorized to perform: states:DescribeStateMachine",
    )
    clients = reconcile.Clients.create(
        session=session, region=REGION, endpoint_url=stack.emulator.endpoint_url
    )
    calls = record_calls(clients)

    # Then the run stops before anything else, naming the call, the state machine and the policy
    with pytest.raises(reconcile.AccessDeniedError) as denied:
        reconcile.reconcile(clients, stack.bucket, TABLE, stack.machine_arn, True)
    assert str(denied.value) == (
        f"access denied to state machine {stack.machine_arn!r} (states:DescribeStateMachine: "
        "AccessDeniedException: not authorized to perform: states:DescribeStateMachine); the tool "
        "needs the Terraform output reconcile_operator_policy_json"
    )
    assert calls == ["DescribeStateMachine"]
    # And the command line exits 2 with it, printing nothing on stdout
    status, lines, stderr = stack.cli("--redrive")
    assert (status, lines) == (2, [])
    assert stderr == f"reconcile: error: {denied.value}\n"


def test_a_malformed_state_machine_arn_is_refused_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--bucket", "b", "--table", "t", "--state-machine-arn", "ingestion"])

    assert exited.value.code == 2
    assert "not a state machine ARN" in capsys.readouterr().err


# --- the command as an operator runs it --------------------------------------------------------


def test_the_script_runs_from_another_directory_and_prints_the_summary_last(
    stack: Stack, tmp_path: Path
) -> None:
    stack.upload("elsewhere.csv")
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "PYTHONPATH": "",
    }
    result = subprocess.run(
        [
            sys.executable, str(SCRIPT),
            "--bucket", stack.bucket, "--table", TABLE, "--state-machine-arn", stack.machine_arn,
            "--endpoint-url", stack.emulator.endpoint_url, "--redrive", "--progress", "always",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("objects=1 ingested=0 in_flight=0 missing=1 redriven=1 ")
    stack.wait_until_settled()
    assert len(stack.rows("elsewhere.csv")) == 1


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["ingestion-reconcile"], id="console-script"),
        pytest.param([sys.executable, "-m", "ingestion_reconcile"], id="module"),
        pytest.param([sys.executable, str(SCRIPT)], id="script"),
    ],
)
def test_the_console_script_the_module_and_the_script_are_one_command(
    command: list[str], tmp_path: Path
) -> None:
    """Installed by ``make venv`` (the project, editable): no sys.path edit, no PYTHONPATH."""
    if command == ["ingestion-reconcile"]:
        command = [str(Path(sys.executable).parent / "ingestion-reconcile")]
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    result = subprocess.run(
        [*command, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    assert "--state-machine-arn" in result.stdout
    assert "--redrive" in result.stdout


def test_the_tool_does_not_edit_sys_path() -> None:
    sources = [SCRIPT, *sorted((REPO_ROOT / "ingestion_reconcile").glob("*.py"))]
    assert [path.name for path in sources if "sys.path" in path.read_text()] == []


# --- the progress bar --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_progress_bar_appears_only_on_long_runs_and_is_cleared() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = reconcile.Progress(stream, delay=1.0, interval=0.1, width=10, clock=clock)

    progress.phase("checking executions", 4)
    progress.advance()
    assert stream.getvalue() == ""  # a short run shows nothing

    clock.now = 1.5
    progress.advance()
    assert stream.getvalue().endswith("checking executions [#####-----] 2/4")
    progress.advance()  # within the redraw interval: not drawn
    assert stream.getvalue().endswith("2/4")

    clock.now = 2.0
    progress.phase("listing object versions")
    progress.advance(1200)
    clock.now = 2.2
    progress.advance(3)
    assert stream.getvalue().endswith(
        "listing object versions: 1203".ljust(len("checking executions [#####-----] 2/4"))
    )
    progress.close()
    assert stream.getvalue().endswith("\r")


def test_a_disabled_progress_bar_writes_nothing() -> None:
    stream = io.StringIO()
    progress = reconcile.Progress(stream, enabled=False, delay=0)

    progress.phase("re-driving", 1)
    progress.advance()
    progress.close()

    assert stream.getvalue() == ""


def test_client_errors_that_are_not_fatal_leave_the_object_missing(stack: Stack) -> None:
    # Given StartExecution keeps failing with a server error for one object
    upload = stack.upload("flaky.csv")
    stack.emulator.add_fault(
        "AWSStepFunctions.StartExecution", error_code="ServiceUnavailable", status=400, match="flaky.csv"
    )

    summary = stack.run(redrive=True, workers=1)

    assert (summary.missing, summary.redriven, summary.failed, summary.exit_status) == (1, 0, 1, 1)
    [finding] = summary.findings
    assert (finding.key, finding.version_id, finding.action) == (
        "flaky.csv",
        upload.version_id,
        reconcile.Action.START_FAILED,
    )
    assert "ServiceUnavailable" in str(finding.reason)
