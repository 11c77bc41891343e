"""API actions added to moto for the hashicorp/aws provider (5.x)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import make_queue

pytestmark = pytest.mark.emulator

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def test_validate_state_machine_definition(aws_client: Callable[[str], Any]) -> None:
    sfn = aws_client("stepfunctions")
    ok = sfn.validate_state_machine_definition(definition=DEFINITION, type="STANDARD")
    assert ok["result"] == "OK"
    assert ok["diagnostics"] == []

    bad = sfn.validate_state_machine_definition(definition='{"StartAt": "Missing", "States": {}}')
    assert bad["result"] == "FAIL"
    assert bad["diagnostics"][0]["severity"] == "ERROR"
    assert bad["diagnostics"][0]["code"] == "SCHEMA_VALIDATION_FAILED"

    garbage = sfn.validate_state_machine_definition(definition="not json")
    assert garbage["result"] == "FAIL"


def test_list_state_machine_versions_and_describe_fields(
    aws_client: Callable[[str], Any], lambda_role: str
) -> None:
    sfn = aws_client("stepfunctions")
    plain = sfn.create_state_machine(
        name="api-plain",
        definition=DEFINITION,
        roleArn=lambda_role,
        loggingConfiguration={"level": "OFF", "includeExecutionData": False},
        tracingConfiguration={"enabled": False},
    )["stateMachineArn"]
    assert sfn.list_state_machine_versions(stateMachineArn=plain)["stateMachineVersions"] == []

    published = sfn.create_state_machine(
        name="api-published", definition=DEFINITION, roleArn=lambda_role, publish=True
    )
    versions = sfn.list_state_machine_versions(stateMachineArn=published["stateMachineArn"])[
        "stateMachineVersions"
    ]
    assert [v["stateMachineVersionArn"] for v in versions] == [published["stateMachineVersionArn"]]

    described = sfn.describe_state_machine(stateMachineArn=plain)
    assert described["revisionId"]
    assert described["loggingConfiguration"]["level"] == "OFF"
    assert described["tracingConfiguration"] == {"enabled": False}
    assert described["status"] == "ACTIVE"
    sfn.update_state_machine(
        stateMachineArn=plain,
        definition=json.dumps({"StartAt": "X", "States": {"X": {"Type": "Pass", "End": True}}}),
    )
    assert sfn.describe_state_machine(stateMachineArn=plain)["revisionId"] != described["revisionId"]

    with pytest.raises(ClientError) as missing:
        sfn.list_state_machine_versions(stateMachineArn=plain.replace("api-plain", "nope"))
    assert missing.value.response["Error"]["Code"] == "StateMachineDoesNotExist"


@pytest.fixture(scope="module")
def function(make_function: Callable[..., str]) -> str:
    make_function(
        "api-function",
        {"index.py": "def handler(e, c):\n    return e\n"},
        DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:123456789012:api-dlq"},
        TracingConfig={"Mode": "Active"},
    )
    return "api-function"


def test_event_invoke_config_put_update_get(aws_client: Callable[[str], Any], function: str) -> None:
    lam = aws_client("lambda")
    _, queue_arn = make_queue(aws_client("sqs"), "api-on-failure")
    lam.put_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=2)
    lam.put_function_event_invoke_config(
        FunctionName=function,
        MaximumRetryAttempts=0,
        MaximumEventAgeInSeconds=600,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    config = lam.get_function_event_invoke_config(FunctionName=function)
    assert config["MaximumRetryAttempts"] == 0  # the second put replaced the first
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn

    lam.update_function_event_invoke_config(FunctionName=function, MaximumRetryAttempts=1)
    config = lam.get_function_event_invoke_config(FunctionName=function)
    assert config["MaximumRetryAttempts"] == 1
    assert config["MaximumEventAgeInSeconds"] == 600  # update merges
    assert (
        len(lam.list_function_event_invoke_configs(FunctionName=function)["FunctionEventInvokeConfigs"]) == 1
    )


def test_lambda_configuration_reads_of_the_5x_provider(
    aws_client: Callable[[str], Any], function: str
) -> None:
    lam = aws_client("lambda")
    configuration = lam.get_function(FunctionName=function)["Configuration"]
    assert configuration["DeadLetterConfig"] == {"TargetArn": "arn:aws:sqs:us-east-1:123456789012:api-dlq"}
    assert configuration["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{function}"}
    assert configuration["TracingConfig"] == {"Mode": "Active"}

    lam.update_function_configuration(
        FunctionName=function, KMSKeyArn="arn:aws:kms:us-east-1:123456789012:key/abc", DeadLetterConfig={}
    )
    configuration = lam.get_function_configuration(FunctionName=function)
    assert configuration["KMSKeyArn"] == "arn:aws:kms:us-east-1:123456789012:key/abc"
    assert "DeadLetterConfig" not in configuration

    signing = lam.get_function_code_signing_config(FunctionName=function)
    assert signing["FunctionName"] == function
    assert not signing.get("CodeSigningConfigArn")

    runtime = lam.get_runtime_management_config(FunctionName=function)
    assert runtime["UpdateRuntimeOn"] == "Auto"
    lam.put_runtime_management_config(FunctionName=function, UpdateRuntimeOn="FunctionUpdate")
    assert lam.get_runtime_management_config(FunctionName=function)["UpdateRuntimeOn"] == "FunctionUpdate"

    assert lam.get_function_recursion_config(FunctionName=function)["RecursiveLoop"] == "Terminate"
    lam.put_function_recursion_config(FunctionName=function, RecursiveLoop="Allow")
    assert lam.get_function_recursion_config(FunctionName=function)["RecursiveLoop"] == "Allow"

    assert (
        lam.list_provisioned_concurrency_configs(FunctionName=function)["ProvisionedConcurrencyConfigs"] == []
    )
    with pytest.raises(ClientError) as missing:
        lam.get_provisioned_concurrency_config(FunctionName=function, Qualifier="1")
    assert missing.value.response["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert lam.get_account_settings()["AccountUsage"]["FunctionCount"] >= 1

    with pytest.raises(ClientError) as unknown:
        lam.get_runtime_management_config(FunctionName="no-such-function")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"
