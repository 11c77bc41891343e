"""Writer Lambda in-process under moto: one conditional PutItem per invocation.

- a new object (a fresh key every round): the item is written;
- the same object again: the condition fails and the write is reported as a duplicate.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from bench_support import calls_made

from devkit.lambda_harness import create_metadata_table, metadata_item

TABLE = "ingestion-metadata"
WRITER_ROUNDS = 200
EXECUTION_ID = "arn:aws:states:eu-central-1:123456789012:execution:ingestion:report_csv-0123456789abcdef"

TASK_INPUT: dict[str, Any] = {
    "file": {
        "bucket": "ingestion-uploads-123456789012",
        "key": "incoming/2026/01/15/déjà vu.csv",
        "size": 2048,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
        "sequencer": "0055AED6DCD90281E5",
        "event_time": "2026-01-15T10:20:30.123Z",
        "event_name": "ObjectCreated:Put",
    },
    "execution_id": EXECUTION_ID,
}


def task_input(key: str, execution_id: str = EXECUTION_ID) -> dict[str, Any]:
    event = copy.deepcopy(TASK_INPUT)
    event["file"]["key"] = key
    event["execution_id"] = execution_id
    return event


@pytest.fixture
def dynamodb(aws: Any) -> Any:
    client = aws.client("dynamodb")
    create_metadata_table(client, TABLE)
    return client


@pytest.fixture
def writer(load_function: Callable[..., ModuleType], dynamodb: Any) -> ModuleType:
    return load_function("lambda_writer", TABLE_NAME=TABLE)


def stored_item(dynamodb: Any, filename: str) -> dict[str, Any] | None:
    return metadata_item(dynamodb, TABLE, filename, TASK_INPUT["file"]["event_time"])


def item_count(dynamodb: Any) -> int:
    pages = dynamodb.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT")
    return sum(page["Count"] for page in pages)


def test_writer_puts_a_new_item(
    benchmark: Any, writer: ModuleType, dynamodb: Any, lambda_context: Any
) -> None:
    benchmark.group = "writer: lambda_handler under moto, one PutItem"
    numbers: Iterator[int] = itertools.count()
    results: list[dict[str, Any]] = []

    def fresh_input() -> tuple[tuple[dict[str, Any], Any], dict[str, Any]]:
        number = next(numbers)
        key = f"incoming/2026/01/15/déjà vu {number:05d}.csv"
        return (task_input(key, f"{EXECUTION_ID}-{number:05d}"), lambda_context), {}

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = writer.lambda_handler(event, context)
        results.append(result)
        return result

    benchmark.pedantic(handle, setup=fresh_input, rounds=WRITER_ROUNDS, warmup_rounds=1)

    assert len(results) == calls_made(benchmark, WRITER_ROUNDS)
    assert all(result["status"] == "written" for result in results)
    assert len({result["filename"] for result in results}) == len(results)
    assert item_count(dynamodb) == len(results)
    last = stored_item(dynamodb, results[-1]["filename"])
    assert last is not None
    assert last["ExecutionId"] == {"S": f"{EXECUTION_ID}-{len(results) - 1:05d}"}
    assert last["Size"] == {"N": "2048"}


def test_writer_skips_a_duplicate(
    benchmark: Any, writer: ModuleType, dynamodb: Any, lambda_context: Any
) -> None:
    benchmark.group = "writer: lambda_handler under moto, one PutItem"
    key = TASK_INPUT["file"]["key"]
    assert writer.lambda_handler(task_input(key), lambda_context)["status"] == "written"
    original = stored_item(dynamodb, key)
    retry = task_input(key, f"{EXECUTION_ID}-retry")
    results: list[dict[str, Any]] = []

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = writer.lambda_handler(event, context)
        results.append(result)
        return result

    benchmark.pedantic(handle, args=(retry, lambda_context), rounds=WRITER_ROUNDS, warmup_rounds=1)

    assert len(results) == calls_made(benchmark, WRITER_ROUNDS)
    assert all(
        result
        == {"status": "duplicate", "filename": key, "upload_timestamp": TASK_INPUT["file"]["event_time"]}
        for result in results
    )
    assert item_count(dynamodb) == 1
    assert stored_item(dynamodb, key) == original, "a duplicate must not overwrite the item"
