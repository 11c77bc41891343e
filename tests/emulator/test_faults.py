"""Fault injection through the Python API and the plain-HTTP helpers."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import AdminClient, AdminError, Emulator, add_fault, clear_faults, list_faults, remove_fault

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


def test_a_probabilistic_fault_fails_about_that_share_of_requests(
    emulator: Emulator, aws_client: Callable[[str], Any], table: str
) -> None:
    emulator.add_fault(
        "DynamoDB_20120810.PutItem",
        match="sampled-",
        probability=0.25,
        seed=7,
        error_code="ValidationException",  # not retried by botocore, so every draw is visible
    )
    codes: list[str] = []
    try:
        for i in range(200):
            try:
                put(aws_client, table, f"sampled-{i}")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
        [rule] = emulator.list_faults()
    finally:
        emulator.clear_faults()
    failed = len(codes)
    assert set(codes) == {"ValidationException"}
    assert 30 <= failed <= 70  # 25 % of 200, seeded: the same count on every run
    assert (rule["seen"], rule["hits"]) == (200, failed)


def test_a_token_bucket_throttles_a_target_and_refills(
    emulator: Emulator, aws_client: Callable[[str], Any], table: str
) -> None:
    from botocore.config import Config

    no_retries = boto3_client(emulator, "dynamodb", Config(retries={"total_max_attempts": 1}))
    emulator.set_throttle("DynamoDB_20120810.PutItem", capacity=3, refill_per_second=0.001)
    try:
        for i in range(3):
            no_retries.put_item(TableName=table, Item={"Filename": {"S": f"bucket-{i}"}})
        with pytest.raises(ClientError) as throttled:
            no_retries.put_item(TableName=table, Item={"Filename": {"S": "bucket-3"}})
        no_retries.get_item(TableName=table, Key={"Filename": {"S": "bucket-0"}})  # other targets pass
        [state] = emulator.faults.list_throttles()
    finally:
        assert emulator.clear_throttles() == 1
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
    assert (state["allowed"], state["throttled"]) == (3, 1)
    emulator.set_throttle("DynamoDB_20120810.PutItem", capacity=1, refill_per_second=50)
    try:
        no_retries.put_item(TableName=table, Item={"Filename": {"S": "refill-1"}})
        time.sleep(0.1)  # 50 tokens a second: the bucket holds one again
        no_retries.put_item(TableName=table, Item={"Filename": {"S": "refill-2"}})
    finally:
        emulator.clear_throttles()


def boto3_client(emulator: Emulator, service: str, config: Any) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def test_the_admin_api_validates_and_reports_every_fault_mode(emulator: Emulator) -> None:
    client = AdminClient(emulator.endpoint_url)
    with pytest.raises(AdminError, match="probability"):
        client.call("POST", "/_emulator/faults", {"target": "X", "probability": 1.5})
    with pytest.raises(AdminError, match="capacity"):
        client.call("POST", "/_emulator/throttles", {"target": "X", "capacity": 0, "refill_per_second": 1})
    with pytest.raises(AdminError, match="copies"):
        client.call("POST", "/_emulator/s3/notifications", {"copies": 0})
    throttle = client.call(
        "POST",
        "/_emulator/throttles",
        {"target": "AWSStepFunctions.StartExecution", "capacity": 5, "refill_per_second": 2},
    )
    assert (throttle["capacity"], throttle["refill_per_second"]) == (5.0, 2.0)
    assert client.call("POST", "/_emulator/s3/notifications", {"copies": 2}) == {"copies": 2}
    assert client.call("GET", "/_emulator/health")["s3_notification_copies"] == 2
    assert client.call("DELETE", "/_emulator/throttles") == {"cleared": 1}
    assert client.call("POST", "/_emulator/s3/notifications", {"copies": 1}) == {"copies": 1}
    patches = client.call("GET", "/_emulator/patches")["patches"]
    assert any(p["target"] == "moto.s3.notifications._invoke_awslambda" for p in patches)


def test_admin_calls_never_go_through_a_proxy(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert list_faults(emulator.endpoint_url) == []
    assert AdminClient(emulator.endpoint_url).health()["status"] == "ok"
