"""End to end on each backend: real Terraform, real provider, real handler code.

Every test acts as a user would (an upload, a redelivered event, a created bucket) and observes
only what AWS would show: DynamoDB rows, Step Functions executions and their history (for an
EXPRESS workflow: its log group, the only place AWS shows them), and the alert topic through a
subscribed SQS queue. Failures are made by the backend: a fault on the
embedded emulator, an explicit IAM Deny on MiniStack (as one would on AWS).

Where MiniStack differs from AWS the affected assertion is a test of its own, marked by
``differs_on_ministack`` (a strict xfail that names the difference), so a MiniStack fix is noticed.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from botocore.exceptions import ClientError

from devkit import functions
from devkit.backends import Backend
from devkit.pipeline import Alert, Pipeline, TimedOut, wait_for
from ingestion_reconcile import Clients, Status, reconcile
from tests.e2e.conftest import SCAN_EXEMPTIONS, Deployment, differs_on_ministack

pytestmark = pytest.mark.e2e

EXEMPTION_TAG = "SecurityScanExemption"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def s3_event_of(pipeline: Pipeline, key: str, record: dict[str, Any]) -> dict[str, Any]:
    """The S3 notification that started an execution, rebuilt from its input (a redelivery)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": pipeline.region,
                "eventTime": record["event_time"],
                "eventName": record["event_name"],
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": record["bucket"], "arn": f"arn:aws:s3:::{record['bucket']}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": record["size"],
                        "eTag": record["etag"],
                        "versionId": record["version_id"],
                        "sequencer": record["sequencer"],
                    },
                },
            }
        ]
    }


def assert_a_second_delivery_wrote_nothing_new(pipeline: Pipeline, key: str, first: dict[str, Any]) -> None:
    """A second delivery of one object version. STANDARD: it started nothing (the execution name is
    taken). EXPRESS (names are not idempotent): it started a second execution, whose write the
    writer's conditional put refused. Either way: one row."""
    if pipeline.express:

        def both_finished() -> list[dict[str, Any]] | None:
            found = [e for e in pipeline.executions_for(key) if e["status"] != "RUNNING"]
            return found if len(found) >= 2 else None

        executions = wait_for("the second delivery's execution", both_finished, timeout=90, interval=0.5)
        assert len(executions) == 2
        assert {e["status"] for e in executions} == {"SUCCEEDED"}
        [second] = [e for e in executions if e["executionArn"] != first["executionArn"]]
        assert json.loads(second["output"])["write"]["status"] == "duplicate"
    else:
        assert [e["executionArn"] for e in pipeline.executions_for(key)] == [first["executionArn"]]
    assert len(pipeline.rows_for(key)) == 1


@pytest.mark.aws
def test_a_second_plan_right_after_apply_shows_no_changes(
    deployed: Deployment, request: pytest.FixtureRequest
) -> None:
    differs_on_ministack(
        request,
        "CloudWatch alarms are read back without period, statistic and actions, and the state "
        "machine without tracing_configuration, so a second plan shows in-place changes",
    )
    assert deployed.second_plan == "", deployed.second_plan[-3000:]


@pytest.mark.aws
@pytest.mark.parametrize(
    "key",
    [
        "data/file1.txt",
        "incoming/Déjà vu + notes (2026) ✓.csv",
        "my file+v2.csv",
    ],
    ids=["plain", "unicode-spaces-plus", "spaces-and-plus"],
)
def test_an_upload_becomes_exactly_one_row_with_the_decoded_key_and_event_time(
    pipeline: Pipeline, key: str
) -> None:
    key = f"{unique('happy')}/{key}"
    pipeline.upload(key)

    execution = pipeline.wait_for_final_execution(key)

    assert execution["status"] == "SUCCEEDED"
    record = json.loads(execution["input"])
    rows = pipeline.rows_for(key)
    assert len(rows) == 1
    row = rows[0]
    assert row["Filename"]["S"] == key
    assert row["UploadTimestamp"]["S"] == record["event_time"]
    assert record["event_name"].startswith("ObjectCreated:")
    assert row["Bucket"]["S"] == pipeline.outputs["s3_bucket_name"]
    assert row["ExecutionId"]["S"] == execution["executionArn"]
    assert json.loads(execution["output"])["write"]["status"] == "written"


