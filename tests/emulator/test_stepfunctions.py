"""Step Functions on the emulator: Retry/Catch on Lambda error types, SNS publish, fault injection,
EXPRESS machines (ARNs, no name idempotency, the API actions they refuse) and execution logs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from emulator_helpers import REGION, drain_queue, make_queue, wait_for_execution

from emulator import Emulator
from emulator.stepfunctions_api import running_executions

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


# ---------------------------------------------------------------- EXPRESS machines, execution logs

ACCOUNT = "123456789012"
RECORD_KEYS = {
    "id",
    "type",
    "details",
    "previous_event_id",
    "event_timestamp",
    "execution_arn",
    "redrive_count",
}
STREAM = re.compile(r"^states/(?P<machine>[^/]+)/\d{4}-\d\d-\d\d-\d\d-\d\d/[0-9a-f]{8}$")
VALIDATION_STREAM = "log_stream_created_by_aws_to_validate_log_delivery_subscriptions"


def express_arn_pattern(machine: str, name: str) -> re.Pattern[str]:
    return re.compile(rf"^arn:aws:states:{REGION}:{ACCOUNT}:express:{machine}:{name}:[0-9a-f-]{{36}}$")


def log_group(aws_client: Callable[[str], Any], name: str) -> str:
    """A new log group; its ARN as hashicorp/aws sends it in loggingConfiguration (``...:*``)."""
    aws_client("logs").create_log_group(logGroupName=name)
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"


def logging_config(group_arn: str, level: str = "ALL", include_data: bool = False) -> dict[str, Any]:
    return {
        "level": level,
        "includeExecutionData": include_data,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}],
    }


def log_records(
    aws_client: Callable[[str], Any],
    group: str,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The execution records in the group (and every stream's name), once ``until`` holds."""
    logs = aws_client("logs")
    deadline = time.monotonic() + timeout
    while True:
        streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
        records = [
            json.loads(event["message"])
            for stream in streams
            for event in logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)[
                "events"
            ]
        ]
        if until(records):
            return records, streams
        if time.monotonic() > deadline:
            raise AssertionError(f"log group {group}: condition not met; records: {records}")
        time.sleep(0.2)


def of_type(records: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == event_type]


