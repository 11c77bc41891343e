"""Trigger Lambda: S3 notification -> validated records -> deterministic StartExecution calls.

- pure functions: ``parse_record`` + ``decode_s3_key``/``validate_key`` + ``execution_name`` +
  the upload record (``with_key``) over events of 1, 10 and 100 records (no AWS calls);
- ``process_records`` with a StartExecution stand-in (the handler's own loop, logging and input
  JSON without any AWS client cost);
- ``lambda_handler`` in-process under moto for a direct 10-record S3 event: new object versions every
  round, so every round really starts 10 executions, and the duplicate path (a redelivered event
  whose executions have closed: 10 x ExecutionAlreadyExists);
- ``lambda_handler`` under moto for an SQS batch of 10 messages (one notification each, as the upload
  queue delivers them): Powertools' batch processing and the partial batch response on top.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import pytest
from bench_support import calls_made

from devkit.lambda_harness import sqs_event

BUCKET = "ingestion-uploads-123456789012"
EVENT_TIME = "2026-01-15T10:20:30.123Z"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
VERSION_ID = "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"
HANDLER_ROUNDS = 30
HANDLER_RECORDS = 10

KEY_TEMPLATES = (
    "incoming/2026/01/15/report-{index:05d}.csv",
    "incoming/2026/01/15/invoice {index:05d}.pdf",
    "eingang/Müller & Söhne/Qualitätsbericht {index:05d}.csv",
    "incoming/2026/01/15/sensor-{index:05d}.json",
    "アップロード/報告書_{index:05d}.csv",
)


def object_key(index: int) -> str:
    return KEY_TEMPLATES[index % len(KEY_TEMPLATES)].format(index=index)


def version_id(batch: int) -> str:
    """The version id of an upload of ``batch``: a new batch is a new version of every key."""
    return f"{VERSION_ID}{batch:06d}"


def s3_record(key: str, sequencer: str, region: str, version: str) -> dict[str, Any]:
    """One ObjectCreated record as S3 sends it (the key form-URL-encoded)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": EVENT_TIME,
        "eventName": "ObjectCreated:Put",
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "ingest",
            "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": 2048,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "versionId": version,
                "sequencer": sequencer,
            },
        },
    }


def sequencer(batch: int, index: int) -> str:
    return f"{batch:012X}{index:06X}"


def s3_event(records: int, *, batch: int = 0, region: str = "eu-central-1") -> dict[str, Any]:
    """An event of ``records`` distinct objects; another ``batch`` is a new version of each (names
    identify an object version, so a new sequencer alone would be a redelivery)."""
    return {
        "Records": [
            s3_record(object_key(index), sequencer(batch, index), region, version_id(batch))
            for index in range(records)
        ]
    }


def keys_of(event: dict[str, Any]) -> list[str]:
    """The decoded keys of an event built by :func:`s3_event`."""
    return [object_key(index) for index in range(len(event["Records"]))]


@pytest.fixture
def trigger_functions(load_function: Callable[..., ModuleType]) -> ModuleType:
    """The trigger module for its pure functions: no AWS resources behind its settings."""
    return load_function(
        "lambda_trigger",
        STATE_MACHINE_ARN="arn:aws:states:eu-central-1:123456789012:stateMachine:unused",
        ALERT_TOPIC_ARN="arn:aws:sns:eu-central-1:123456789012:unused",
        UPLOAD_BUCKET=BUCKET,
    )


@pytest.fixture
def sfn(aws: Any) -> Any:
    return aws.client("stepfunctions")


@pytest.fixture
def state_machine_arn(sfn: Any, aws: Any) -> str:
    # moto records executions but does not run the definition; a Pass state is enough.
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    return sfn.create_state_machine(
        name="ingestion",
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{aws.account_id}:role/ingestion-state-machine",
    )["stateMachineArn"]


@pytest.fixture
def trigger(load_function: Callable[..., ModuleType], state_machine_arn: str, aws: Any) -> ModuleType:
    topic_arn = aws.client("sns").create_topic(Name="pipeline-alerts")["TopicArn"]
    return load_function(
        "lambda_trigger", STATE_MACHINE_ARN=state_machine_arn, ALERT_TOPIC_ARN=topic_arn, UPLOAD_BUCKET=BUCKET
    )


def list_executions(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn)
    return [execution for page in pages for execution in page["executions"]]


# --- pure functions ----------------------------------------------------------------------------


def make_parse_and_name(trigger: ModuleType) -> Callable[[dict[str, Any]], list[tuple[str, Any]]]:
    """What the trigger does for each record before it calls StartExecution."""

    def parse_and_name(event: dict[str, Any]) -> list[tuple[str, Any]]:
        started: list[tuple[str, Any]] = []
        for record in event["Records"]:
            if not trigger.is_object_created(record):
                continue
            parsed = trigger.parse_record(record)
            key = trigger.validate_key(trigger.decode_s3_key(parsed.raw_key))
            name = trigger.execution_name(parsed.bucket, key, parsed.version_id, parsed.sequencer)
            started.append((name, parsed.with_key(key)))
        return started

    return parse_and_name


@pytest.mark.parametrize("records", [1, 10, 100])
def test_parse_validate_and_name(
    benchmark: Any, per_unit: Callable[[int, str], None], trigger_functions: ModuleType, records: int
) -> None:
    benchmark.group = "trigger: parse + validate + execution name (pure, no AWS)"
    event = s3_event(records)
    parse_and_name = make_parse_and_name(trigger_functions)

    result = benchmark(parse_and_name, event)

    names = [name for name, _ in result]
    assert [payload.key for _, payload in result] == keys_of(event)
    assert len(set(names)) == records
    assert all(NAME_PATTERN.match(name) for name in names)
    assert parse_and_name(s3_event(records)) == result, "execution names must be deterministic"
    per_unit(records, "record")


