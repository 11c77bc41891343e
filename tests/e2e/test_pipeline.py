"""End to end on the embedded emulator: real Terraform, real provider, real handler code.

Every test acts as a user would (an upload, a redelivered event, a created bucket) and observes
only what AWS would show: DynamoDB rows, Step Functions executions and their history, and the
alert topic through a subscribed SQS queue.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import pytest

from devkit.pipeline import Pipeline, wait_for
from emulator import Emulator

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


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


def test_a_redelivered_s3_event_starts_nothing_new_and_writes_nothing_new(pipeline: Pipeline) -> None:
    key = f"{unique('redelivered')}/report 1.csv"
    pipeline.upload(key)
    first = pipeline.wait_for_final_execution(key)
    record = json.loads(first["input"])
    event = {
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

    response = pipeline.client("lambda").invoke(
        FunctionName=pipeline.outputs["trigger_lambda_name"], Payload=json.dumps(event).encode()
    )

    summary = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, summary
    assert summary["duplicates"] == 1
    assert summary["started"] == 0
    assert [e["executionArn"] for e in pipeline.executions_for(key)] == [first["executionArn"]]
    assert len(pipeline.rows_for(key)) == 1


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


def test_a_failing_write_is_retried_three_times_then_alerts_and_fails(
    pipeline: Pipeline, emulator: Emulator
) -> None:
    key = f"{unique('failing')}/ledger.csv"
    emulator.add_fault(
        "DynamoDB_20120810.PutItem",
        match=key.split("/")[0],
        error_code="ProvisionedThroughputExceededException",
        message="injected: table is over capacity",
    )

    pipeline.upload(key)
    execution = pipeline.wait_for_final_execution(key, timeout=120)

    assert execution["status"] == "FAILED"
    assert pipeline.writer_attempts(execution["executionArn"]) == 4  # the first try and 3 retries
    assert pipeline.rows_for(key) == []
    alerts = pipeline.wait_for_alerts(lambda a: key in a.message)
    failure = [a.json() for a in alerts if key in a.message]
    assert len(failure) == 1
    assert failure[0] is not None
    assert failure[0]["key"] == key
    assert failure[0]["bucket"] == pipeline.outputs["s3_bucket_name"]
    assert failure[0]["execution_id"] == execution["executionArn"]
    assert "ProvisionedThroughputExceeded" in failure[0]["error"] + failure[0]["cause"]


def test_a_trigger_that_keeps_failing_ends_on_the_alert_topic(pipeline: Pipeline, emulator: Emulator) -> None:
    prefix = unique("start-fails")
    key = f"{prefix}/orders.csv"
    emulator.add_fault("AWSStepFunctions.StartExecution", match=prefix, error_code="ServiceUnavailable")

    pipeline.upload(key)

    # S3 invokes the trigger asynchronously: 1 attempt + 2 retries, then the on-failure destination.
    alerts = pipeline.wait_for_alerts(lambda a: key in a.message, timeout=90)
    records = [a.json() for a in alerts if key in a.message]
    assert len(records) == 1
    record = records[0]
    assert record is not None
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].split(":")[6] == pipeline.outputs["trigger_lambda_name"]
    assert record["responsePayload"]["errorType"] == "StartExecutionError"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == key
    assert pipeline.executions_for(key) == []
    assert pipeline.rows_for(key) == []


def test_the_monitor_reports_exactly_the_resources_without_kms(pipeline: Pipeline) -> None:
    bucket = unique("plain-bucket")
    table = unique("default-key-table")
    pipeline.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": pipeline.region}
    )
    pipeline.client("dynamodb").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        report = pipeline.invoke_monitor()
    finally:
        pipeline.client("s3").delete_bucket(Bucket=bucket)
        pipeline.client("dynamodb").delete_table(TableName=table)

    flagged = {(f["resource_type"], f["name"]) for f in report["non_compliant"]}
    assert flagged == {("s3_bucket", bucket), ("dynamodb_table", table)}
    assert report["errors"] == []
    compliant = {(f["resource_type"], f["name"]): f for f in report["compliant"]}
    stack_bucket = compliant[("s3_bucket", pipeline.outputs["s3_bucket_name"])]
    stack_table = compliant[("dynamodb_table", pipeline.outputs["dynamodb_table_name"])]
    assert stack_bucket["kms_key"] in (
        pipeline.outputs["kms_s3_key_arn"],
        pipeline.outputs["kms_s3_key_arn"].split("/")[-1],
    )
    assert stack_table["kms_key"] == pipeline.outputs["kms_dynamodb_key_arn"]
    assert report["alert_sent"] is True
    alerts = pipeline.wait_for_alerts(lambda a: bucket in a.message and table in a.message)
    assert len([a for a in alerts if bucket in a.message]) == 1


def test_the_schedule_rule_runs_the_monitor_which_alerts(pipeline: Pipeline, emulator: Emulator) -> None:
    bucket = unique("scheduled-scan")
    pipeline.client("s3").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": pipeline.region}
    )
    rule = pipeline.outputs["lambda_security_monitor_function_name"].replace(
        "-security-monitor", "-security-scan"
    )
    try:
        emulator.trigger_rule(rule, region=pipeline.region)  # what EventBridge does once a day
        alerts = pipeline.wait_for_alerts(lambda a: bucket in a.message, timeout=90)
    finally:
        pipeline.client("s3").delete_bucket(Bucket=bucket)

    assert [a.subject for a in alerts if bucket in a.message] == [
        "Security monitor: 1 non-compliant, 0 error(s)"
    ]


def test_an_upload_without_sse_kms_is_refused_by_the_bucket_policy(pipeline: Pipeline) -> None:
    from botocore.exceptions import ClientError

    key = f"{unique('no-sse')}/plain.txt"
    with pytest.raises(ClientError) as refused:
        pipeline.client("s3").put_object(Bucket=pipeline.outputs["s3_bucket_name"], Key=key, Body=b"x")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert pipeline.executions_for(key) == []
