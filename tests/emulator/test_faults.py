"""Fault injection through the Python API and the plain-HTTP helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator, add_fault, clear_faults, list_faults, remove_fault

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def table(aws_client: Callable[[str], Any]) -> str:
    aws_client("dynamodb").create_table(
        TableName="fault-table",
        KeySchema=[{"AttributeName": "Filename", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Filename", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "fault-table"


def put(aws_client: Callable[[str], Any], table: str, name: str) -> dict[str, Any]:
    return dict(aws_client("dynamodb").put_item(TableName=table, Item={"Filename": {"S": name}}))


def test_default_fault_is_not_retried_by_botocore(
    emulator: Emulator, aws_client: Callable[[str], Any], table: str
) -> None:
    rule_id = emulator.add_fault("DynamoDB_20120810.PutItem", match="poison")
    try:
        with pytest.raises(ClientError) as failed:
            put(aws_client, table, "poison.csv")
        error = failed.value.response
        assert error["Error"]["Code"] == "InjectedFault"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["ResponseMetadata"]["RetryAttempts"] == 0  # the client retries in standard mode
        put(aws_client, table, "clean.csv")  # no match: reaches moto
        [rule] = emulator.list_faults()
        assert rule["id"] == rule_id
        assert rule["hits"] == 1
    finally:
        assert emulator.clear_faults() == 1
    put(aws_client, table, "poison.csv")


def test_times_and_a_retryable_status(
    emulator: Emulator, aws_client: Callable[[str], Any], table: str
) -> None:
    # A 500 is retried by botocore itself: with times=2 the third attempt succeeds.
    emulator.add_fault("DynamoDB_20120810.PutItem", status=500, error_code="InternalServerError", times=2)
    try:
        response = put(aws_client, table, "flaky.csv")
    finally:
        emulator.clear_faults()
    assert response["ResponseMetadata"]["RetryAttempts"] == 2


def test_http_helpers_and_validation(
    emulator: Emulator, aws_client: Callable[[str], Any], table: str
) -> None:
    url = emulator.endpoint_url
    rule_id = add_fault(
        url, "DynamoDB_20120810.GetItem", error_code="ResourceNotFoundException", message="gone"
    )
    assert [rule["id"] for rule in list_faults(url)] == [rule_id]
    with pytest.raises(ClientError) as failed:
        aws_client("dynamodb").get_item(TableName=table, Key={"Filename": {"S": "clean.csv"}})
    assert failed.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert failed.value.response["Error"]["Message"] == "gone"
    assert remove_fault(url, rule_id) is True
    assert list_faults(url) == []
    add_fault(url, "*")
    assert clear_faults(url) == 1

    request = urllib.request.Request(  # noqa: S310 - the test's own loopback emulator
        f"{url}/_emulator/faults", data=json.dumps({"status": 200}).encode(), method="POST"
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as bad:
        opener.open(request, timeout=5)
    assert bad.value.code == 400
