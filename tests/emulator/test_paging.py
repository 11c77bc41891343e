"""Every list call the handlers, the demo, the tests and the provider page through returns every item.

Each test creates more items than one page holds and pages with boto3's paginator (what the
handlers do), so a call that returns one page without a continuation token fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import wait_for_execution

pytestmark = pytest.mark.emulator


def items(client: Any, operation: str, field: str, page_size: int, **kwargs: Any) -> tuple[list[Any], int]:
    """Every item of ``field`` over all pages, and how many pages there were."""
    pages = list(client.get_paginator(operation).paginate(**kwargs, PaginationConfig={"PageSize": page_size}))
    return [item for page in pages for item in page.get(field, [])], len(pages)


def test_list_buckets_pages_with_continuation_tokens_in_name_order(aws_client: Callable[[str], Any]) -> None:
    s3 = aws_client("s3")
    names = [f"paged-bucket-{i:02d}" for i in range(11)]
    for name in reversed(names):
        s3.create_bucket(Bucket=name)

    buckets, pages = items(s3, "list_buckets", "Buckets", 4, Prefix="paged-bucket-")

    assert [b["Name"] for b in buckets] == names
    assert pages == 3
    assert {b["BucketRegion"] for b in buckets} == {"us-east-1"}
    first = s3.list_buckets(MaxBuckets=4, Prefix="paged-bucket-")
    assert "ContinuationToken" in first
    last = s3.list_buckets(
        MaxBuckets=4,
        Prefix="paged-bucket-",
        ContinuationToken=s3.list_buckets(MaxBuckets=8, Prefix="paged-bucket-")["ContinuationToken"],
    )
    assert [b["Name"] for b in last["Buckets"]] == names[8:]
    assert "ContinuationToken" not in last
    assert len(s3.list_buckets()["Buckets"]) >= 11  # without parameters: everything, as S3 does
    with pytest.raises(ClientError) as bad:
        s3.list_buckets(MaxBuckets=2, ContinuationToken="not-a-token!")
    assert bad.value.response["Error"]["Code"] == "InvalidArgument"


def test_list_tables_pages(aws_client: Callable[[str], Any]) -> None:
    ddb = aws_client("dynamodb")
    for i in range(7):
        ddb.create_table(
            TableName=f"paged-table-{i}",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    tables, pages = items(ddb, "list_tables", "TableNames", 3)
    assert {f"paged-table-{i}" for i in range(7)} <= set(tables)
    assert pages >= 3


def test_scan_pages(aws_client: Callable[[str], Any]) -> None:
    ddb = aws_client("dynamodb")
    ddb.create_table(
        TableName="paged-scan",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(9):
        ddb.put_item(TableName="paged-scan", Item={"k": {"S": f"item-{i}"}})
    found, pages = items(ddb, "scan", "Items", 4, TableName="paged-scan")
    assert sorted(item["k"]["S"] for item in found) == [f"item-{i}" for i in range(9)]
    assert pages >= 3


def test_list_object_versions_pages(aws_client: Callable[[str], Any]) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="paged-versions")
    s3.put_bucket_versioning(Bucket="paged-versions", VersioningConfiguration={"Status": "Enabled"})
    for i in range(5):
        for body in (b"a", b"b"):
            s3.put_object(Bucket="paged-versions", Key=f"file {i}+v.txt", Body=body)
    # botocore asks for EncodingType=url itself and decodes names and markers ('+' and ' ' survive).
    versions, pages = items(s3, "list_object_versions", "Versions", 3, Bucket="paged-versions")
    assert len({v["VersionId"] for v in versions}) == 10
    assert {v["Key"] for v in versions} == {f"file {i}+v.txt" for i in range(5)}
    assert pages >= 4


def test_list_executions_and_history_page(aws_client: Callable[[str], Any], lambda_role: str) -> None:
    sfn = aws_client("stepfunctions")
    definition = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}},
    }
    arn = sfn.create_state_machine(
        name="paged-machine", definition=json.dumps(definition), roleArn=lambda_role
    )["stateMachineArn"]
    started = [sfn.start_execution(stateMachineArn=arn, name=f"run-{i}")["executionArn"] for i in range(7)]
    for execution_arn in started:
        wait_for_execution(sfn, execution_arn)

    executions, pages = items(sfn, "list_executions", "executions", 3, stateMachineArn=arn)
    assert sorted(e["executionArn"] for e in executions) == sorted(started)
    assert pages == 3
    events, pages = items(sfn, "get_execution_history", "events", 2, executionArn=started[0])
    assert next(e["type"] for e in events) == "ExecutionStarted"
    assert [e["type"] for e in events][-1] == "ExecutionSucceeded"
    assert pages >= 3


def test_list_aliases_pages_and_shows_aws_managed_aliases_without_targets(
    aws_client: Callable[[str], Any],
) -> None:
    kms = aws_client("kms")
    for i in range(6):
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/paged-{i}", TargetKeyId=key_id)

    aliases, pages = items(kms, "list_aliases", "Aliases", 4)

    names = [a["AliasName"] for a in aliases]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert {f"alias/paged-{i}" for i in range(6)} <= set(names)
    assert pages >= 5
    by_name = {a["AliasName"]: a for a in aliases}
    assert "TargetKeyId" not in by_name["alias/aws/lambda"]  # the AWS-managed key does not exist yet
    assert by_name["alias/paged-0"]["TargetKeyId"]


def test_list_objects_v2_pages_with_max_keys_and_continuation_tokens(
    aws_client: Callable[[str], Any],
) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="paged-objects")
    keys = [f"dir/file {i:02d}+v.txt" for i in range(11)]
    for key in reversed(keys):
        s3.put_object(Bucket="paged-objects", Key=key, Body=b"x")

    listed, pages = items(s3, "list_objects_v2", "Contents", 4, Bucket="paged-objects")
    assert [o["Key"] for o in listed] == keys  # every key exactly once, in key order
    assert pages == 3

    seen: list[str] = []
    request: dict[str, Any] = {"Bucket": "paged-objects", "MaxKeys": 4}
    for _ in range(10):
        page = s3.list_objects_v2(**request)
        assert page["KeyCount"] == len(page["Contents"]) <= 4
        seen.extend(o["Key"] for o in page["Contents"])
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        request["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == keys


def test_list_tags_of_resource_pages_with_next_token(aws_client: Callable[[str], Any]) -> None:
    """The security monitor reads a table's tags page by page (moto answers 10 per page)."""
    ddb = aws_client("dynamodb")
    arn = ddb.create_table(
        TableName="paged-tags",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    tags = {f"tag-{i:02d}": f"value {i}" for i in range(23)}
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    seen: list[tuple[str, str]] = []
    pages = 0
    request = {"ResourceArn": arn}
    while True:  # the monitor's loop (lambda_security_monitor.table_tags)
        page = ddb.list_tags_of_resource(**request)
        pages += 1
        seen.extend((tag["Key"], tag["Value"]) for tag in page["Tags"])
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    assert sorted(seen) == sorted(tags.items())
    assert len(seen) == len(tags)  # no tag twice
    assert pages == 3
