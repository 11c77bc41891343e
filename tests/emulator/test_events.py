"""EventBridge -> Lambda targets, and firing a scheduled rule on demand."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from emulator import Emulator

pytestmark = pytest.mark.emulator

RECORDER = """
import json

import boto3


def handler(event, context):
    boto3.client("s3").put_object(Bucket="events-sink", Key=event["id"], Body=json.dumps(event).encode())
"""


@pytest.fixture(scope="module")
def recorder(make_function: Callable[..., str], aws_client: Callable[[str], Any]) -> str:
    aws_client("s3").create_bucket(Bucket="events-sink")
    return make_function("events-recorder", {"index.py": RECORDER})


def recorded(aws_client: Callable[[str], Any]) -> list[dict[str, Any]]:
    s3 = aws_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="events-sink").get("Contents", [])]
    return [json.loads(s3.get_object(Bucket="events-sink", Key=k)["Body"].read()) for k in keys]


def test_scheduled_rule_is_fired_on_demand(
    emulator: Emulator, aws_client: Callable[[str], Any], recorder: str
) -> None:
    events = aws_client("events")
    events.put_rule(Name="every-hour", ScheduleExpression="rate(1 hour)")
    events.put_targets(Rule="every-hour", Targets=[{"Id": "monitor", "Arn": recorder}])

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(  # noqa: S310 - the test's own loopback emulator
        f"{emulator.endpoint_url}/_emulator/events/trigger", data=b'{"rule": "every-hour"}', method="POST"
    )
    with opener.open(request, timeout=10) as response:
        result = json.loads(response.read())
    assert result["targets"] == [recorder]
    assert emulator.wait_for_async_invocations(30)
    [event] = recorded(aws_client)
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == [result["rule"]]


def test_put_events_reaches_a_lambda_target(
    emulator: Emulator, aws_client: Callable[[str], Any], recorder: str
) -> None:
    events = aws_client("events")
    events.put_rule(Name="custom", EventPattern=json.dumps({"source": ["pipeline.test"]}))
    events.put_targets(Rule="custom", Targets=[{"Id": "recorder", "Arn": recorder}])
    events.put_events(
        Entries=[{"Source": "pipeline.test", "DetailType": "Thing", "Detail": json.dumps({"n": 1})}]
    )
    events.put_events(Entries=[{"Source": "other", "DetailType": "Thing", "Detail": "{}"}])
    assert emulator.wait_for_async_invocations(30)
    custom = [e for e in recorded(aws_client) if e["source"] == "pipeline.test"]
    assert len(custom) == 1
    assert custom[0]["detail"] == {"n": 1}
    assert not [e for e in recorded(aws_client) if e["source"] == "other"]