@pytest.mark.aws
def test_concurrent_uploads_give_exactly_one_row_each(pipeline: Pipeline) -> None:
    prefix = unique("concurrent")
    keys = [f"{prefix}/file-{i:02d}.csv" for i in range(25)]

    with ThreadPoolExecutor(max_workers=25) as pool:
        list(pool.map(pipeline.upload, keys))

    def all_done() -> list[dict] | None:
        finished = [e for e in pipeline.executions_for(f"{prefix}/", prefix=True) if e["status"] != "RUNNING"]
        return finished if len(finished) >= 25 else None

    finished = wait_for("25 finished executions", all_done, timeout=240, interval=1)
    assert {e["status"] for e in finished} == {"SUCCEEDED"}
    assert len(finished) == 25
    for key in keys:
        assert len(pipeline.rows_for(key)) == 1, key


@pytest.mark.aws
def test_a_redelivered_s3_event_writes_nothing_new(pipeline: Pipeline) -> None:
    key = f"{unique('redelivered')}/report 1.csv"
    pipeline.upload(key)
    first = pipeline.wait_for_final_execution(key)
    record = json.loads(first["input"])
    event = s3_event_of(pipeline, key, record)

    response = pipeline.client("lambda").invoke(
        FunctionName=pipeline.outputs["trigger_lambda_name"], Payload=json.dumps(event).encode()
    )

    summary = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, summary
    assert (summary["started"], summary["duplicates"]) == ((1, 0) if pipeline.express else (0, 1))
    assert_a_second_delivery_wrote_nothing_new(pipeline, key, first)


@pytest.mark.aws
@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b"])
def test_a_path_traversal_key_starts_nothing_and_alerts_once_naming_it(pipeline: Pipeline, key: str) -> None:
    before = len(pipeline.executions())

    pipeline.upload(key)

    alerts = pipeline.wait_for_alerts(lambda a: key in a.message)
    naming = [a for a in alerts if key in a.message]
    assert len(naming) == 1
    assert "reject" in (naming[0].subject + naming[0].message).lower()
    assert len(pipeline.executions()) == before
    assert pipeline.executions_for(key) == []
    assert pipeline.rows_for(key) == []


# --- a write that keeps failing: one scenario per deployment, several assertions ---------------


@dataclass
class FailedWrite:
    key: str
    error: str  # what the failure is called (the injected error code, or AccessDenied)
    execution: dict[str, Any]
    attempts: int
    rows: list[dict[str, Any]]
    alerts: list[Alert]


@pytest.fixture(scope="module")
def failed_write(deployed: Deployment) -> FailedWrite:
    pipeline, backend = deployed.pipeline, deployed.backend
    backend.settle()
    pipeline.alerts(wait_seconds=0)
    key = f"{unique('failing')}/ledger.csv"
    with backend.failing_writes(pipeline, key.split("/")[0]) as error:
        pipeline.upload(key)
        execution = pipeline.wait_for_final_execution(key, timeout=120)
    alerts = [a for a in pipeline.wait_for_alerts(lambda a: key in a.message) if key in a.message]
    return FailedWrite(
        key,
        error,
        execution,
        pipeline.writer_attempts(execution["executionArn"]),
        pipeline.rows_for(key),
        alerts,
    )


def test_a_failing_write_is_retried_three_times_then_alerts_and_fails(
    failed_write: FailedWrite, pipeline: Pipeline
) -> None:
    assert failed_write.execution["status"] == "FAILED"
    assert failed_write.attempts == 4  # the first try and 3 retries
    assert failed_write.rows == []
    assert len(failed_write.alerts) == 1
    alert = failed_write.alerts[0].json()
    assert alert is not None
    assert alert["key"] == failed_write.key
    assert alert["bucket"] == pipeline.outputs["s3_bucket_name"]
    assert alert["execution_id"] == failed_write.execution["executionArn"]
    assert failed_write.error in alert["error"] + alert["cause"]