def parser_execution_types(machine_arn: str) -> list[str]:
    """The type moto's interpreter runs each execution of the machine as (its Execution.sm_type)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    machine = stepfunctions_parser_backends[ACCOUNT][REGION].describe_state_machine(machine_arn)
    return [str(getattr(e.sm_type, "value", e.sm_type)) for e in machine.executions]


PASS_DEFINITION = json.dumps(
    {
        "StartAt": "Stamp",
        "States": {"Stamp": {"Type": "Pass", "Parameters": {"id.$": "$$.Execution.Id"}, "End": True}},
    }
)
WAIT_DEFINITION = json.dumps(
    {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1, "End": True}}}
)
FAIL_OR_SUCCEED = json.dumps(
    {
        "StartAt": "Check",
        "States": {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Fail"}],
                "Default": "Done",
            },
            "Fail": {"Type": "Fail", "Error": "Rejected", "Cause": "asked to fail"},
            "Done": {"Type": "Succeed"},
        },
    }
)


def test_express_executions_have_express_arns_and_the_same_name_runs_twice(
    emulator: Emulator, aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    """Both executions of one name run (the Lambda twice) and are logged, each under its own ARN."""
    sfn = aws_client("stepfunctions")
    group_arn = log_group(aws_client, "/aws/vendedlogs/states/express-twice")
    definition = json.dumps(
        {
            "StartAt": "Process",
            "States": {
                "Process": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": setup["function"], "Payload.$": "$"},
                    "ResultSelector": {"key.$": "$.Payload.key", "execution.$": "$$.Execution.Id"},
                    "End": True,
                }
            },
        }
    )
    machine = sfn.create_state_machine(
        name="express-twice",
        definition=definition,
        roleArn=setup["role"],
        type="EXPRESS",
        loggingConfiguration=logging_config(group_arn, include_data=True),
    )["stateMachineArn"]
    assert sfn.describe_state_machine(stateMachineArn=machine)["type"] == "EXPRESS"

    payload = json.dumps({"key": "twice.csv"})
    first = sfn.start_execution(stateMachineArn=machine, name="same-name", input=payload)["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine, name="same-name", input=payload)["executionArn"]

    assert first != second
    for arn in (first, second):
        assert express_arn_pattern("express-twice", "same-name").match(arn), arn
    records, streams = log_records(
        aws_client,
        "/aws/vendedlogs/states/express-twice",
        lambda r: len(of_type(r, "ExecutionSucceeded")) == 2,
    )
    assert {r["execution_arn"] for r in of_type(records, "ExecutionStarted")} == {first, second}
    assert len(of_type(records, "ExecutionStarted")) == 2
    assert len(of_type(records, "TaskSucceeded")) == 2  # the Lambda ran for each of them
    for succeeded in of_type(records, "ExecutionSucceeded"):
        output = json.loads(succeeded["details"]["output"])
        assert output == {"key": "twice.csv", "execution": succeeded["execution_arn"]}  # $$.Execution.Id
    for started in of_type(records, "ExecutionStarted"):
        assert json.loads(started["details"]["input"]) == {"key": "twice.csv"}
        assert started["details"]["roleArn"] == setup["role"]
    assert parser_execution_types(machine) == ["EXPRESS", "EXPRESS"]
    assert VALIDATION_STREAM in streams
    assert [STREAM.match(s)["machine"] for s in streams if s != VALIDATION_STREAM] == ["express-twice"]


def test_execution_log_records_have_aws_shape_and_omit_data_unless_included(
    aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    sfn = aws_client("stepfunctions")
    group_arn = log_group(aws_client, "/aws/vendedlogs/states/express-no-data")
    machine = sfn.create_state_machine(
        name="express-no-data",
        definition=PASS_DEFINITION,
        roleArn=setup["role"],
        type="EXPRESS",
        loggingConfiguration=logging_config(group_arn, include_data=False),
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"secret": "s3cr3t"}))["executionArn"]

    records, _ = log_records(
        aws_client, "/aws/vendedlogs/states/express-no-data", lambda r: bool(of_type(r, "ExecutionSucceeded"))
    )
    assert [r["type"] for r in records] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    for number, record in enumerate(records, start=1):
        assert set(record) == RECORD_KEYS
        assert record["id"] == str(number)
        assert record["execution_arn"] == arn
        assert record["redrive_count"] == "0"
        assert record["event_timestamp"].isdigit()
        assert abs(int(record["event_timestamp"]) / 1000 - time.time()) < 60
        assert not {"input", "inputDetails", "output", "outputDetails"} & set(record["details"])
    assert records[0]["details"] == {"roleArn": setup["role"]}
    assert records[0]["previous_event_id"] == "0"
    assert records[1]["details"] == {"name": "Stamp"}
    assert records[3]["details"] == {}
    assert "s3cr3t" not in json.dumps(records)


@pytest.mark.parametrize(
    ("level", "logged"),
    [("ERROR", ["FailStateEntered", "ExecutionFailed"]), ("FATAL", ["ExecutionFailed"])],
)
def test_a_standard_machine_logs_only_the_events_of_its_level(
    aws_client: Callable[[str], Any], setup: dict[str, str], level: str, logged: list[str]
) -> None:
    sfn = aws_client("stepfunctions")
    name = f"standard-{level.lower()}"
    group_arn = log_group(aws_client, f"/aws/vendedlogs/states/{name}")
    machine = sfn.create_state_machine(
        name=name,
        definition=FAIL_OR_SUCCEED,
        roleArn=setup["role"],
        loggingConfiguration=logging_config(group_arn, level=level, include_data=True),
    )["stateMachineArn"]
    succeeded = sfn.start_execution(stateMachineArn=machine, name="ok", input='{"fail": false}')[
        "executionArn"
    ]
    assert wait_for_execution(sfn, succeeded)["status"] == "SUCCEEDED"
    failed = sfn.start_execution(stateMachineArn=machine, name="ko", input='{"fail": true}')["executionArn"]
    assert wait_for_execution(sfn, failed)["status"] == "FAILED"

    records, streams = log_records(
        aws_client, f"/aws/vendedlogs/states/{name}", lambda r: bool(of_type(r, "ExecutionFailed"))
    )
    assert [r["type"] for r in records] == logged
    assert {r["execution_arn"] for r in records} == {failed}
    assert failed == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:ko"
    assert of_type(records, "ExecutionFailed")[0]["details"] == {
        "error": "Rejected",
        "cause": "asked to fail",
    }
    assert [STREAM.match(s)["machine"] for s in streams if s != VALIDATION_STREAM] == [name]


def test_express_executions_are_not_listed_described_stopped_or_their_history_read(
    aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    sfn = aws_client("stepfunctions")
    group_arn = log_group(aws_client, "/aws/vendedlogs/states/express-api")
    machine = sfn.create_state_machine(
        name="express-api",
        definition=WAIT_DEFINITION,
        roleArn=setup["role"],
        type="EXPRESS",
        loggingConfiguration=logging_config(group_arn),
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="waiting")["executionArn"]
    assert running_executions() >= 1  # tracked while it runs, though no API shows it

    with pytest.raises(ClientError) as listed:
        sfn.list_executions(stateMachineArn=machine)
    assert listed.value.response["Error"] == {
        "Code": "StateMachineTypeNotSupported",
        "Message": "This operation is not supported by this type of state machine",
    }
    assert listed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    unknown = arn.rsplit(":", 1)[0] + ":00000000-0000-0000-0000-000000000000"
    calls = [
        lambda target: sfn.describe_execution(executionArn=target),
        lambda target: sfn.get_execution_history(executionArn=target),
        lambda target: sfn.stop_execution(executionArn=target),
    ]
    for call in calls:
        for target in (arn, unknown):
            with pytest.raises(ClientError) as rejected:
                call(target)
            assert rejected.value.response["Error"] == {
                "Code": "InvalidArn",
                "Message": "Invalid Arn: 'Resource type not valid in this context: express'",
            }
            assert rejected.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    records, _ = log_records(
        aws_client, "/aws/vendedlogs/states/express-api", lambda r: bool(of_type(r, "ExecutionSucceeded"))
    )
    assert {r["execution_arn"] for r in records} == {arn}  # StopExecution did not stop it
    standard = sfn.create_state_machine(
        name="standard-api", definition=WAIT_DEFINITION, roleArn=setup["role"]
    )
    sfn.start_execution(stateMachineArn=standard["stateMachineArn"], name="listed")
    assert [
        e["name"] for e in sfn.list_executions(stateMachineArn=standard["stateMachineArn"])["executions"]
    ] == ["listed"]


def test_a_standard_execution_name_stays_idempotent(
    aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    sfn = aws_client("stepfunctions")
    machine = sfn.create_state_machine(
        name="standard-names", definition=WAIT_DEFINITION, roleArn=setup["role"]
    )["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=machine, name="dup", input='{"a": 1}')["executionArn"]
    assert running_executions() >= 1
    again = sfn.start_execution(stateMachineArn=machine, name="dup", input='{"a": 1}')["executionArn"]
    assert again == first == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:standard-names:dup"
    with pytest.raises(ClientError) as other_input:
        sfn.start_execution(stateMachineArn=machine, name="dup", input='{"a": 2}')
    assert other_input.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert wait_for_execution(sfn, first)["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as finished:
        sfn.start_execution(stateMachineArn=machine, name="dup", input='{"a": 1}')
    assert finished.value.response["Error"]["Code"] == "ExecutionAlreadyExists"
    assert parser_execution_types(machine) == ["STANDARD"]


def test_a_published_express_version_runs_as_express(
    aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    sfn = aws_client("stepfunctions")
    group_arn = log_group(aws_client, "/aws/vendedlogs/states/express-version")
    created = sfn.create_state_machine(
        name="express-version",
        definition=PASS_DEFINITION,
        roleArn=setup["role"],
        type="EXPRESS",
        publish=True,
        loggingConfiguration=logging_config(group_arn, include_data=True),
    )
    arn = sfn.start_execution(stateMachineArn=created["stateMachineVersionArn"], name="v1")["executionArn"]
    assert express_arn_pattern("express-version", "v1").match(arn), arn
    records, _ = log_records(
        aws_client, "/aws/vendedlogs/states/express-version", lambda r: bool(of_type(r, "ExecutionSucceeded"))
    )
    assert json.loads(of_type(records, "ExecutionSucceeded")[0]["details"]["output"]) == {"id": arn}


def test_a_missing_log_group_loses_the_records_not_the_execution(
    aws_client: Callable[[str], Any], setup: dict[str, str]
) -> None:
    sfn = aws_client("stepfunctions")
    missing = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/vendedlogs/states/never-created:*"
    machine = sfn.create_state_machine(
        name="logs-nowhere",
        definition=PASS_DEFINITION,
        roleArn=setup["role"],
        loggingConfiguration=logging_config(missing),
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    assert wait_for_execution(sfn, arn)["status"] == "SUCCEEDED"


def test_start_execution_throttle_applies_to_express_machines(
    emulator: Emulator, setup: dict[str, str]
) -> None:
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=emulator.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    machine = sfn.create_state_machine(
        name="express-throttled", definition=PASS_DEFINITION, roleArn=setup["role"], type="EXPRESS"
    )["stateMachineArn"]
    emulator.set_throttle("AWSStepFunctions.StartExecution", capacity=1, refill_per_second=0.001)
    try:
        assert ":express:express-throttled:" in sfn.start_execution(stateMachineArn=machine)["executionArn"]
        with pytest.raises(ClientError) as throttled:
            sfn.start_execution(stateMachineArn=machine)
    finally:
        emulator.clear_throttles()
    assert throttled.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}


def test_validate_definition_applies_express_rules(aws_client: Callable[[str], Any]) -> None:
    sfn = aws_client("stepfunctions")
    callback = json.dumps(
        {
            "StartAt": "Ask",
            "States": {
                "Ask": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": "q", "MessageBody": {"token.$": "$$.Task.Token"}},
                    "End": True,
                }
            },
        }
    )
    assert sfn.validate_state_machine_definition(definition=callback, type="STANDARD")["result"] == "OK"
    assert sfn.validate_state_machine_definition(definition=callback, type="EXPRESS")["result"] == "FAIL"
    assert sfn.validate_state_machine_definition(definition=PASS_DEFINITION, type="EXPRESS")["result"] == "OK"
