"""The trigger -> state machine -> writer contract is declared once, and all three follow it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devkit.lambda_harness import REPO_ROOT, create_metadata_table, metadata_item

if TYPE_CHECKING:
    from tests.conftest import FakeLambdaContext

REGION = "us-east-1"
BUCKET = "uploads-bucket"
TABLE = "ingestion-metadata"
STATE_MACHINE_TEMPLATE = REPO_ROOT / "state_machine.asl.json"
STEP_FUNCTIONS_TF = REPO_ROOT / "step_functions.tf"


def render_state_machine(template: Path = STATE_MACHINE_TEMPLATE) -> dict[str, Any]:
    """The definition with Terraform's templatefile placeholders filled with stand-ins."""
    text = re.sub(r"\$\{jsonencode\([^)]*\)\}", '["InvalidInputError"]', template.read_text())
    text = re.sub(r"\$\{[A-Za-z_]+\}", "1", text)
    return json.loads(text)


def json_paths(value: object) -> list[str]:
    """Every ``$.<field>`` reference (first segment) in a Parameters block."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith(".$") and isinstance(item, str) and item.startswith("$."):
                found.append(item[2:].split(".")[0])
            else:
                found.extend(json_paths(item))
    return found


# --- the declaration ---------------------------------------------------------------------------


def test_every_field_has_exactly_one_validation_rule(contract: ModuleType) -> None:
    assert list(contract.FIELD_RULES) == list(contract.ExecutionInput.__annotations__)


def test_the_write_request_carries_every_field_and_the_execution_id(contract: ModuleType) -> None:
    fields = list(contract.WriteRequest.__dataclass_fields__)

    assert fields == [*contract.ExecutionInput.__annotations__, "execution_id"]


def test_a_valid_input_has_no_problem_and_every_problem_is_named(contract: ModuleType) -> None:
    valid = {
        "bucket": BUCKET,
        "key": "a.csv",
        "size": None,
        "etag": None,
        "version_id": None,
        "sequencer": None,
        "event_time": "2026-01-15T10:20:30.123Z",
        "event_name": "ObjectCreated:Put",
    }

    assert contract.execution_input_problems(valid) == []
    assert contract.execution_input_problems({}) == [
        "file.bucket must be a non-empty string (got null)",
        "file.key must be a string (got null)",
        "file.event_time must be an ISO 8601 string (got null)",
        "file.event_name must be a non-empty string (got null)",
    ]


# --- the state machine ---------------------------------------------------------------------------


def test_the_state_machine_passes_the_whole_trigger_record_as_file(contract: ModuleType) -> None:
    definition = render_state_machine()
    write = definition["States"][definition["StartAt"]]

    # The first state is the writer's task, and nothing narrows the execution input before it
    assert write["Parameters"]["FunctionName"] == "1"
    assert not {"InputPath", "ItemsPath"} & set(write)
    assert write["Parameters"]["Payload"] == {"file.$": "$", "execution_id.$": "$$.Execution.Id"}
    payload_fields = {name.removesuffix(".$") for name in write["Parameters"]["Payload"]}
    assert payload_fields == set(contract.WriterEvent.__annotations__)


def test_the_failure_alert_reads_only_contract_fields(contract: ModuleType) -> None:
    definition = render_state_machine()
    message = definition["States"]["NotifyFailure"]["Parameters"]["Message"]

    read = set(json_paths(message)) - {"error"}  # the task's caught error, added by ResultPath

    assert read
    assert read <= set(contract.ExecutionInput.__annotations__)


def test_the_state_machine_never_retries_the_contract_error(contract: ModuleType) -> None:
    # step_functions.tf fills ${jsonencode(non_retryable_errors)} with this list
    [line] = [line for line in STEP_FUNCTIONS_TF.read_text().splitlines() if "non_retryable_errors" in line]

    assert f'"{contract.InvalidInputError.__name__}"' in line


# --- the trigger emits it, the writer accepts it -------------------------------------------------


def s3_record(raw_key: str) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-01-15T10:20:30.123Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {"key": raw_key, "size": 7, "eTag": "etag", "sequencer": "0A"},
        },
    }


def test_what_the_trigger_emits_is_exactly_what_the_writer_reads(
    load_function: Callable[..., ModuleType], contract: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    # Given the trigger and the writer, each loaded as its zip would run it
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(
        name="ingestion",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/ingestion",
    )["stateMachineArn"]
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alerts")["TopicArn"]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_metadata_table(dynamodb, TABLE)
    trigger = load_function(
        "lambda_trigger", STATE_MACHINE_ARN=machine, ALERT_TOPIC_ARN=topic, UPLOAD_BUCKET=BUCKET
    )
    writer = load_function("lambda_writer", TABLE_NAME=TABLE)

    # When the trigger starts an execution for an upload
    trigger.lambda_handler({"Records": [s3_record("dir/my+file.csv")]}, lambda_context)
    [execution] = sfn.list_executions(stateMachineArn=machine)["executions"]
    record = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])

    # Then its input has exactly the contract's fields, which are exactly those the writer checks
    assert list(record) == list(contract.ExecutionInput.__annotations__) == list(contract.FIELD_RULES)
    # And the writer, given it as the state machine does, writes the row
    result = writer.lambda_handler(
        {"file": record, "execution_id": execution["executionArn"]}, lambda_context
    )
    assert result["status"] == "written"
    row = metadata_item(dynamodb, TABLE, "dir/my file.csv", record["event_time"])
    assert row is not None
    assert row["Bucket"] == {"S": BUCKET}


@pytest.mark.parametrize("field", ["bucket", "key", "event_time", "event_name"])
def test_the_writer_refuses_an_input_without_a_field_the_trigger_always_sets(
    contract: ModuleType, field: str
) -> None:
    file = {
        "bucket": BUCKET,
        "key": "a.csv",
        "size": 1,
        "etag": "e",
        "version_id": "v",
        "sequencer": "s",
        "event_time": "2026-01-15T10:20:30.123Z",
        "event_name": "ObjectCreated:Put",
    }
    del file[field]

    with pytest.raises(contract.InvalidInputError, match=f"file.{field} must be"):
        contract.parse_write_request({"file": file, "execution_id": "arn:x"})