# --- a file whose workflow cannot start: the dead-letter queue, its alarm, the README's re-drive ---


@dataclass
class DeadLettered:
    key: str
    dead_letters: list[dict[str, Any]]  # the S3 events in the dead-letter queue
    executions_while_failing: list[dict[str, Any]]
    alarms: list[dict[str, Any]]  # the dead-letter queue alarm's notifications (ALARM)
    redrive_error: str  # '' when both re-drives were accepted
    execution: dict[str, Any] | None  # the execution after the re-drive
    rows: list[dict[str, Any]]
    upload_queue_after: dict[str, int]


def _dlq_alarms(alerts: list[Alert], alarm_name: str, state: str) -> list[dict[str, Any]]:
    return [
        body
        for body in (a.json() or {} for a in alerts)
        if body.get("AlarmName") == alarm_name and body.get("NewStateValue") == state
    ]


@pytest.fixture(scope="module")
def dead_lettered(deployed: Deployment) -> DeadLettered:
    """A file whose StartExecution keeps failing: after queue_max_receive_count receives (2 on the
    local stacks, a visibility timeout of 31 s apart) its notification is in the dead-letter queue;
    then the start works again and README's one command re-drives it, twice."""
    pipeline, backend = deployed.pipeline, deployed.backend
    backend.settle()
    pipeline.wait_for_queue_drained()
    pipeline.alerts(wait_seconds=0)
    prefix = unique("start-fails")
    key = f"{prefix}/orders.csv"
    dlq_name = pipeline.outputs["dead_letter_queue_url"].rsplit("/", 1)[-1]
    alarm_name = f"{dlq_name}-not-empty"
    seen: list[Alert] = []
    with backend.failing_starts(pipeline, prefix):
        pipeline.upload(key)

        def dead_lettered() -> list[dict[str, Any]] | None:
            found = [
                event
                for event in pipeline.dead_letters()
                if any(key in json.dumps(record) for record in event.get("Records", []))
            ]
            return found or None

        letters = wait_for(
            "the notification in the dead-letter queue", dead_lettered, timeout=180, interval=1
        )
        failing = pipeline.executions_for(key)
        with contextlib.suppress(TimedOut):  # MiniStack evaluates no alarm (a test below says so)
            seen += pipeline.wait_for_alerts(
                lambda a: bool(_dlq_alarms([a], alarm_name, "ALARM")), timeout=30
            )
    errors = []
    for _ in range(2):  # README: running the re-drive again is harmless
        try:
            pipeline.redrive_dead_letters()
        except ClientError as error:
            errors.append(str(error))
            break
        with contextlib.suppress(TimedOut):
            wait_for("the dead-letter queue to empty", lambda: not pipeline.dead_letters(), timeout=60)
    execution = None
    if not errors:
        execution = pipeline.wait_for_final_execution(key, timeout=120)
        pipeline.wait_for_queue_drained()
    seen += pipeline.alerts(wait_seconds=2)
    return DeadLettered(
        key,
        letters,
        failing,
        _dlq_alarms(seen, alarm_name, "ALARM"),
        "; ".join(errors),
        execution,
        pipeline.rows_for(key),
        pipeline.queue_depth(),
    )


@pytest.mark.aws
def test_a_file_whose_start_keeps_failing_ends_in_the_dead_letter_queue(dead_lettered: DeadLettered) -> None:
    assert len(dead_lettered.dead_letters) == 1
    [record] = dead_lettered.dead_letters[0]["Records"]
    assert unquote_plus(record["s3"]["object"]["key"]) == dead_lettered.key
    assert dead_lettered.executions_while_failing == []


