"""``make e2e-aws`` and ``make aws-sweep`` run against the embedded emulator, so the AWS path cannot rot.

The run is the one a user starts against AWS (``python -m devkit.sandbox``, a subprocess), pointed at
an emulator with ``--endpoint`` and moto's fake account: the caller check, the confirmation, the
apply with the run's names and tags, the ``aws``-marked cases in their own pytest, the destroy in a
``finally`` and the sweep. The sweeper is driven on resources of every kind it deletes, made here
with the run tag, as a killed run would leave them. Nothing needs credentials or leaves loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devkit import backends, sweep, toolchain
from devkit.sweep import RUN_TAG, STARTED_TAG

pytestmark = pytest.mark.e2e

ROOT = toolchain.ROOT
REGION = "eu-central-1"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    backend = backends.Embedded(port=0, log_path=tmp_path_factory.mktemp("sandbox") / "emulator.log")
    backend.start()
    try:
        yield backend.endpoint_url
    finally:
        backend.stop()


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )


def client_of(endpoint: str) -> Callable[[str], Any]:
    return sweep.clients(endpoint, REGION)


def tagged(endpoint: str, run_id: str) -> list[str]:
    return [leftover.arn for leftover in sweep.discover(client_of(endpoint), run_id)]


def test_without_credentials_it_stops_with_one_sentence_and_creates_nothing(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key in {"AWS_DEFAULT_REGION", "AWS_REGION"}
    }
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    result = run_module("devkit.sandbox", "--yes", "--run-id", "nocreds", env=env)

    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("make e2e-aws: no AWS credentials were found in the standard chain")
    assert line.endswith("nothing was created")
    assert not list((ROOT / "build" / "tf").glob("sandbox-nocreds*"))


def test_without_confirmation_it_says_where_it_would_deploy_and_creates_nothing(emulator: str) -> None:
    result = run_module("devkit.sandbox", "--endpoint", emulator, "--run-id", "unconfirmed")

    assert result.returncode == 2
    assert "account 123456789012" in result.stdout
    assert f"region {REGION}" in result.stdout
    assert "ingest-unconfirmed-e2e-" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line == (
        "make e2e-aws: not confirmed: run it again with CONFIRM=yes (or --yes) to deploy; nothing was created"
    )
    assert tagged(emulator, "unconfirmed") == []
    assert not list((ROOT / "build" / "tf").glob("sandbox-unconfirmed*"))


def test_a_run_id_that_cannot_name_resources_is_refused() -> None:
    result = run_module("devkit.sandbox", "--run-id", "Not_Valid")

    assert result.returncode == 2
    assert "RUN_ID 'Not_Valid' must be 1-13 lowercase letters or digits" in result.stderr


@pytest.fixture(scope="module")
def sandbox_run(emulator: str) -> tuple[subprocess.CompletedProcess[str], str]:
    run_id = f"t{uuid.uuid4().hex[:8]}"
    return run_module("devkit.sandbox", "--yes", "--endpoint", emulator, "--run-id", run_id), run_id


def test_the_run_applies_runs_the_aws_cases_destroys_and_sweeps(
    sandbox_run: tuple[subprocess.CompletedProcess[str], str], emulator: str
) -> None:
    result, run_id = sandbox_run
    output = result.stdout + result.stderr

    assert result.returncode == 0, output[-6000:]
    assert "e2e-aws: passed: applied True, cases exit 0, destroyed True, sweep exit 0" in output
    cases = ET.parse(ROOT / "build" / f"sandbox-{run_id}.xml").getroot()  # noqa: S314 - our own pytest's report
    names = {case.get("name", "").split("[")[0] for case in cases.iter("testcase")}
    assert {
        "test_an_upload_becomes_exactly_one_row_with_the_decoded_key_and_event_time",
        "test_a_redelivered_s3_event_writes_nothing_new",
        "test_a_path_traversal_key_starts_nothing_and_alerts_once_naming_it",
        "test_concurrent_uploads_give_exactly_one_row_each",
        "test_the_monitor_finds_a_new_bucket_without_kms_and_passes_the_stack",
        "test_reconcile_finds_nothing_missing",
        "test_the_readme_redrive_ingests_it_once_even_if_run_twice",
    } <= names
    assert "test_a_failing_write_is_retried_three_times_then_alerts_and_fails" not in names
    for outcome in ("failure", "error", "skipped"):
        assert list(cases.iter(outcome)) == [], outcome
    assert tagged(emulator, run_id) == [], "nothing tagged with the run is left"
    assert not list((ROOT / "build" / "tf").glob(f"sandbox-{run_id}*")), "nor its working directory"


def test_the_run_tags_every_resource_and_sweeps_what_the_cases_made_beside_the_stack(
    sandbox_run: tuple[subprocess.CompletedProcess[str], str],
) -> None:
    result, run_id = sandbox_run
    # The alert observer queue is made by the cases, not by Terraform: only the sweep deletes it.
    assert "sqs:queue" in result.stdout
    assert f"ingest-{run_id}-alerts-observer" in result.stdout
    assert "sweep: deleted 1, failed 0" in result.stdout
    assert "e2e-aws: cost by README's model: about $0." in result.stdout


# --- the sweeper on what a killed run leaves -------------------------------------------------------


def leave_behind(endpoint: str, run_id: str, started: datetime) -> dict[str, str]:
    """One resource of each kind the sweeper deletes, tagged as a run's, the awkward ones awkward:
    a bucket with object versions, a table with deletion protection, a role with an inline policy
    and a managed one, a user with an access key, a rule with a target, a function with a queue
    mapping."""
    tags = {RUN_TAG: run_id, STARTED_TAG: started.isoformat(timespec="seconds")}
    tag_list = [{"Key": key, "Value": value} for key, value in tags.items()]
    c = client_of(endpoint)
    name = f"{sweep.PREFIX}-{run_id}"
    made: dict[str, str] = {}
    s3 = c("s3")
    s3.create_bucket(Bucket=f"{name}-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=f"{name}-bucket", VersioningConfiguration={"Status": "Enabled"})
    for _ in range(2):
        s3.put_object(Bucket=f"{name}-bucket", Key="left.csv", Body=b"x")
    s3.put_bucket_tagging(Bucket=f"{name}-bucket", Tagging={"TagSet": tag_list})
    made["s3:bucket"] = f"{name}-bucket"
    c("dynamodb").create_table(
        TableName=f"{name}-table",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=True,
        Tags=tag_list,
    )
    made["dynamodb:table"] = f"{name}-table"
    queue = c("sqs").create_queue(QueueName=f"{name}-queue", tags=tags)["QueueUrl"]
    queue_arn = c("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    made["sqs:queue"] = f"{name}-queue"
    made["sns:topic"] = c("sns").create_topic(Name=f"{name}-topic", Tags=tag_list)["TopicArn"]
    made["kms:key"] = c("kms").create_key(Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])[
        "KeyMetadata"
    ]["Arn"]
    c("logs").create_log_group(logGroupName=f"/aws/lambda/{name}-fn", tags=tags)
    made["logs:log-group"] = f"/aws/lambda/{name}-fn"
    iam = c("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role_arn = iam.create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(trust), Tags=tag_list
    )["Role"]["Arn"]
    inline = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn}],
    }
    iam.put_role_policy(RoleName=f"{name}-role", PolicyName="inline", PolicyDocument=json.dumps(inline))
    managed = iam.create_policy(PolicyName=f"{name}-managed", PolicyDocument=json.dumps(inline))["Policy"][
        "Arn"
    ]
    iam.attach_role_policy(RoleName=f"{name}-role", PolicyArn=managed)
    made["iam:role"] = f"{name}-role"
    # make iam-proof-aws's users: an access key and an inline policy each
    iam.create_user(UserName=f"{name}-proof-user", Tags=tag_list)
    iam.create_access_key(UserName=f"{name}-proof-user")
    iam.put_user_policy(UserName=f"{name}-proof-user", PolicyName="inline", PolicyDocument=json.dumps(inline))
    made["iam:user"] = f"{name}-proof-user"
    function = c("lambda").create_function(
        FunctionName=f"{name}-fn",
        Runtime="python3.12",
        Role=role_arn,
        Handler="index.handler",
        Code={"ZipFile": (ROOT / "dist" / "lambda_writer.zip").read_bytes()},
        Tags=tags,
    )["FunctionArn"]
    c("lambda").create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=function, Enabled=False)
    made["lambda:function"] = f"{name}-fn"
    c("events").put_rule(Name=f"{name}-rule", ScheduleExpression="rate(1 day)", Tags=tag_list)
    c("events").put_targets(Rule=f"{name}-rule", Targets=[{"Id": "fn", "Arn": function}])
    made["events:rule"] = f"{name}-rule"
    c("cloudwatch").put_metric_alarm(
        AlarmName=f"{name}-alarm",
        MetricName="Errors",
        Namespace="AWS/Lambda",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Tags=tag_list,
    )
    made["cloudwatch:alarm"] = f"{name}-alarm"
    return made


def test_the_sweeper_lists_without_confirmation_then_deletes_every_kind(emulator: str) -> None:
    run_id = f"s{uuid.uuid4().hex[:8]}"
    made = leave_behind(emulator, run_id, datetime.now(UTC))
    client = client_of(emulator)
    found = sweep.discover(client, run_id)
    assert {leftover.kind for leftover in found} >= set(made), "every kind is discovered by its tag"
    lines: list[str] = []

    listed = sweep.sweep(client, run_id, None, confirmed=False, out=lines.append)

    assert listed == 1
    assert lines[-1] == "sweep: nothing deleted; run again with CONFIRM=yes (--yes) to delete them"
    assert {leftover.arn for leftover in sweep.discover(client, run_id)} == {x.arn for x in found}

    deleted = sweep.sweep(client, run_id, None, confirmed=True, out=lines.append)

    assert deleted == 0, lines
    # A key is only scheduled for deletion (KMS keeps it 7 days): discovery leaves such keys out.
    assert sweep.discover(client, run_id) == []
    assert client("kms").describe_key(KeyId=made["kms:key"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    roles = [role["RoleName"] for role in client("iam").list_roles()["Roles"]]
    assert made["iam:role"] not in roles
    assert made["iam:user"] not in [user["UserName"] for user in client("iam").list_users()["Users"]]
    assert client("s3").list_buckets()["Buckets"] == [
        bucket for bucket in client("s3").list_buckets()["Buckets"] if bucket["Name"] != made["s3:bucket"]
    ]
    assert sweep.sweep(client, run_id, None, confirmed=True, out=lines.append) == 0, (
        "a second sweep is harmless"
    )


def test_older_than_takes_the_stale_runs_only(emulator: str) -> None:
    now = datetime.now(UTC)
    stale, fresh = f"o{uuid.uuid4().hex[:8]}", f"n{uuid.uuid4().hex[:8]}"
    client = client_of(emulator)
    for run_id, started in ((stale, now - timedelta(hours=30)), (fresh, now - timedelta(hours=1))):
        client("sqs").create_queue(
            QueueName=f"ingest-{run_id}-q", tags={RUN_TAG: run_id, STARTED_TAG: started.isoformat()}
        )
    lines: list[str] = []

    assert sweep.sweep(client, None, timedelta(hours=24), confirmed=True, out=lines.append) == 0

    assert tagged(emulator, stale) == []
    assert [arn.rsplit(":", 1)[-1] for arn in tagged(emulator, fresh)] == [f"ingest-{fresh}-q"]


def test_the_sweep_command_refuses_a_duration_it_cannot_read() -> None:
    result = run_module("devkit.sweep", "--older-than", "yesterday")

    assert result.returncode == 2
    assert "--older-than 'yesterday' is not a duration such as 90m, 24h or 2d" in result.stderr
