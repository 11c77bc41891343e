"""S3 sends exactly one notification per created object version, named as S3 names it.

A recording function stores every event it receives in DynamoDB (one item per delivery), so the
tests count deliveries, not just outcomes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulator import Emulator

pytestmark = pytest.mark.emulator
MIB = 1024 * 1024
BUCKET = "notified-uploads"
TABLE = "deliveries"

RECORDER = """
import io
import json
import uuid
from urllib.parse import unquote_plus

import boto3

DDB = boto3.client("dynamodb")


def handler(event, context):
    for record in event["Records"]:
        obj = record["s3"]["object"]
        DDB.put_item(
            TableName="deliveries",
            Item={
                "Delivery": {"S": str(uuid.uuid4())},
                "Key": {"S": unquote_plus(obj["key"])},
                "EventName": {"S": record["eventName"]},
                "Sequencer": {"S": obj["sequencer"]},
                "VersionId": {"S": obj.get("versionId", "")},
                "EventTime": {"S": record["eventTime"]},
            },
        )
"""


@pytest.fixture(scope="module")
def recorded(
    aws_client: Callable[[str], Any], make_function: Callable[..., str], emulator: Emulator
) -> Callable[[str], list[dict]]:
    aws_client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "Delivery", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "Delivery", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = make_function("delivery-recorder", {"index.py": RECORDER}, Timeout=10)
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )

    def deliveries(key: str) -> list[dict]:
        assert emulator.wait_for_async_invocations(60)
        items = aws_client("dynamodb").scan(TableName=TABLE)["Items"]
        return [
            {name: value["S"] for name, value in item.items()} for item in items if item["Key"]["S"] == key
        ]

    return deliveries


@pytest.fixture
def copies(emulator: Emulator) -> Iterator[Callable[[int], None]]:
    yield emulator.set_notification_copies
    emulator.set_notification_copies(1)


def version_of(aws_client: Callable[[str], Any], key: str) -> str:
    return str(aws_client("s3").head_object(Bucket=BUCKET, Key=key)["VersionId"])


def test_put_object_sends_one_put_event(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]]
) -> None:
    aws_client("s3").put_object(Bucket=BUCKET, Key="put.txt", Body=b"x")
    [event] = recorded("put.txt")
    assert event["EventName"] == "ObjectCreated:Put"
    assert event["VersionId"] == version_of(aws_client, "put.txt")


def test_a_multipart_upload_sends_one_complete_multipart_upload_event(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]]
) -> None:
    s3 = aws_client("s3")
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key="big.bin")["UploadId"]
    parts = [
        {
            "ETag": s3.upload_part(
                Bucket=BUCKET, Key="big.bin", UploadId=upload_id, PartNumber=n, Body=b"x" * (5 * MIB)
            )["ETag"],
            "PartNumber": n,
        }
        for n in (1, 2)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="big.bin", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )

    [event] = recorded("big.bin")  # moto sent ObjectCreated:Put as well
    assert event["EventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert event["VersionId"] == version_of(aws_client, "big.bin")


def test_the_cli_upload_above_its_multipart_threshold_is_one_event(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]]
) -> None:
    from boto3.s3.transfer import TransferConfig

    aws_client("s3").upload_fileobj(
        io.BytesIO(b"y" * (20 * MIB)),
        BUCKET,
        "twenty.bin",
        Config=TransferConfig(multipart_threshold=8 * MIB),
    )
    assert [e["EventName"] for e in recorded("twenty.bin")] == ["ObjectCreated:CompleteMultipartUpload"]


def test_copy_object_sends_one_copy_event(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]]
) -> None:
    s3 = aws_client("s3")
    s3.put_object(Bucket=BUCKET, Key="original.txt", Body=b"x")
    s3.copy_object(Bucket=BUCKET, Key="copied.txt", CopySource={"Bucket": BUCKET, "Key": "original.txt"})
    [event] = recorded("copied.txt")
    assert event["EventName"] == "ObjectCreated:Copy"


def sequencer_order(sequencer: str, width: int) -> str:
    """How AWS says to compare sequencers of one key: pad to equal length, then compare as strings."""
    return sequencer.upper().rjust(width, "0")


def test_each_version_has_its_own_sequencer_increasing_in_upload_order(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]]
) -> None:
    s3 = aws_client("s3")
    uploaded = [
        s3.put_object(Bucket=BUCKET, Key="thrice.txt", Body=body)["VersionId"] for body in (b"1", b"2", b"3")
    ]
    events = recorded("thrice.txt")  # delivered asynchronously: the arrival order says nothing
    assert len(events) == 3
    by_version = {e["VersionId"]: e["Sequencer"] for e in events}
    assert set(by_version) == set(uploaded)

    in_upload_order = [by_version[version] for version in uploaded]
    width = max(map(len, in_upload_order))
    padded = [sequencer_order(s, width) for s in in_upload_order]
    assert padded[0] < padded[1] < padded[2], in_upload_order
    hex_values = [int(s, 16) for s in in_upload_order]
    assert hex_values[0] < hex_values[1] < hex_values[2]


def test_every_destination_of_one_event_gets_the_same_sequencer(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]]
) -> None:
    """One object event sent to a function and to a queue: S3 sends one event, one sequencer."""
    s3, sqs = aws_client("s3"), aws_client("sqs")
    function_arn = aws_client("lambda").get_function(FunctionName="delivery-recorder")["Configuration"][
        "FunctionArn"
    ]
    queue_url = sqs.create_queue(QueueName="notified-copies")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket="two-destinations")
    s3.put_bucket_versioning(Bucket="two-destinations", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket="two-destinations",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": function_arn, "Events": ["s3:ObjectCreated:*"]}
            ],
            "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}],
        },
    )
    version = s3.put_object(Bucket="two-destinations", Key="both.txt", Body=b"x")["VersionId"]

    [to_function] = recorded("both.txt")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    [to_queue] = [record for m in messages for record in json.loads(m["Body"]).get("Records", [])]
    assert to_queue["s3"]["object"]["versionId"] == to_function["VersionId"] == version
    assert to_queue["s3"]["object"]["sequencer"] == to_function["Sequencer"]
    assert to_queue["eventTime"] == to_function["EventTime"]


def test_at_least_once_mode_delivers_the_same_event_twice(
    aws_client: Callable[[str], Any], recorded: Callable[[str], list[dict]], copies: Callable[[int], None]
) -> None:
    copies(2)
    aws_client("s3").put_object(Bucket=BUCKET, Key="twice.txt", Body=b"x")
    events = recorded("twice.txt")
    assert len(events) == 2
    assert (
        len({json.dumps({k: v for k, v in e.items() if k != "Delivery"}, sort_keys=True) for e in events})
        == 1
    )