def test_the_dead_letter_queue_alarm_alerts_once(
    dead_lettered: DeadLettered, request: pytest.FixtureRequest
) -> None:
    differs_on_ministack(request, "CloudWatch alarms are stored but never evaluated, so none fires")
    assert len(dead_lettered.alarms) == 1
    alarm = dead_lettered.alarms[0]
    assert alarm["Trigger"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Trigger"]["Namespace"] == "AWS/SQS"


@pytest.mark.aws
def test_the_readme_redrive_ingests_it_once_even_if_run_twice(
    dead_lettered: DeadLettered, request: pytest.FixtureRequest
) -> None:
    differs_on_ministack(request, "SQS StartMessageMoveTask (dead-letter queue re-drive) is not implemented")
    assert dead_lettered.redrive_error == ""
    assert dead_lettered.execution is not None
    assert dead_lettered.execution["status"] == "SUCCEEDED"
    assert len(dead_lettered.rows) == 1
    assert dead_lettered.upload_queue_after == {"visible": 0, "in_flight": 0, "delayed": 0}


# --- what the queue may carry besides S3 events --------------------------------------------------


@pytest.mark.aws
def test_a_queue_message_that_is_not_an_s3_event_is_alerted_once_and_deleted(pipeline: Pipeline) -> None:
    marker = unique("not-an-s3-event")
    sqs = pipeline.client("sqs")
    sent = sqs.send_message(QueueUrl=pipeline.outputs["upload_queue_url"], MessageBody=f"hello {marker}")

    alerts = pipeline.wait_for_alerts(lambda a: sent["MessageId"] in a.message, timeout=60)

    assert len([a for a in alerts if sent["MessageId"] in a.message]) == 1
    pipeline.wait_for_queue_drained(timeout=60)
    assert not any(marker in json.dumps(letter) for letter in pipeline.dead_letters())


@pytest.mark.aws
def test_a_redelivered_queue_message_writes_nothing_new(pipeline: Pipeline) -> None:
    key = f"{unique('requeued')}/report 2.csv"
    pipeline.upload(key)
    first = pipeline.wait_for_final_execution(key)
    record = json.loads(first["input"])
    event = s3_event_of(pipeline, key, record)

    pipeline.client("sqs").send_message(
        QueueUrl=pipeline.outputs["upload_queue_url"], MessageBody=json.dumps(event)
    )
    pipeline.wait_for_queue_drained(timeout=60)

    assert_a_second_delivery_wrote_nothing_new(pipeline, key, first)
    assert [a.subject for a in pipeline.alerts(wait_seconds=1) if key in a.message] == []


# --- the security monitor -----------------------------------------------------------------------


@dataclass
class Scan:
    bucket: str
    table: str
    tagged_bucket: str
    report: dict[str, Any]
    alerts: list[Alert]


EXEMPT_BUCKET, EXEMPT_TABLE = SCAN_EXEMPTIONS  # declared by every e2e stack (conftest)


@pytest.fixture(scope="module")
def scan(deployed: Deployment) -> Scan:
    """A bucket without default encryption and a table on the AWS-owned key; one of each declared
    exempt in security_scan_exemptions; and a bucket carrying only the exemption tag."""
    pipeline = deployed.pipeline
    deployed.backend.settle()
    pipeline.alerts(wait_seconds=0)
    s3, dynamodb = pipeline.client("s3"), pipeline.client("dynamodb")
    bucket, table, tagged = unique("plain-bucket"), unique("default-key-table"), unique("tagged-bucket")
    for name in (bucket, EXEMPT_BUCKET, tagged):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": pipeline.region})
    s3.put_bucket_tagging(
        Bucket=tagged, Tagging={"TagSet": [{"Key": EXEMPTION_TAG, "Value": "public test fixtures"}]}
    )
    for name in (table, EXEMPT_TABLE):
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    try:
        report = pipeline.invoke_monitor()
        alerts = pipeline.wait_for_alerts(lambda a: bucket in a.message)
    finally:
        for name in (bucket, EXEMPT_BUCKET, tagged):
            s3.delete_bucket(Bucket=name)
        for name in (table, EXEMPT_TABLE):
            dynamodb.delete_table(TableName=name)
    return Scan(bucket, table, tagged, report, [a for a in alerts if bucket in a.message])


def test_the_monitor_reports_exactly_the_resources_without_kms(scan: Scan, pipeline: Pipeline) -> None:
    flagged = {(f["resource_type"], f["name"]) for f in scan.report["non_compliant"]}
    assert flagged == {
        ("s3_bucket", scan.bucket),
        ("s3_bucket", scan.tagged_bucket),
        ("dynamodb_table", scan.table),
    }
    assert scan.report["errors"] == []
    listed = {f["name"] for kind in ("non_compliant", "exempted", "errors") for f in scan.report[kind]}
    assert pipeline.outputs["s3_bucket_name"] not in listed  # the stack's own bucket: KMS, compliant
    assert pipeline.outputs["dynamodb_table_name"] not in listed
    assert scan.report["counts"]["compliant"] >= 2
    assert scan.report["alert_sent"] is True
    assert len(scan.alerts) == 1
    assert scan.table in scan.alerts[0].message


def test_an_exemption_tag_alone_exempts_nothing_and_the_finding_says_so(scan: Scan) -> None:
    flagged = {f["name"]: f for f in scan.report["non_compliant"]}
    assert flagged[scan.tagged_bucket]["reason"].endswith(
        f'; tagged {EXEMPTION_TAG}="public test fixtures" but not declared in security_scan_exemptions'
    )
    assert flagged[scan.tagged_bucket]["exemption"] is None
    assert scan.tagged_bucket not in {f["name"] for f in scan.report["exempted"]}


def test_declared_resources_are_exempted_with_the_declared_reason_and_alerted(scan: Scan) -> None:
    exempted = {(f["resource_type"], f["name"]): f["exemption"] for f in scan.report["exempted"]}
    assert exempted == {
        ("s3_bucket", EXEMPT_BUCKET): SCAN_EXEMPTIONS[EXEMPT_BUCKET],
        ("dynamodb_table", EXEMPT_TABLE): SCAN_EXEMPTIONS[EXEMPT_TABLE],
    }
    assert scan.report["counts"]["exempted"] == 2
    [alert] = scan.alerts
    assert alert.subject == "Security monitor: 3 non-compliant, 0 error(s), 2 exempted"
    for name, reason in SCAN_EXEMPTIONS.items():
        assert f"{name} " in alert.message
        assert f'exempted by security_scan_exemptions: "{reason}"' in alert.message


def test_the_schedule_rule_runs_the_monitor_which_alerts(
    pipeline: Pipeline, backend: Backend, deployed: Deployment
) -> None:
    bucket = unique("scheduled-scan")
    pipeline.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": pipeline.region}
    )
    try:
        with backend.fire_schedule(pipeline, pipeline.outputs["security_scan_rule_name"]):
            alerts = pipeline.wait_for_alerts(lambda a: bucket in a.message, timeout=120)
    finally:
        pipeline.client("s3").delete_bucket(Bucket=bucket)

    assert [a.subject for a in alerts if bucket in a.message] == [
        "Security monitor: 1 non-compliant, 0 error(s), 0 exempted"
    ]


