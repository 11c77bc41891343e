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
    assert list(contract.FIELD_RULES) == list(contract.FIELD_NAMES)


def test_the_write_request_carries_every_field_and_the_execution_id(contract: ModuleType) -> None:
    fields = list(contract.WriteRequest.__dataclass_fields__)

    assert fields == [*contract.FIELD_NAMES, "execution_id"]


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
    assert read <= set(contract.FIELD_NAMES)


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
    assert list(record) == list(contract.FIELD_NAMES) == list(contract.FIELD_RULES)
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


# --- the upload record is the one declaration -----------------------------------------------------


def test_the_field_table_says_required_exactly_where_the_type_and_the_rule_refuse_null(
    contract: ModuleType,
) -> None:
    for spec in contract.UPLOAD_FIELDS:
        refuses_null = spec.rule(spec.json_name, None) is not None
        assert spec.required == refuses_null == ("None" not in spec.type), spec


def test_the_execution_input_is_byte_for_byte_the_declared_order(contract: ModuleType) -> None:
    record = contract.UploadRecord(
        bucket=BUCKET,
        key="dir/é.csv",
        size=7,
        etag=None,
        version_id="v1",
        sequencer="0A",
        event_time="2026-01-15T10:20:30.123Z",
        event_name="ObjectCreated:Put",
    )

    assert record.execution_input_json() == (
        '{"bucket": "uploads-bucket", "key": "dir/é.csv", "size": 7, "etag": null, "version_id": "v1", '
        '"sequencer": "0A", "event_time": "2026-01-15T10:20:30.123Z", "event_name": "ObjectCreated:Put"}'
    )
    request = contract.parse_write_request({"file": record.execution_input(), "execution_id": "arn:x"})
    assert contract.UploadRecord.from_execution_input(record.execution_input()) == record
    assert (request.key, request.size, request.execution_id) == ("dir/é.csv", 7, "arn:x")


CONTRACT_SOURCE = REPO_ROOT / "lambda_common" / "contract.py"
NOT_SCANNED = {".git", ".venv", "build", "dist", ".emulator", ".tools", "node_modules", "tests", "benchmarks"}
"""Not scanned: copies and tools, and the tests and benchmarks, whose example inputs spell fields out."""
REPEAT_THRESHOLD = 4


def field_lists(source: str, field_names: set[str]) -> list[int]:
    """Lines of string-literal lists, tuples, sets and dict keys naming >= 4 of the contract's fields."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [key for key in node.keys if key is not None]
        else:
            continue
        named = {item.value for item in items if isinstance(item, ast.Constant)} & field_names
        if len(named) >= REPEAT_THRESHOLD:
            found.append(node.lineno)
    return found


def test_the_repeat_detector_sees_a_field_list(contract: ModuleType) -> None:
    names = set(contract.FIELD_NAMES)

    assert field_lists('FIELDS = ("bucket", "key", "size", "etag")', names) == [1]
    assert field_lists('row = {"bucket": 1, "key": 2, "event_time": 3, "event_name": 4}', names) == [1]
    assert field_lists('ok = ["bucket", "key", "size"]', names) == []


def test_no_module_but_the_contract_declares_the_field_list_again(contract: ModuleType) -> None:
    names = set(contract.FIELD_NAMES)
    repeats = []
    for path in sorted(REPO_ROOT.rglob("*.py")):
        relative = path.relative_to(REPO_ROOT)
        if NOT_SCANNED & set(relative.parts[:-1]) or path == CONTRACT_SOURCE:
            continue
        repeats.extend(f"{relative}:{line}" for line in field_lists(path.read_text(), names))

    assert repeats == [], "declare the upload record's fields only in lambda_common/contract.py"
