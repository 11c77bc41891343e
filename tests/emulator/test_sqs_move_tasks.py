"""Dead-letter queue redrive with SQS message move tasks (moto 5.2.5 has none), through boto3 and
the AWS CLI, with the errors AWS answers."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import drain_queue, make_queue

from emulator import Emulator

pytestmark = pytest.mark.emulator
AWS_CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "aws"


def with_dlq(sqs: Any, name: str) -> tuple[str, str, str, str]:
    """(queue url, queue arn, dlq url, dlq arn); maxReceiveCount 1."""
    dlq_url, dlq_arn = make_queue(sqs, f"{name}-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn, dlq_url, dlq_arn


def dead_letter(sqs: Any, url: str, count: int) -> None:
    """Send ``count`` messages and fail each once, so that the next receive moves them to the DLQ."""
    for n in range(count):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"n": n}),
            MessageAttributes={"origin": {"DataType": "String", "StringValue": f"m{n}"}},
        )
    received = 0
    while received < count:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        received += len(batch.get("Messages", []))
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


def latest_task(sqs: Any, dlq_arn: str, status: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        if task["Status"] == status:
            return dict(task)
        if time.monotonic() > deadline:
            raise AssertionError(f"task still {task['Status']}, not {status}")
        time.sleep(0.1)


def error_code(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_a_move_task_redrives_the_dlq_to_the_source_queue(aws_client: Callable[[str], Any]) -> None:
    sqs = aws_client("sqs")
    url, _arn, dlq_url, dlq_arn = with_dlq(sqs, "redriven")
    dead_letter(sqs, url, 3)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert json.loads(base64.b64decode(handle))["sourceArn"] == dlq_arn
    task = latest_task(sqs, dlq_arn, "COMPLETED")
    assert task["ApproximateNumberOfMessagesMoved"] == 3
    assert task["ApproximateNumberOfMessagesToMove"] == 3
    assert task["SourceArn"] == dlq_arn
    assert "DestinationArn" not in task
    assert "TaskHandle" not in task, "only a RUNNING task shows its handle"
    assert isinstance(task["StartedTimestamp"], int)
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert sorted(json.loads(m["Body"])["n"] for m in messages) == [0, 1, 2]
    for message in messages:
        n = json.loads(message["Body"])["n"]
        assert message["MessageAttributes"]["origin"]["StringValue"] == f"m{n}"
        assert message["Attributes"]["ApproximateReceiveCount"] == "1", "the receive count starts again"
    assert drain_queue(sqs, dlq_url, expected=1, timeout=1) == []


def test_a_move_task_with_a_destination_and_a_rate(aws_client: Callable[[str], Any]) -> None:
    sqs = aws_client("sqs")
    url, _arn, _dlq_url, dlq_arn = with_dlq(sqs, "redirected")
    other_url, other_arn = make_queue(sqs, "redirected-elsewhere")
    dead_letter(sqs, url, 2)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=other_arn, MaxNumberOfMessagesPerSecond=50)
    task = latest_task(sqs, dlq_arn, "COMPLETED")
    assert (task["DestinationArn"], task["MaxNumberOfMessagesPerSecond"]) == (other_arn, 50)
    assert len(drain_queue(sqs, other_url, expected=2, timeout=3)) == 2


def test_cancel_and_one_running_task_per_source(aws_client: Callable[[str], Any]) -> None:
    sqs = aws_client("sqs")
    url, _arn, _dlq_url, dlq_arn = with_dlq(sqs, "cancelled")
    dead_letter(sqs, url, 5)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    running = latest_task(sqs, dlq_arn, "RUNNING")
    assert running["TaskHandle"] == handle
    code, message = error_code(lambda: sqs.start_message_move_task(SourceArn=dlq_arn))
    assert code == "InvalidParameterValue"
    assert message.startswith("There is already a task running.")
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    cancelled = latest_task(sqs, dlq_arn, "CANCELLED")
    assert cancelled["ApproximateNumberOfMessagesMoved"] >= moved
    assert cancelled["ApproximateNumberOfMessagesMoved"] < 5
    assert (
        error_code(lambda: sqs.cancel_message_move_task(TaskHandle=handle))[0] == "ResourceNotFoundException"
    )


def test_errors_are_aws_errors(aws_client: Callable[[str], Any]) -> None:
    sqs = aws_client("sqs")
    _url, arn, _dlq_url, dlq_arn = with_dlq(sqs, "refused")
    assert error_code(lambda: sqs.start_message_move_task(SourceArn=arn)) == (
        "InvalidParameterValue",
        "Source queue must be configured as a Dead Letter Queue.",
    )
    missing = arn.replace("refused", "no-such-queue")
    assert (
        error_code(lambda: sqs.start_message_move_task(SourceArn=missing))[0] == "ResourceNotFoundException"
    )
    assert error_code(lambda: sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=missing)) == (
        "ResourceNotFoundException",
        "The resource that you specified for the DestinationArn parameter doesn't exist.",
    )
    assert error_code(
        lambda: sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)
    )[0] == ("InvalidParameterValue")
    assert error_code(lambda: sqs.cancel_message_move_task(TaskHandle="not-a-handle")) == (
        "InvalidParameterValue",
        "Value for parameter TaskHandle is invalid.",
    )
    unknown = base64.b64encode(json.dumps({"taskId": "x", "sourceArn": dlq_arn}).encode()).decode()
    assert error_code(lambda: sqs.cancel_message_move_task(TaskHandle=unknown)) == (
        "ResourceNotFoundException",
        "Task does not exist.",
    )
    assert sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"] == []


@pytest.mark.skipif(not AWS_CLI.exists(), reason="the AWS CLI is not in .venv")
def test_the_aws_cli_starts_a_move_task(aws_client: Callable[[str], Any], emulator: Emulator) -> None:
    sqs = aws_client("sqs")
    url, _arn, _dlq_url, dlq_arn = with_dlq(sqs, "cli-redrive")
    dead_letter(sqs, url, 1)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    command = [str(AWS_CLI), "sqs", "start-message-move-task", "--source-arn", dlq_arn]
    command += ["--endpoint-url", emulator.endpoint_url, "--output", "json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["TaskHandle"]
    assert latest_task(sqs, dlq_arn, "COMPLETED")["ApproximateNumberOfMessagesMoved"] == 1
