"""The local Lambda runtime: the uploaded ZIP runs in a child process like on Lambda."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from emulator_helpers import drain_queue, make_queue

from emulator import Emulator

pytestmark = pytest.mark.emulator

HANDLER = """
import json
import os
import time

import boto3

from helpers.errors import InvalidInputError


def handler(event, context):
    print("MARKER event", json.dumps(event, sort_keys=True))
    action = event.get("action")
    if action == "invalid":
        raise InvalidInputError("key 'x' is not allowed")
    if action == "crash":
        raise KeyError("missing")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(3)
    if action == "put":
        boto3.client("s3").put_object(Bucket=event["bucket"], Key=event["key"], Body=b"x")
        return {"put": event["key"]}
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    return {
        "buckets": names,
        "env": {k: os.environ.get(k) for k in (
            "GREETING", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
            "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "_HANDLER", "LAMBDA_TASK_ROOT",
        )},
        "cwd": os.getcwd(),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
    }
"""
ERRORS = "class InvalidInputError(Exception):\n    pass\n"
FILES = {
    "app/main.py": HANDLER,
    "app/__init__.py": "",
    "helpers/__init__.py": "",
    "helpers/errors.py": ERRORS,
}


@pytest.fixture(scope="module")
def probe(make_function: Callable[..., str], aws_client: Callable[[str], Any]) -> str:
    aws_client("s3").create_bucket(Bucket="runtime-probe-bucket")
    return make_function(
        "runtime-probe",
        FILES,
        handler="app.main.handler",
        Timeout=15,  # generous: a burst of cold starts shares two CPUs
        MemorySize=256,
        Environment={"Variables": {"GREETING": "hello", "AWS_ENDPOINT_URL": "http://ignored.invalid"}},
    )


def invoke(aws_client: Callable[[str], Any], payload: dict[str, Any], **kwargs: Any) -> tuple[dict, Any]:
    response = aws_client("lambda").invoke(
        FunctionName="runtime-probe", Payload=json.dumps(payload).encode(), **kwargs
    )
    return response, json.loads(response["Payload"].read())


def test_success_env_context_and_callback_into_the_emulator(
    emulator: Emulator, aws_client: Callable[[str], Any], probe: str
) -> None:
    response, body = invoke(aws_client, {"hello": "world"}, LogType="Tail")
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert body["buckets"] == ["runtime-probe-bucket"]  # boto3 in the handler reached the emulator
    env = body["env"]
    assert env["GREETING"] == "hello"
    assert env["AWS_ENDPOINT_URL"] == emulator.endpoint_url
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "runtime-probe"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/runtime-probe"
    assert env["_HANDLER"] == "app.main.handler"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    context = body["context"]
    assert context["function_name"] == "runtime-probe"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == probe
    assert context["memory_limit_in_mb"] == "256"
    assert context["log_group_name"] == "/aws/lambda/runtime-probe"
    assert context["log_stream_name"] == env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert 0 < context["remaining"] <= 15000
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"START RequestId: {context['aws_request_id']} Version: $LATEST" in tail
    assert 'MARKER event {"hello": "world"}' in tail
    assert f"REPORT RequestId: {context['aws_request_id']}" in tail


def test_runs_the_uploaded_zip_and_picks_up_code_updates(
    aws_client: Callable[[str], Any], make_function: Callable[..., str]
) -> None:
    from emulator_helpers import zip_bytes

    make_function("runtime-versioned", {"index.py": "def handler(e, c):\n    return 'v1'\n"})
    lam = aws_client("lambda")
    assert json.loads(lam.invoke(FunctionName="runtime-versioned")["Payload"].read()) == "v1"
    lam.update_function_code(
        FunctionName="runtime-versioned",
        ZipFile=zip_bytes({"index.py": "def handler(e, c):\n    return 'v2'\n"}),
    )
    assert json.loads(lam.invoke(FunctionName="runtime-versioned")["Payload"].read()) == "v2"


def test_raised_error_has_lambda_shape(aws_client: Callable[[str], Any], probe: str) -> None:
    response, body = invoke(aws_client, {"action": "invalid"})
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "InvalidInputError"
    assert body["errorMessage"] == "key 'x' is not allowed"
    assert isinstance(body["stackTrace"], list)
    assert body["stackTrace"]
    assert "main.py" in body["stackTrace"][-1]

    response, body = invoke(aws_client, {"action": "crash"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "KeyError"

    response, body = invoke(aws_client, {"action": "exit"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]


def test_timeout_kills_the_process(
    emulator: Emulator, aws_client: Callable[[str], Any], make_function: Callable[..., str]
) -> None:
    make_function(
        "runtime-sleeper", {"index.py": "import time\ndef handler(e, c):\n    time.sleep(30)\n"}, Timeout=2
    )
    started = time.monotonic()
    response = aws_client("lambda").invoke(FunctionName="runtime-sleeper", Payload=b"{}")
    body = json.loads(response["Payload"].read())
    elapsed = time.monotonic() - started
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 2.00 seconds")
    assert elapsed < 10
    assert emulator.lambda_stats()["running_processes"] == 0


def test_concurrent_invocations_calling_back_into_the_emulator(
    aws_client: Callable[[str], Any], probe: str
) -> None:
    count = 12

    def put(index: int) -> dict[str, Any]:
        return invoke(aws_client, {"action": "put", "bucket": "runtime-probe-bucket", "key": f"k{index}"})[1]

    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(put, range(count)))
    assert sorted(r["put"] for r in results) == sorted(f"k{i}" for i in range(count))
    listed = aws_client("s3").list_objects_v2(Bucket="runtime-probe-bucket")["Contents"]
    assert {o["Key"] for o in listed} >= {f"k{i}" for i in range(count)}


def test_logs_go_to_cloudwatch(aws_client: Callable[[str], Any], probe: str) -> None:
    _, body = invoke(aws_client, {"log": "cloudwatch-check"})
    request_id = body["context"]["aws_request_id"]
    logs = aws_client("logs")
    events = logs.get_log_events(
        logGroupName="/aws/lambda/runtime-probe", logStreamName=body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    )["events"]
    messages = [e["message"] for e in events]
    # One stream per execution environment, as on Lambda: this invocation's lines are its last ones.
    start = messages.index(f"START RequestId: {request_id} Version: $LATEST")
    own = messages[start:]
    assert 'MARKER event {"log": "cloudwatch-check"}' in own
    assert f"END RequestId: {request_id}" in own
    assert own[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "Init Duration" not in own[-1]  # the environment was warm
    found = logs.filter_log_events(logGroupName="/aws/lambda/runtime-probe", filterPattern="Task timed out")
    assert isinstance(found["events"], list)


def test_event_invocation_returns_202_and_runs_in_the_background(
    emulator: Emulator, aws_client: Callable[[str], Any], probe: str
) -> None:
    response = aws_client("lambda").invoke(
        FunctionName="runtime-probe",
        InvocationType="Event",
        Payload=json.dumps({"action": "put", "bucket": "runtime-probe-bucket", "key": "async-key"}).encode(),
    )
    assert response["StatusCode"] == 202
    assert emulator.wait_for_async_invocations(30)
    aws_client("s3").head_object(Bucket="runtime-probe-bucket", Key="async-key")


S3_HANDLER = """
import json
from urllib.parse import unquote_plus