def test_listing_versions_with_url_encoding_encodes_the_keys(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    differs_on_ministack(
        request,
        "ListObjectVersions ignores encoding-type=url (keys come back raw, no EncodingType), so "
        "Terraform's force_destroy decodes 'a+b' to 'a b', deletes nothing and never finishes",
    )
    key = f"{unique('encoded')}/a+b c.txt"
    pipeline.upload(key)
    pipeline.wait_for_final_execution(key)
    s3 = pipeline.client("s3")
    # Botocore asks for encoding-type=url itself and decodes only when the answer says it is encoded.
    response = s3.list_object_versions(Bucket=pipeline.outputs["s3_bucket_name"], Prefix=key.split("/")[0])

    assert response.get("EncodingType") == "url"
    assert [v["Key"] for v in response["Versions"]] == [key]


def test_an_upload_asking_for_sse_s3_is_refused_by_the_bucket_policy(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    differs_on_ministack(
        request,
        "the account root (access key test) is not subject to a bucket policy's explicit Deny; on AWS it is",
    )
    key = f"{unique('sse-s3')}/plain.txt"
    with pytest.raises(ClientError) as refused:
        pipeline.client("s3").put_object(
            Bucket=pipeline.outputs["s3_bucket_name"], Key=key, Body=b"x", ServerSideEncryption="AES256"
        )

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert pipeline.executions_for(key) == []


# --- the documented upload forms (README "Deploy to real AWS") --------------------------------


def head(pipeline: Pipeline, key: str) -> tuple[str | None, str | None]:
    found = pipeline.client("s3").head_object(Bucket=pipeline.outputs["s3_bucket_name"], Key=key)
    return found.get("ServerSideEncryption"), found.get("SSEKMSKeyId")


def test_an_upload_without_an_sse_option_lands_under_the_pipeline_key(pipeline: Pipeline) -> None:
    key = f"{unique('no-sse')}/plain.csv"
    pipeline.client("s3").put_object(Bucket=pipeline.outputs["s3_bucket_name"], Key=key, Body=b"x")

    assert head(pipeline, key) == ("aws:kms", pipeline.outputs["kms_s3_key_arn"])
    assert pipeline.wait_for_final_execution(key)["status"] == "SUCCEEDED"
    assert len(pipeline.rows_for(key)) == 1


def test_an_upload_naming_the_pipeline_key_lands_under_it(pipeline: Pipeline) -> None:
    key = f"{unique('named-key')}/named.csv"
    pipeline.upload(key)  # --sse aws:kms --sse-kms-key-id <kms_s3_key_arn>

    assert head(pipeline, key) == ("aws:kms", pipeline.outputs["kms_s3_key_arn"])
    assert pipeline.wait_for_final_execution(key)["status"] == "SUCCEEDED"


def test_an_upload_naming_the_pipeline_key_by_its_bare_key_id_lands_under_it(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    key = f"{unique('key-id')}/by-id.csv"
    key_arn = pipeline.outputs["kms_s3_key_arn"]
    pipeline.client("s3").put_object(
        Bucket=pipeline.outputs["s3_bucket_name"],
        Key=key,
        Body=b"x",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_arn.rsplit("/", 1)[1],
    )

    # Accepted on every backend (above); only what HeadObject reports differs.
    differs_on_ministack(
        request,
        "an object's SSEKMSKeyId is stored and reported as sent (the bare key id); AWS reports the key ARN",
    )
    assert head(pipeline, key) == ("aws:kms", key_arn)


def test_an_upload_naming_the_pipeline_key_by_its_alias_is_refused(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    """An alias can be repointed to another key and resolves in the requester's account."""
    differs_on_ministack(
        request,
        "the account root (access key test) is not subject to a bucket policy's explicit Deny; on AWS it is",
    )
    key_id = pipeline.outputs["kms_s3_key_arn"].rsplit("/", 1)[1]
    [alias] = [a["AliasName"] for a in pipeline.client("kms").list_aliases(KeyId=key_id)["Aliases"]]
    key = f"{unique('alias')}/by-alias.csv"
    with pytest.raises(ClientError) as refused:
        pipeline.client("s3").put_object(
            Bucket=pipeline.outputs["s3_bucket_name"],
            Key=key,
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=alias,
        )

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_the_seed_form_aws_kms_without_a_key_id_is_refused(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    """On AWS it would be stored under the AWS-managed aws/s3 key, bypassing the pipeline's key."""
    differs_on_ministack(
        request,
        "--sse aws:kms without a key id answers 400 InvalidArgument (AWS stores the object under "
        "aws/s3, which the bucket policy refuses with 403), and the account root is not subject to "
        "a bucket policy's Deny",
    )
    key = f"{unique('seed-form')}/seed.csv"
    with pytest.raises(ClientError) as refused:
        pipeline.client("s3").put_object(
            Bucket=pipeline.outputs["s3_bucket_name"], Key=key, Body=b"x", ServerSideEncryption="aws:kms"
        )

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert pipeline.executions_for(key) == []


def test_a_20_mb_multipart_upload_lands_under_the_pipeline_key_as_one_row(pipeline: Pipeline) -> None:
    """`aws s3 cp` switches to multipart above 8 MB; part uploads carry no SSE header."""
    import io

    from boto3.s3.transfer import TransferConfig

    key = f"{unique('multipart')}/twenty.bin"
    cli_defaults = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)
    pipeline.client("s3").upload_fileobj(
        io.BytesIO(b"m" * (20 * 1024 * 1024)), pipeline.outputs["s3_bucket_name"], key, Config=cli_defaults
    )

    assert head(pipeline, key) == ("aws:kms", pipeline.outputs["kms_s3_key_arn"])
    execution = pipeline.wait_for_final_execution(key)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["input"])["event_name"] == "ObjectCreated:CompleteMultipartUpload"
    assert len(pipeline.executions_for(key)) == 1
    [row] = pipeline.rows_for(key)
    assert row["Size"]["N"] == str(20 * 1024 * 1024)


# --- what the modern provider's resources leave behind, read through the AWS APIs -----------------
# The plan-level assertions live in tests/pipeline.tftest.hcl; these check that the applied stack
# carries the same settings where an AWS client would look: the S3 split resources, the state
# machine's customer-managed key, the functions' JSON log format, the table's deletion protection
# (off for local and sandbox stacks), and handler log lines that are one JSON object each, never
# re-encoded. They share the module's deployment (one apply per target, not two).

FUNCTION_OUTPUTS = tuple(function.output for function in functions.FUNCTIONS)  # functions.json


@pytest.mark.aws
def test_the_bucket_settings_are_the_split_resources(pipeline: Pipeline) -> None:
    s3, bucket = pipeline.client("s3"), pipeline.outputs["s3_bucket_name"]

    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": pipeline.outputs["kms_s3_key_arn"],
    }
    assert rule["BucketKeyEnabled"] is True


@pytest.mark.aws
def test_the_lifecycle_rules_expire_versions_and_abort_multipart_uploads(pipeline: Pipeline) -> None:
    rules = {
        rule["ID"]: rule
        for rule in pipeline.client("s3").get_bucket_lifecycle_configuration(
            Bucket=pipeline.outputs["s3_bucket_name"]
        )["Rules"]
    }

    assert set(rules) == {"expire-objects", "remove-expired-delete-markers"}
    expire = rules["expire-objects"]
    assert expire["Status"] == "Enabled"
    assert expire["Expiration"] == {"Days": 90}
    assert expire["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert expire["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["remove-expired-delete-markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}


@pytest.mark.aws
def test_the_state_machine_is_encrypted_with_its_own_customer_managed_key(pipeline: Pipeline) -> None:
    machine = pipeline.client("stepfunctions").describe_state_machine(
        stateMachineArn=pipeline.outputs["step_function_arn"]
    )

    configuration = machine["encryptionConfiguration"]
    assert configuration["type"] == "CUSTOMER_MANAGED_KMS_KEY"
    assert configuration["kmsKeyId"] == pipeline.outputs["kms_stepfunctions_key_arn"]
    assert configuration["kmsDataKeyReusePeriodSeconds"] == 300
    key = pipeline.client("kms").describe_key(KeyId=configuration["kmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER"
    assert key["Enabled"]


@pytest.mark.aws
def test_every_function_logs_json_at_info_into_its_own_group(pipeline: Pipeline) -> None:
    lam = pipeline.client("lambda")
    for output in FUNCTION_OUTPUTS:
        name = pipeline.outputs[output]
        logging = lam.get_function_configuration(FunctionName=name)["LoggingConfig"]
        assert logging["LogFormat"] == "JSON", name
        assert logging["ApplicationLogLevel"] == "INFO", name
        assert logging["LogGroup"] == f"/aws/lambda/{name}", name


@pytest.mark.aws
def test_the_local_stack_turns_deletion_protection_off(pipeline: Pipeline) -> None:
    table = pipeline.client("dynamodb").describe_table(TableName=pipeline.outputs["dynamodb_table_name"])

    assert table["Table"]["DeletionProtectionEnabled"] is False  # so that teardown can destroy it


def _handler_lines(pipeline: Pipeline, function_output: str, needle: str) -> list[dict[str, Any]] | None:
    """The trigger's log events that mention ``needle``, each parsed as the JSON object it must be."""
    group = f"/aws/lambda/{pipeline.outputs[function_output]}"
    events = pipeline.client("logs").filter_log_events(logGroupName=group, filterPattern=f'"{needle}"')
    messages = [event["message"] for event in events.get("events", [])]
    return [json.loads(message) for message in messages] or None


@pytest.mark.aws
def test_a_handler_log_line_is_one_json_object_not_encoded_twice(deployed: Deployment) -> None:
    pipeline = deployed.pipeline
    key = f"logs-{uuid.uuid4().hex[:8]}/report.csv"
    pipeline.upload(key)
    pipeline.wait_for_final_execution(key)

    lines = wait_for(
        "the trigger's log lines naming the upload",
        lambda: _handler_lines(pipeline, "trigger_lambda_name", key.split("/")[0]),
        timeout=30,
    )

    for line in lines:
        assert isinstance(line, dict), line
        assert line["level"] in {"INFO", "WARNING", "ERROR"}, line
        assert line["service"] == "ingestion-trigger", line
        message = line["message"]
        assert not (isinstance(message, str) and message.lstrip().startswith("{")), (
            f"a JSON log line wrapped in another: {line}"
        )


# --- the cases every account can run, AWS's included (make e2e-aws) -------------------------------


def _create_bucket(pipeline: Pipeline, name: str, tags: dict[str, str]) -> None:
    """A bucket with S3's defaults (SSE-S3 since 2023, not KMS), tagged as the deployment's."""
    s3 = pipeline.client("s3")
    where = {} if pipeline.region == "us-east-1" else {"LocationConstraint": pipeline.region}
    s3.create_bucket(Bucket=name, **({"CreateBucketConfiguration": where} if where else {}))
    if tags:
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": key, "Value": value} for key, value in tags.items()]}
        )


@pytest.mark.aws
def test_the_monitor_finds_a_new_bucket_without_kms_and_passes_the_stack(deployed: Deployment) -> None:
    """In any account, AWS's too: a bucket created with S3's defaults is a finding and alerted;
    the stack's own bucket and table are compliant. Only these are asserted: a real account may
    hold other findings."""
    pipeline = deployed.pipeline
    deployed.backend.settle()
    pipeline.alerts(wait_seconds=0)
    bucket = unique("monitor-plain")
    _create_bucket(pipeline, bucket, deployed.tags)
    try:
        report = pipeline.invoke_monitor()
        alerts = pipeline.wait_for_alerts(lambda a: bucket in a.message, timeout=120)
    finally:
        pipeline.client("s3").delete_bucket(Bucket=bucket)

    findings = {f["name"]: f for f in report["non_compliant"]}
    assert findings[bucket]["resource_type"] == "s3_bucket"
    listed = {f["name"] for kind in ("non_compliant", "exempted", "errors") for f in report[kind]}
    assert pipeline.outputs["s3_bucket_name"] not in listed
    assert pipeline.outputs["dynamodb_table_name"] not in listed
    assert report["alert_sent"] is True
    assert len([a for a in alerts if bucket in a.message]) == 1


@pytest.mark.aws
def test_reconcile_finds_nothing_missing(
    deployed: Deployment, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scripts/reconcile.py without --redrive after three uploads: each is ingested. On the sandbox
    target no case leaves a file unwritten (the failing write is not one of its cases), so there the
    whole bucket must reconcile; elsewhere only this test's files are asserted."""
    prefix = unique("reconcile")
    keys = [f"{prefix}/{index}.csv" for index in range(3)]
    for key in keys:
        pipeline.upload(key)
    for key in keys:
        assert pipeline.wait_for_final_execution(key)["status"] == "SUCCEEDED"
    outputs = pipeline.outputs
    if pipeline.ca_bundle:  # MiniStack's TLS: as a user of the tool would, through botocore's variable
        monkeypatch.setenv("AWS_CA_BUNDLE", str(pipeline.ca_bundle))

    summary = reconcile(
        Clients.create(region=pipeline.region, endpoint_url=pipeline.endpoint),
        outputs["s3_bucket_name"],
        outputs["dynamodb_table_name"],
        outputs["step_function_arn"],
        redrive=False,
        settle_seconds=0,
    )

    missing = [finding.key for finding in summary.findings if finding.status is Status.MISSING]
    assert [key for key in missing if key.startswith(prefix) or deployed.backend.name == "aws"] == []
    assert summary.ingested >= len(keys)
