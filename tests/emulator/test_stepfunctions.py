"""Step Functions on the emulator: Retry/Catch on Lambda error types, SNS publish, fault injection."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from emulator_helpers import drain_queue, make_queue, wait_for_execution

from emulator import Emulator

pytestmark = pytest.mark.emulator

HANDLER = """
import os

import boto3


class InvalidInputError(Exception):
    pass


def handler(event, context):
    if event.get("fail") == "invalid":
        raise InvalidInputError(f"invalid key {event.get('key')}")
    if event.get("fail") == "transient":
        raise ConnectionError("temporary failure")
    if event.get("write"):
        boto3.client("dynamodb").put_item(
            TableName=os.environ["TABLE_NAME"], Item={"Filename": {"S": event["write"]}}
        )
    return {"ok": True, "key": event.get("key")}
"""

RETRY = [
    {"ErrorEquals": ["InvalidInputError"], "MaxAttempts": 0},
    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0},
]


def definition(function_arn: str, topic_arn: str, message: dict[str, Any], retry: list | None = None) -> str:
    return json.dumps(
        {
            "StartAt": "Process",
            "States": {
                "Process": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                    "OutputPath": "$.Payload",
                    "Retry": RETRY if retry is None else retry,
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Alert"}],
                    "End": True,
                },
                "Alert": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn": topic_arn, **message},
                    "Next": "Failed",
                },
                "Failed": {"Type": "Fail", "Error": "ProcessingFailed", "Cause": "see the alert"},
            },
        }
    )


@pytest.fixture(scope="module")
def setup(
    make_function: Callable[..., str], aws_client: Callable[[str], Any], lambda_role: str
) -> dict[str, str]:
    aws_client("dynamodb").create_table(
        TableName="sfn-files",
        KeySchema=[{"AttributeName": "Filename", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Filename", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    function_arn = make_function(
        "sfn-worker", {"index.py": HANDLER}, Environment={"Variables": {"TABLE_NAME": "sfn-files"}}
    )
    sns = aws_client("sns")
    topic_arn = sns.create_topic(Name="sfn-alerts")["TopicArn"]
    queue_url, queue_arn = make_queue(aws_client("sqs"), "sfn-alerts-inbox")
    sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    return {"function": function_arn, "topic": topic_arn, "queue": queue_url, "role": lambda_role}


def run(aws_client: Callable[[str], Any], machine_arn: str, name: str, payload: dict) -> tuple[dict, list]:
    sfn = aws_client("stepfunctions")
    execution_arn = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))[
        "executionArn"
    ]
    description = wait_for_execution(sfn, execution_arn)
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return description, events


def lambda_attempts(events: list[dict[str, Any]]) -> int:
    return sum(
        1
        for e in events
        if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled")
        and e.get("taskScheduledEventDetails", {}).get("resourceType", "lambda") == "lambda"
    )


def test_retry_and_catch_match_the_handler_error_type(
    emulator: Emulator, aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    message = {"Message": {"error.$": "$.error.Error", "cause.$": "$.error.Cause", "key.$": "$.key"}}
    machine = aws_client("stepfunctions").create_state_machine(
        name="retry-catch",
        definition=definition(setup["function"], setup["topic"], message),
        roleArn=setup["role"],
    )["stateMachineArn"]

    invalid, invalid_events = run(aws_client, machine, "invalid-input", {"fail": "invalid", "key": "a.csv"})
    transient, transient_events = run(aws_client, machine, "transient", {"fail": "transient", "key": "b.csv"})

    assert invalid["status"] == "FAILED"
    assert invalid["error"] == "ProcessingFailed"
    assert lambda_attempts(invalid_events) == 1  # InvalidInputError: MaxAttempts 0, not retried
    assert transient["status"] == "FAILED"
    assert lambda_attempts(transient_events) == 4  # States.ALL: 1 attempt + 3 retries
    failed = [e["taskFailedEventDetails"]["error"] for e in transient_events if e["type"] == "TaskFailed"]
    assert failed == ["ConnectionError"] * 4

    alerts = [json.loads(m["Body"]) for m in drain_queue(aws_client("sqs"), setup["queue"], expected=2)]
    by_key = {alert["key"]: alert for alert in alerts}
    assert by_key["a.csv"]["error"] == "InvalidInputError"
    assert json.loads(by_key["a.csv"]["cause"])["errorMessage"] == "invalid key a.csv"
    assert by_key["b.csv"]["error"] == "ConnectionError"


@pytest.mark.parametrize(
    ("form", "message", "expected_body"),
    [
        # A JSON object as Message is serialized by the interpreter, as on AWS.
        ("object", {"Message": {"error.$": "$.error.Error"}}, '{"error": "InvalidInputError"}'),
        ("json-to-string", {"Message.$": "States.JsonToString($.error)"}, None),
        ("format", {"Message.$": "States.Format('failed: {}', $.error.Error)"}, "failed: InvalidInputError"),
        ("path-to-string", {"Message.$": "$.error.Error"}, "InvalidInputError"),
    ],
)
def test_sns_publish_message_forms(
    aws_client: Callable[[str], Any],
    setup: dict[str, str],
    form: str,
    message: dict,
    expected_body: str | None,
) -> None:
    machine = aws_client("stepfunctions").create_state_machine(
        name=f"message-{form}",
        definition=definition(setup["function"], setup["topic"], message),
        roleArn=setup["role"],
    )["stateMachineArn"]
    description, _ = run(aws_client, machine, f"form-{form}", {"fail": "invalid"})
    assert description["status"] == "FAILED"
    [delivered] = drain_queue(aws_client("sqs"), setup["queue"], expected=1)
    if expected_body is None:  # States.JsonToString($.error): compact JSON of the Catch result
        assert json.loads(delivered["Body"])["Error"] == "InvalidInputError"
    else:
        assert delivered["Body"] == expected_body


def test_injected_write_fault_is_retried_by_step_functions(
    emulator: Emulator, aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    retry = [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0}]
    machine = aws_client("stepfunctions").create_state_machine(
        name="fault-retry",
        definition=definition(setup["function"], setup["topic"], {"Message": "x"}, retry=retry),
        roleArn=setup["role"],
    )["stateMachineArn"]
    rule = emulator.add_fault("DynamoDB_20120810.PutItem", match="poisoned.csv", times=2)
    try:
        description, events = run(aws_client, machine, "fault-retry", {"write": "poisoned.csv"})
    finally:
        emulator.clear_faults()
    assert description["status"] == "SUCCEEDED", description
    assert lambda_attempts(events) == 3  # two injected failures, then success
    failures = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failures] == ["ClientError", "ClientError"]
    assert "InjectedFault" in failures[0]["cause"]
    item = aws_client("dynamodb").get_item(TableName="sfn-files", Key={"Filename": {"S": "poisoned.csv"}})
    assert "Item" in item
    assert rule


def test_start_execution_without_a_name(aws_client: Callable[[str], Any], setup: dict[str, str]) -> None:
    sfn = aws_client("stepfunctions")
    machine = sfn.create_state_machine(
        name="unnamed-executions",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=setup["role"],
    )["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    assert first != second
    assert not first.endswith(":None")
    assert wait_for_execution(sfn, second)["status"] == "SUCCEEDED"