class RecordingStepFunctions:
    """Stands in for the Step Functions client: accepts every StartExecution, counts them."""

    def __init__(self) -> None:
        self.calls = 0

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        return {"executionArn": f"arn:aws:states:::execution:ingestion:{request['name']}"}


def test_process_records_without_aws(
    benchmark: Any, per_unit: Callable[[int, str], None], trigger_functions: ModuleType
) -> None:
    benchmark.group = f"trigger: process_records, {HANDLER_RECORDS} records, StartExecution stand-in"
    event = s3_event(HANDLER_RECORDS)
    client = RecordingStepFunctions()

    def process(records: list[Any]) -> Any:
        # A run per call, as per invocation: a run starts each execution name once.
        return trigger_functions.process_records(
            records, trigger_functions.Run(client, trigger_functions.CONFIG, trigger_functions.logger)
        )

    outcome = benchmark(process, event["Records"])

    expected_names = [
        trigger_functions.execution_name(BUCKET, key, version_id(0), sequencer(0, index))
        for index, key in enumerate(keys_of(event))
    ]
    assert outcome.started == expected_names
    assert outcome.duplicates == []
    assert outcome.rejected == []
    assert outcome.failed == []
    assert client.calls >= HANDLER_RECORDS
    per_unit(HANDLER_RECORDS, "record")


# --- the handler under moto ----------------------------------------------------------------------


def test_handler_starts_new_executions(
    benchmark: Any,
    per_unit: Callable[[int, str], None],
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: Any,
    aws: Any,
) -> None:
    benchmark.group = f"trigger: lambda_handler under moto, {HANDLER_RECORDS} records"
    batches: Iterator[int] = itertools.count(1)
    summaries: list[dict[str, Any]] = []

    def fresh_event() -> tuple[tuple[dict[str, Any], Any], dict[str, Any]]:
        return (s3_event(HANDLER_RECORDS, batch=next(batches), region=aws.region), lambda_context), {}

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        summary = trigger.lambda_handler(event, context)
        summaries.append(summary)
        return summary

    benchmark.pedantic(handle, setup=fresh_event, rounds=HANDLER_ROUNDS, warmup_rounds=1)

    assert len(summaries) == calls_made(benchmark, HANDLER_ROUNDS)
    for summary in summaries:
        assert (summary["started"], summary["duplicates"], summary["rejected"]) == (HANDLER_RECORDS, 0, 0)
    names = {name for summary in summaries for name in summary["executions"]}
    assert names == {
        trigger.execution_name(BUCKET, key, version_id(batch), sequencer(batch, index))
        for batch in range(1, len(summaries) + 1)
        for index, key in enumerate(keys_of(s3_event(HANDLER_RECORDS)))
    }
    assert {execution["name"] for execution in list_executions(sfn, state_machine_arn)} == names
    per_unit(HANDLER_RECORDS, "record")


def test_handler_redelivered_event_is_all_duplicates(
    benchmark: Any,
    per_unit: Callable[[int, str], None],
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: Any,
    aws: Any,
) -> None:
    benchmark.group = f"trigger: lambda_handler under moto, {HANDLER_RECORDS} records"
    event = s3_event(HANDLER_RECORDS, region=aws.region)
    first = trigger.lambda_handler(event, lambda_context)
    assert first["started"] == HANDLER_RECORDS
    # StartExecution with the name and input of a RUNNING execution succeeds (AWS and moto alike);
    # a redelivery after the executions closed is refused with ExecutionAlreadyExists.
    for execution in list_executions(sfn, state_machine_arn):
        sfn.stop_execution(executionArn=execution["executionArn"])
    summaries: list[dict[str, Any]] = []

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        summary = trigger.lambda_handler(event, context)
        summaries.append(summary)
        return summary

    benchmark.pedantic(handle, args=(event, lambda_context), rounds=HANDLER_ROUNDS, warmup_rounds=1)

    assert len(summaries) == calls_made(benchmark, HANDLER_ROUNDS)
    for summary in summaries:
        assert (summary["started"], summary["duplicates"], summary["rejected"]) == (0, HANDLER_RECORDS, 0)
        assert summary["executions"] == first["executions"]
    assert len(list_executions(sfn, state_machine_arn)) == HANDLER_RECORDS
    per_unit(HANDLER_RECORDS, "record")


def test_handler_sqs_batch_starts_new_executions(
    benchmark: Any,
    per_unit: Callable[[int, str], None],
    trigger: ModuleType,
    sfn: Any,
    state_machine_arn: str,
    lambda_context: Any,
    aws: Any,
) -> None:
    benchmark.group = f"trigger: lambda_handler under moto, SQS batch of {HANDLER_RECORDS} messages"
    batches: Iterator[int] = itertools.count(1)
    responses: list[dict[str, Any]] = []

    def fresh_batch() -> tuple[tuple[dict[str, Any], Any], dict[str, Any]]:
        records = s3_event(HANDLER_RECORDS, batch=next(batches), region=aws.region)["Records"]
        return (sqs_event(*({"Records": [record]} for record in records)), lambda_context), {}

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = trigger.lambda_handler(event, context)
        responses.append(response)
        return response

    benchmark.pedantic(handle, setup=fresh_batch, rounds=HANDLER_ROUNDS, warmup_rounds=1)

    assert len(responses) == calls_made(benchmark, HANDLER_ROUNDS)
    assert all(response == {"batchItemFailures": []} for response in responses)
    assert len(list_executions(sfn, state_machine_arn)) == HANDLER_RECORDS * len(responses)
    per_unit(HANDLER_RECORDS, "message")