import boto3


def handler(event, context):
    record = event["Records"][0]
    key = unquote_plus(record["s3"]["object"]["key"])
    if key.startswith("bad/"):
        raise ValueError(f"rejected {key}")
    boto3.client("dynamodb").put_item(
        TableName="s3-events",
        Item={
            "Key": {"S": key},
            "Sequencer": {"S": record["s3"]["object"]["sequencer"]},
            "Event": {"S": json.dumps(event)},
        },
    )
"""


@pytest.fixture(scope="module")
def s3_pipeline(make_function: Callable[..., str], aws_client: Callable[[str], Any]) -> tuple[str, str]:
    """A bucket notifying a function (1 retry, OnFailure -> SQS) that records events in DynamoDB."""
    aws_client("dynamodb").create_table(
        TableName="s3-events",
        KeySchema=[{"AttributeName": "Key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = make_function("s3-consumer", {"index.py": S3_HANDLER}, Timeout=10)
    queue_url, queue_arn = make_queue(aws_client("sqs"), "s3-consumer-failures")
    aws_client("lambda").put_function_event_invoke_config(
        FunctionName="s3-consumer",
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="notifying-bucket")
    s3.put_bucket_notification_configuration(
        Bucket="notifying-bucket",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return arn, queue_url


def test_s3_notification_runs_the_uploaded_code(
    emulator: Emulator, aws_client: Callable[[str], Any], s3_pipeline: tuple[str, str]
) -> None:
    s3 = aws_client("s3")
    s3.put_object(Bucket="notifying-bucket", Key="in/report 2024.csv", Body=b"a,b\n")
    s3.put_object(Bucket="notifying-bucket", Key="in/second.csv", Body=b"a,b\n")
    assert emulator.wait_for_async_invocations(30)
    table = aws_client("dynamodb")
    first = table.get_item(TableName="s3-events", Key={"Key": {"S": "in/report 2024.csv"}})["Item"]
    second = table.get_item(TableName="s3-events", Key={"Key": {"S": "in/second.csv"}})["Item"]
    event = json.loads(first["Event"]["S"])
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3"
    assert record["s3"]["object"]["key"] == "in/report+2024.csv"  # form-URL-encoded like S3
    assert record["s3"]["bucket"]["name"] == "notifying-bucket"
    assert int(second["Sequencer"]["S"], 16) > int(first["Sequencer"]["S"], 16)


def test_burst_of_s3_notifications(
    emulator: Emulator, aws_client: Callable[[str], Any], s3_pipeline: tuple[str, str]
) -> None:
    count = 25
    s3 = aws_client("s3")

    def upload(index: int) -> int:
        response = s3.put_object(Bucket="notifying-bucket", Key=f"burst/{index:02d}.csv", Body=b"x")
        return int(response["ResponseMetadata"]["HTTPStatusCode"])

    with ThreadPoolExecutor(max_workers=10) as pool:
        assert set(pool.map(upload, range(count))) == {200}
    assert emulator.wait_for_async_invocations(120)
    items = aws_client("dynamodb").scan(TableName="s3-events")["Items"]
    assert {f"burst/{i:02d}.csv" for i in range(count)} <= {item["Key"]["S"] for item in items}


def test_s3_notification_failure_is_retried_then_sent_on_failure(
    emulator: Emulator, aws_client: Callable[[str], Any], s3_pipeline: tuple[str, str]
) -> None:
    arn, queue_url = s3_pipeline
    before = emulator.lambda_stats()["invocations"]
    # The handler raises, but PutObject itself succeeds: S3 invokes Lambda asynchronously.
    response = aws_client("s3").put_object(Bucket="notifying-bucket", Key="bad/file.csv", Body=b"x")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emulator.wait_for_async_invocations(30)
    assert emulator.lambda_stats()["invocations"] - before == 2  # first attempt + MaximumRetryAttempts=1
    messages = drain_queue(aws_client("sqs"), queue_url, expected=1)
    assert len(messages) == 1
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestContext"]["functionArn"] == f"{arn}:$LATEST"
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "bad/file.csv"
