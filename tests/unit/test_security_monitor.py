"""Security Monitor Lambda against moto: buckets and tables classified, one alert when needed."""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

if TYPE_CHECKING:
    from tests.conftest import FakeLambdaContext, SubscribedTopic

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
CUSTOMER_KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
EXEMPTION_TAG = "SecurityScanExemption"
REPORT_KEYS = {"counts", "non_compliant", "exempted", "errors", "alert_sent"}
FINDING_KEYS = {
    "resource_type",
    "name",
    "region",
    "status",
    "reason",
    "kms_key",
    "bucket_key_enabled",
    "exemption",
}


def kms_rule(algorithm: str, key_id: str | None = None, bucket_key: bool | None = None) -> dict[str, Any]:
    default: dict[str, Any] = {"SSEAlgorithm": algorithm}
    if key_id is not None:
        default["KMSMasterKeyID"] = key_id
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    return {"Rules": [rule]}


def create_bucket(name: str, encryption: dict[str, Any] | None, tags: dict[str, str] | None = None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    if encryption is not None:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)
    if tags is not None:
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": key, "Value": value} for key, value in tags.items()]}
        )


def create_table(
    name: str, sse: dict[str, Any] | None = None, region: str = REGION, tags: dict[str, str] | None = None
) -> None:
    extra: dict[str, Any] = {"SSESpecification": sse} if sse is not None else {}
    if tags is not None:
        extra["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
    boto3.client("dynamodb", region_name=region).create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "Filename", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "Filename", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def client_error(code: str, operation: str, message: str = "Access Denied") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The findings the report lists (it never lists compliant resources)."""
    findings = report["non_compliant"] + report["exempted"] + report["errors"]
    return {finding["name"]: finding for finding in findings}


def logged_findings(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    """Every finding logged (one line per resource, compliant ones included), by name."""
    logged: dict[str, dict[str, Any]] = {}
    for record in caplog.records:
        if hasattr(record, "finding"):
            assert record.finding["name"] not in logged, "each resource is logged once"
            logged[record.finding["name"]] = record.finding
    return logged


def calls_to(client: Any, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every ``operation`` call the client makes from now on."""
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_name
    client.meta.events.register(
        f"before-parameter-build.{service}.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


@pytest.fixture
def load_monitor(
    load_function: Callable[..., ModuleType], alert_topic: SubscribedTopic
) -> Callable[..., ModuleType]:
    def load(scan_regions: str = REGION, **env: str) -> ModuleType:
        return load_function(
            "lambda_security_monitor", ALERT_TOPIC_ARN=alert_topic.arn, SCAN_REGIONS=scan_regions, **env
        )

    return load


@pytest.fixture
def retry_sleeps() -> list[float]:
    """The waits between retries, recorded instead of slept (jitter fixed at its maximum)."""
    return []


@pytest.fixture
def monitor(
    load_monitor: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> ModuleType:
    module = load_monitor()
    monkeypatch.setattr(module, "RETRY", module.RetryPolicy(sleep=retry_sleeps.append, jitter=lambda: 1.0))
    return module


MONITOR_LAYERS = ("access", "classify", "config", "scan", "report")
"""The modules of ``lambda_security_monitor/security_monitor/``, which the handler walks through."""


def monitor_layers(index: ModuleType) -> SimpleNamespace:
    """The loaded handler (``index``) and each of its layers, by name (``layers.classify``...)."""
    modules = {name: importlib.import_module(f"security_monitor.{name}") for name in MONITOR_LAYERS}
    return SimpleNamespace(index=index, **modules)


@pytest.fixture
def layers(load_function: Callable[..., ModuleType]) -> SimpleNamespace:
    """The monitor's layers for tests of their functions: no AWS resources behind its settings."""
    index = load_function(
        "lambda_security_monitor",
        ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:unused",
        SCAN_REGIONS=REGION,
    )
    return monitor_layers(index)


def no_wait(access: ModuleType, attempts: int = 4) -> Any:
    """A retry policy that never sleeps (``access``: the handler or its access layer)."""
    return access.RetryPolicy(attempts=attempts, sleep=lambda _: None)


# --- buckets -----------------------------------------------------------------------------------


def test_each_kind_of_bucket_is_classified(
    monitor: ModuleType,
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given one bucket of every kind, one of which the function may not read
    create_bucket("kms-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID, bucket_key=True))
    create_bucket("kms-default-key-bucket", kms_rule("aws:kms"))
    create_bucket("dsse-bucket", kms_rule("aws:kms:dsse", CUSTOMER_KEY_ID, bucket_key=False))
    create_bucket("sse-s3-bucket", kms_rule("AES256"))
    create_bucket("plain-bucket", None)
    create_bucket("locked-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))

    def deny_locked(params: dict[str, Any], **_: Any) -> None:
        if params["Bucket"] == "locked-bucket":
            raise client_error("AccessDenied", "GetBucketEncryption")

    monitor.CLIENTS.s3.meta.events.register("before-parameter-build.s3.GetBucketEncryption", deny_locked)

    # When the monitor runs
    report = monitor.lambda_handler({}, lambda_context)

    # Then every bucket is classified, and the denied one is an error, not a stop
    assert report["counts"] == {
        "scanned": 6,
        "scanned_buckets": 6,
        "scanned_tables": 0,
        "compliant": 3,
        "non_compliant": 2,
        "exempted": 0,
        "errors": 1,
    }
    logged = logged_findings(caplog)
    assert logged["kms-bucket"] == {
        "resource_type": "s3_bucket",
        "name": "kms-bucket",
        "region": None,
        "status": "COMPLIANT",
        "reason": f"aws:kms with key {CUSTOMER_KEY_ID}, S3 Bucket Key enabled",
        "kms_key": CUSTOMER_KEY_ID,
        "bucket_key_enabled": True,
        "exemption": None,
    }
    assert logged["kms-default-key-bucket"]["status"] == "COMPLIANT"
    assert (
        logged["kms-default-key-bucket"]["reason"]
        == "aws:kms with the AWS-managed key aws/s3, S3 Bucket Key disabled"
    )
    assert logged["kms-default-key-bucket"]["kms_key"] is None
    assert logged["dsse-bucket"]["status"] == "COMPLIANT"
    assert logged["dsse-bucket"]["reason"].startswith("aws:kms:dsse with key")
    assert logged["dsse-bucket"]["bucket_key_enabled"] is False
    # The report lists only what needs attention
    findings = by_name(report)
    assert set(findings) == {"sse-s3-bucket", "plain-bucket", "locked-bucket"}
    assert (findings["sse-s3-bucket"]["status"], findings["sse-s3-bucket"]["reason"]) == (
        "NON_COMPLIANT",
        "SSE-S3, not KMS",
    )
    assert (findings["plain-bucket"]["status"], findings["plain-bucket"]["reason"]) == (
        "NON_COMPLIANT",
        "no default encryption",
    )
    assert (findings["locked-bucket"]["status"], findings["locked-bucket"]["reason"]) == (
        "ERROR",
        "GetBucketEncryption failed: AccessDenied: Access Denied",
    )
    assert report["alert_sent"] is True
    assert len(alert_topic.received()) == 1


def test_buckets_are_listed_page_by_page(layers: SimpleNamespace) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    with Stubber(s3) as stub:
        stub.add_response(
            "list_buckets",
            {"Buckets": [{"Name": "bucket-a", "BucketRegion": REGION}], "ContinuationToken": "page-2"},
            {"MaxBuckets": 1000},
        )
        stub.add_response(
            "list_buckets",
            {"Buckets": [{"Name": "bucket-b", "BucketRegion": OTHER_REGION}]},
            {"MaxBuckets": 1000, "ContinuationToken": "page-2"},
        )

        buckets = list(layers.access.list_buckets(s3, no_wait(layers.access)))

        stub.assert_no_pending_responses()
    assert buckets == [("bucket-a", REGION), ("bucket-b", OTHER_REGION)]


def test_a_denied_bucket_listing_is_an_error_and_tables_are_still_scanned(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    create_table("orders")

    def deny(**_: Any) -> None:
        raise client_error("AccessDenied", "ListBuckets")

    monitor.CLIENTS.s3.meta.events.register("before-parameter-build.s3.ListBuckets", deny)

    report = monitor.lambda_handler({}, lambda_context)

    assert report["errors"] == [
        {
            "resource_type": "s3_bucket",
            "name": "*",
            "region": None,
            "status": "ERROR",
            "reason": "ListBuckets failed: AccessDenied: Access Denied",
            "kms_key": None,
            "bucket_key_enabled": None,
            "exemption": None,
        }
    ]
    assert report["counts"]["scanned_tables"] == 1
    assert by_name(report)["orders"]["status"] == "NON_COMPLIANT"


@pytest.mark.parametrize(
    ("configuration", "reason"),
    [
        pytest.param(
            {"Rules": [{"BucketKeyEnabled": True}]}, "no default encryption", id="rule-without-default"
        ),
        pytest.param({"Rules": []}, "no default encryption", id="no-rules"),
        pytest.param(kms_rule("aws:fsx"), "default encryption 'aws:fsx' is not KMS", id="unknown-algorithm"),
    ],
)
def test_unusual_bucket_configurations_are_not_compliant(
    layers: SimpleNamespace, configuration: dict[str, Any], reason: str
) -> None:
    finding = layers.classify.classify_bucket_encryption("b", REGION, configuration)

    assert (finding["status"], finding["reason"]) == ("NON_COMPLIANT", reason)


# --- tables ------------------------------------------------------------------------------------


def test_each_kind_of_table_is_classified(
    monitor: ModuleType, lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a table with a customer key, one with the AWS-managed key and one with the default
    customer_key = boto3.client("kms", region_name=REGION).create_key(Description="orders")["KeyMetadata"][
        "Arn"
    ]
    create_table("orders-cmk", {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": customer_key})
    create_table("orders-aws-managed", {"Enabled": True, "SSEType": "KMS"})
    create_table("orders-default")
    managed_key = boto3.client("dynamodb", region_name=REGION).describe_table(TableName="orders-aws-managed")[
        "Table"
    ]["SSEDescription"]["KMSMasterKeyArn"]

    report = monitor.lambda_handler({}, lambda_context)

    logged = logged_findings(caplog)
    assert report["counts"]["scanned_tables"] == 3
    assert logged["orders-cmk"] == {
        "resource_type": "dynamodb_table",
        "name": "orders-cmk",
        "region": REGION,
        "status": "COMPLIANT",
        "reason": "KMS with a customer managed key",
        "kms_key": customer_key,
        "bucket_key_enabled": None,
        "exemption": None,
    }
    assert logged["orders-aws-managed"]["status"] == "COMPLIANT"
    assert logged["orders-aws-managed"]["reason"] == "KMS with the AWS-managed key alias/aws/dynamodb"
    assert logged["orders-aws-managed"]["kms_key"] == managed_key
    assert report["non_compliant"] == [
        {
            "resource_type": "dynamodb_table",
            "name": "orders-default",
            "region": REGION,
            "status": "NON_COMPLIANT",
            "reason": "encrypted with an AWS-owned key, not KMS",
            "kms_key": None,
            "bucket_key_enabled": None,
            "exemption": None,
        }
    ]


def test_the_scan_only_reads_kms_through_list_aliases_once_per_region(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    # kms:DescribeKey on alias/aws/dynamodb would create the AWS-managed key on AWS: never called
    for index in range(3):
        create_table(f"kms-{index}", {"Enabled": True, "SSEType": "KMS"})
    kms_operations: list[str] = []
    monitor.CLIENTS.regions[0].kms.meta.events.register(
        "before-call.kms", lambda model, **_: kms_operations.append(model.name)
    )

    monitor.lambda_handler({}, lambda_context)

    assert kms_operations == ["ListAliases"]


def test_no_kms_call_when_no_table_uses_kms(monitor: ModuleType, lambda_context: FakeLambdaContext) -> None:
    create_table("plain")
    kms_operations: list[str] = []
    monitor.CLIENTS.regions[0].kms.meta.events.register(
        "before-call.kms", lambda model, **_: kms_operations.append(model.name)
    )

    monitor.lambda_handler({}, lambda_context)

    assert kms_operations == []


def test_the_managed_key_is_found_on_a_later_page_of_aliases(layers: SimpleNamespace) -> None:
    kms = boto3.client("kms", region_name=REGION)
    with Stubber(kms) as stub:
        stub.add_response(
            "list_aliases",
            {
                "Aliases": [
                    {"AliasName": "alias/ingestion-s3", "AliasArn": "arn:aws:kms:x:1:alias/ingestion-s3"}
                ],
                "Truncated": True,
                "NextMarker": "page-2",
            },
            {"Limit": 100},
        )
        stub.add_response(
            "list_aliases",
            {
                "Aliases": [
                    {
                        "AliasName": "alias/aws/dynamodb",
                        "AliasArn": f"arn:aws-cn:kms:cn-north-1:{ACCOUNT_ID}:alias/aws/dynamodb",
                        "TargetKeyId": "0d5c-key",
                    }
                ],
                "Truncated": False,
            },
            {"Limit": 100, "Marker": "page-2"},
        )

        lookup = layers.access.find_managed_key(kms, no_wait(layers.access))

        stub.assert_no_pending_responses()
    assert lookup == layers.access.ManagedKeyLookup(
        arn=f"arn:aws-cn:kms:cn-north-1:{ACCOUNT_ID}:key/0d5c-key"
    )


@pytest.mark.parametrize(
    "aliases",
    [
        pytest.param(
            [
                {
                    "AliasName": "alias/aws/dynamodb",
                    "AliasArn": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/aws/dynamodb",
                }
            ],
            id="alias-without-target",
        ),
        pytest.param([], id="no-alias"),
    ],
)
def test_without_an_aws_managed_key_a_kms_table_has_a_customer_key(
    layers: SimpleNamespace, aliases: list[dict[str, str]]
) -> None:
    kms = boto3.client("kms", region_name=REGION)
    with Stubber(kms) as stub:
        stub.add_response("list_aliases", {"Aliases": aliases, "Truncated": False}, {"Limit": 100})
        lookup = layers.access.find_managed_key(kms, no_wait(layers.access))

    assert lookup == layers.access.ManagedKeyLookup(arn=None)
    table = {"SSEDescription": {"SSEType": "KMS", "Status": "ENABLED", "KMSMasterKeyArn": CUSTOMER_KEY_ID}}
    finding = layers.classify.classify_table("t", REGION, table, lambda: lookup)
    assert (finding["status"], finding["reason"]) == ("COMPLIANT", "KMS with a customer managed key")


def test_when_the_aliases_cannot_be_listed_a_kms_table_stays_compliant_and_says_so(
    monitor: ModuleType, lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    create_table("orders", {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": CUSTOMER_KEY_ID})

    def refuse(**_: Any) -> None:
        raise client_error("AccessDeniedException", "ListAliases", "not authorized")

    monitor.CLIENTS.regions[0].kms.meta.events.register("before-parameter-build.kms.ListAliases", refuse)

    report = monitor.lambda_handler({}, lambda_context)

    assert report["counts"]["compliant"] == 1
    finding = logged_findings(caplog)["orders"]
    assert finding["reason"] == (
        "KMS; could not tell whether the key is alias/aws/dynamodb "
        "(ListAliases failed: AccessDeniedException: not authorized)"
    )
    assert finding["kms_key"] == CUSTOMER_KEY_ID


@pytest.mark.parametrize(
    ("alias_arn", "target", "key_arn"),
    [
        pytest.param(
            f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/aws/dynamodb",
            "1234abcd",
            f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd",
            id="aws",
        ),
        pytest.param(
            f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT_ID}:alias/aws/dynamodb",
            "1234abcd",
            f"arn:aws-us-gov:kms:us-gov-west-1:{ACCOUNT_ID}:key/1234abcd",
            id="gov-cloud",
        ),
        pytest.param(
            f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:alias/aws/dynamodb",
            f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd",
            f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/1234abcd",
            id="target-already-an-arn",
        ),
    ],
)
def test_the_key_arn_is_built_from_the_alias_arn(
    layers: SimpleNamespace, alias_arn: str, target: str, key_arn: str
) -> None:
    assert layers.access.key_arn_of_alias(alias_arn, target) == key_arn


@pytest.mark.parametrize(
    ("sse", "reason"),
    [
        pytest.param(
            {"SSEType": "KMS", "Status": "DISABLED", "KMSMasterKeyArn": CUSTOMER_KEY_ID},
            "server-side encryption is type KMS, status DISABLED (expected KMS, ENABLED)",
            id="disabled",
        ),
        pytest.param(
            {
                "SSEType": "KMS",
                "Status": "INACCESSIBLE_ENCRYPTION_CREDENTIALS",
                "KMSMasterKeyArn": CUSTOMER_KEY_ID,
            },
            "server-side encryption is type KMS, status INACCESSIBLE_ENCRYPTION_CREDENTIALS "
            "(expected KMS, ENABLED)",
            id="key-inaccessible",
        ),
        pytest.param(
            {"SSEType": "AES256", "Status": "ENABLED"},
            "server-side encryption is type AES256, status ENABLED (expected KMS, ENABLED)",
            id="aes256",
        ),
    ],
)
def test_kms_that_is_not_in_effect_is_not_compliant(
    layers: SimpleNamespace, sse: dict[str, Any], reason: str
) -> None:
    def no_lookup() -> Any:
        raise AssertionError("the AWS-managed key is only looked up for KMS tables in effect")

    finding = layers.classify.classify_table("t", REGION, {"SSEDescription": sse}, no_lookup)

    assert (finding["status"], finding["reason"]) == ("NON_COMPLIANT", reason)


def test_an_updating_kms_table_is_compliant(layers: SimpleNamespace) -> None:
    table = {"SSEDescription": {"SSEType": "KMS", "Status": "UPDATING", "KMSMasterKeyArn": CUSTOMER_KEY_ID}}

    finding = layers.classify.classify_table(
        "t", REGION, table, lambda: layers.access.ManagedKeyLookup(arn=None)
    )

    assert finding["status"] == "COMPLIANT"


def test_a_table_deleted_during_the_scan_is_an_error_and_the_scan_continues(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    # Given a table that disappears between ListTables and DescribeTable
    for name in ("alpha", "ephemeral", "omega"):
        create_table(name)
    other_client = boto3.client("dynamodb", region_name=REGION)

    def delete_first(params: dict[str, Any], **_: Any) -> None:
        if params["TableName"] == "ephemeral":
            other_client.delete_table(TableName="ephemeral")

    monitor.CLIENTS.regions[0].dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.DescribeTable", delete_first
    )

    report = monitor.lambda_handler({}, lambda_context)

    findings = by_name(report)
    assert findings["ephemeral"]["status"] == "ERROR"
    assert findings["ephemeral"]["reason"].startswith("DescribeTable failed: ResourceNotFoundException")
    assert findings["alpha"]["status"] == findings["omega"]["status"] == "NON_COMPLIANT"
    assert report["counts"]["scanned_tables"] == 3


def test_more_than_one_page_of_tables_is_scanned(
    monitor: ModuleType, lambda_context: FakeLambdaContext, alert_topic: SubscribedTopic
) -> None:
    # ListTables returns at most 100 names per page
    for index in range(130):
        create_table(f"table-{index:03d}")
    pages = calls_to(monitor.CLIENTS.regions[0].dynamodb, "ListTables")

    report = monitor.lambda_handler({}, lambda_context)

    assert len(pages) == 2
    assert pages[1]["ExclusiveStartTableName"] == "table-099"
    assert report["counts"]["scanned_tables"] == 130
    assert len(report["non_compliant"]) == 130
    [alert] = alert_topic.received()
    assert "table-000 " in alert["Message"]
    assert "table-129 " in alert["Message"]
    assert "more" not in alert["Message"]


# --- regions -----------------------------------------------------------------------------------


def test_tables_of_every_configured_region_are_scanned(
    load_monitor: Callable[..., ModuleType], lambda_context: FakeLambdaContext, alert_topic: SubscribedTopic
) -> None:
    create_table("home-table", region=REGION)
    create_table("away-table", region=OTHER_REGION)
    monitor = load_monitor(f" {REGION}, {OTHER_REGION} ,{REGION},")

    report = monitor.lambda_handler({}, lambda_context)

    assert [clients.region for clients in monitor.CLIENTS.regions] == [REGION, OTHER_REGION]
    findings = by_name(report)
    assert findings["home-table"]["region"] == REGION
    assert findings["away-table"]["region"] == OTHER_REGION
    [alert] = alert_topic.received()
    assert f"table(s) in {REGION}, {OTHER_REGION}." in alert["Message"]
    assert (
        f"- [NON_COMPLIANT] dynamodb_table away-table ({OTHER_REGION}): encrypted with an AWS-owned key"
        in alert["Message"]
    )


def test_a_region_that_cannot_be_listed_is_an_error_and_other_regions_are_scanned(
    load_monitor: Callable[..., ModuleType], lambda_context: FakeLambdaContext
) -> None:
    create_table("home-table", region=REGION)
    monitor = load_monitor(f"{OTHER_REGION},{REGION}")

    def deny(**_: Any) -> None:
        raise client_error("AccessDeniedException", "ListTables", "not authorized")

    monitor.CLIENTS.regions[0].dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.ListTables", deny
    )

    report = monitor.lambda_handler({}, lambda_context)

    [error] = report["errors"]
    assert (error["resource_type"], error["name"], error["region"]) == ("dynamodb_table", "*", OTHER_REGION)
    assert error["reason"] == "ListTables failed: AccessDeniedException: not authorized"
    assert by_name(report)["home-table"]["region"] == REGION


def test_without_scan_regions_the_function_scans_its_own_region(
    load_function: Callable[..., ModuleType], alert_topic: SubscribedTopic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", OTHER_REGION)

    monitor = load_function("lambda_security_monitor", ALERT_TOPIC_ARN=alert_topic.arn)

    assert monitor.CONFIG.scan_regions == (OTHER_REGION,)


@pytest.mark.parametrize(
    ("environ", "regions"),
    [
        pytest.param({"SCAN_REGIONS": "", "AWS_REGION": REGION}, (REGION,), id="empty"),
        pytest.param({"SCAN_REGIONS": " , ", "AWS_REGION": REGION}, (REGION,), id="only-separators"),
        pytest.param(
            {"SCAN_REGIONS": "eu-west-1,eu-west-1", "AWS_REGION": REGION}, ("eu-west-1",), id="duplicates"
        ),
    ],
)
def test_scan_regions_are_parsed(
    layers: SimpleNamespace, environ: dict[str, str], regions: tuple[str, ...]
) -> None:
    assert layers.config.parse_regions(environ) == regions


def test_no_region_at_all_is_a_configuration_error(layers: SimpleNamespace) -> None:
    with pytest.raises(
        layers.config.ConfigurationError, match="SCAN_REGIONS is empty and AWS_REGION is not set"
    ):
        layers.config.parse_regions({})


def test_a_missing_alert_topic_is_a_configuration_error(load_function: Callable[..., ModuleType]) -> None:
    with pytest.raises(RuntimeError, match="ALERT_TOPIC_ARN is not set") as caught:
        load_function("lambda_security_monitor", SCAN_REGIONS=REGION)

    assert type(caught.value).__name__ == "ConfigurationError"


# --- concurrency and clients -------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, 16), ("", 16), ("1", 1), (" 8 ", 8), ("64", 64)])
def test_scan_concurrency_is_read_from_the_environment(
    layers: SimpleNamespace, value: str | None, expected: int
) -> None:
    environ = {} if value is None else {"SCAN_CONCURRENCY": value}

    assert layers.config.parse_scan_concurrency(environ) == expected


@pytest.mark.parametrize("value", ["0", "65", "-1", "1.5", "sixteen", "1e3"])
def test_an_unusable_scan_concurrency_is_a_configuration_error(
    load_function: Callable[..., ModuleType], value: str
) -> None:
    with pytest.raises(RuntimeError, match="SCAN_CONCURRENCY must be a whole number from 1 to 64") as caught:
        load_function(
            "lambda_security_monitor",
            ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:unused",
            SCAN_REGIONS=REGION,
            SCAN_CONCURRENCY=value,
        )

    assert type(caught.value).__name__ == "ConfigurationError"
    assert repr(value) in str(caught.value)


class GatedS3:
    """Stands in for the S3 client: GetBucketEncryption waits until ``width`` calls are in
    flight together (or fails after 10 s), and the most ever in flight is recorded."""

    def __init__(self, names: list[str], width: int) -> None:
        self.names = names
        self.gate = threading.Barrier(width, timeout=10)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def list_buckets(self, **_: Any) -> dict[str, Any]:
        return {"Buckets": [{"Name": name, "BucketRegion": REGION} for name in self.names]}

    def get_bucket_encryption(self, Bucket: str) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.gate.wait()
            time.sleep(0.01)  # let any extra worker show up in in_flight
        finally:
            with self.lock:
                self.in_flight -= 1
        return {"ServerSideEncryptionConfiguration": kms_rule("aws:kms", CUSTOMER_KEY_ID)}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_checks_run_concurrently_never_more_than_scan_concurrency(
    layers: SimpleNamespace, concurrency: int
) -> None:
    names = [f"bucket-{index:02d}" for index in range(4 * concurrency)]
    s3 = GatedS3(names, width=concurrency)
    clients = layers.access.ScanClients(s3=s3, sns=None, regions=())
    config = layers.config.MonitorConfig(
        alert_topic_arn="unused", scan_regions=(REGION,), scan_concurrency=concurrency
    )

    report = layers.index.run_scan(clients, config, no_wait(layers.access))

    assert report["counts"]["compliant"] == len(names)
    assert s3.most_in_flight == concurrency


def test_clients_are_created_once_per_container_with_explicit_retries(
    load_monitor: Callable[..., ModuleType],
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor = load_monitor(SCAN_CONCURRENCY="24")
    s3 = monitor.CLIENTS.s3

    def no_new_clients(*_: Any, **__: Any) -> None:
        raise AssertionError("a client was created during an invocation")

    monkeypatch.setattr(boto3, "client", no_new_clients)
    monitor.lambda_handler({}, lambda_context)
    monitor.lambda_handler({}, lambda_context)

    assert monitor.CLIENTS.s3 is s3
    for client in (s3, monitor.CLIENTS.regions[0].dynamodb, monitor.CLIENTS.regions[0].kms):
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert client.meta.config.max_pool_connections == 24


# --- throttling --------------------------------------------------------------------------------


def test_a_throttled_check_is_retried_with_exponential_backoff(
    monitor: ModuleType, lambda_context: FakeLambdaContext, retry_sleeps: list[float]
) -> None:
    create_bucket("busy-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    refusals = iter(["SlowDown", "SlowDown", "SlowDown"])

    def throttle(**_: Any) -> None:
        code = next(refusals, None)
        if code is not None:
            raise client_error(code, "GetBucketEncryption", "Please reduce your request rate.")

    monitor.CLIENTS.s3.meta.events.register("before-parameter-build.s3.GetBucketEncryption", throttle)

    report = monitor.lambda_handler({}, lambda_context)

    assert report["counts"]["compliant"] == 1
    assert report["errors"] == []
    assert retry_sleeps == [0.5, 1.0, 2.0]  # jitter at its maximum: the caps themselves


def test_a_resource_still_throttled_after_every_attempt_is_an_error_and_the_scan_goes_on(
    monitor: ModuleType, lambda_context: FakeLambdaContext, retry_sleeps: list[float]
) -> None:
    create_table("hot-table")
    create_table("calm-table")

    def throttle(params: dict[str, Any], **_: Any) -> None:
        if params["TableName"] == "hot-table":
            raise client_error("ThrottlingException", "DescribeTable", "Rate exceeded")

    monitor.CLIENTS.regions[0].dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.DescribeTable", throttle
    )

    report = monitor.lambda_handler({}, lambda_context)

    findings = by_name(report)
    assert findings["hot-table"]["status"] == "ERROR"
    assert findings["hot-table"]["reason"] == (
        "DescribeTable failed: ThrottlingException: Rate exceeded (still throttled after 4 attempts)"
    )
    assert findings["calm-table"]["status"] == "NON_COMPLIANT"
    assert len(retry_sleeps) == 3
    assert report["alert_sent"] is True


def test_a_throttled_listing_page_is_retried(monitor: ModuleType, lambda_context: FakeLambdaContext) -> None:
    create_bucket("only-bucket", kms_rule("AES256"))
    refusals = iter(["RequestLimitExceeded"])

    def throttle(**_: Any) -> None:
        code = next(refusals, None)
        if code is not None:
            raise client_error(code, "ListBuckets", "slow down")

    monitor.CLIENTS.s3.meta.events.register("before-parameter-build.s3.ListBuckets", throttle)

    report = monitor.lambda_handler({}, lambda_context)

    assert report["errors"] == []
    assert report["counts"]["scanned_buckets"] == 1


@pytest.mark.parametrize(
    "code",
    [
        "Throttling",
        "ThrottlingException",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
    ],
)
def test_each_throttling_code_is_retried_until_the_attempts_run_out(
    layers: SimpleNamespace, code: str
) -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def call() -> None:
        calls.append(1)
        raise client_error(code, "GetBucketEncryption", "slow down")

    policy = layers.access.RetryPolicy(attempts=3, sleep=sleeps.append, jitter=lambda: 0.5)
    with pytest.raises(layers.access.AwsCallError) as caught:
        layers.access.aws_call("GetBucketEncryption", call, policy)

    assert len(calls) == 3
    assert sleeps == [0.25, 0.5]
    assert caught.value.code == code
    assert caught.value.describe().endswith("(still throttled after 3 attempts)")


def test_other_errors_are_not_retried(layers: SimpleNamespace) -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise client_error("AccessDenied", "GetBucketEncryption")

    with pytest.raises(layers.access.AwsCallError) as caught:
        layers.access.aws_call("GetBucketEncryption", call, no_wait(layers.access))

    assert len(calls) == 1
    assert caught.value.describe() == "GetBucketEncryption failed: AccessDenied: Access Denied"


def test_an_error_without_a_message_is_described_by_its_code(layers: SimpleNamespace) -> None:
    def call() -> None:
        raise ClientError({"Error": {"Code": "NoSuchBucket"}}, "GetBucketEncryption")

    with pytest.raises(layers.access.AwsCallError) as caught:
        layers.access.aws_call("GetBucketEncryption", call, no_wait(layers.access))

    assert caught.value.describe() == "GetBucketEncryption failed: NoSuchBucket"


def test_a_connection_error_is_an_aws_call_error(layers: SimpleNamespace) -> None:
    def call() -> None:
        raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    with pytest.raises(layers.access.AwsCallError, match="ListBuckets failed: EndpointConnectionError"):
        layers.access.aws_call("ListBuckets", call, no_wait(layers.access))


def test_backoff_grows_exponentially_up_to_its_cap(layers: SimpleNamespace) -> None:
    policy = layers.access.RetryPolicy(base_delay_seconds=0.5, max_delay_seconds=3.0, jitter=lambda: 1.0)

    assert [policy.delay(attempt) for attempt in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert layers.access.RetryPolicy(jitter=lambda: 0.0).delay(3) == 0.0


# --- exemptions --------------------------------------------------------------------------------


def declared(**reasons: str) -> str:
    """SECURITY_SCAN_EXEMPTIONS as Terraform writes it: jsonencode(var.security_scan_exemptions)."""
    return json.dumps(reasons)


def test_a_declared_exemption_exempts_with_the_declared_reason_whatever_the_tags(
    load_monitor: Callable[..., ModuleType],
    lambda_context: FakeLambdaContext,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    # Given a non-compliant bucket and table named in security_scan_exemptions; the bucket also
    # carries an exemption tag with a reason of its own, the table none
    create_bucket(
        "legacy-bucket", kms_rule("AES256"), tags={EXEMPTION_TAG: "self-declared, SEC-999", "team": "x"}
    )
    create_table("legacy-table")
    monitor = load_monitor(
        SECURITY_SCAN_EXEMPTIONS=declared(
            **{"legacy-bucket": "vendor-managed, SEC-123", "legacy-table": "replicated from on-prem, SEC-124"}
        )
    )
    bucket_lookups = calls_to(monitor.CLIENTS.s3, "GetBucketTagging")
    table_lookups = calls_to(monitor.CLIENTS.regions[0].dynamodb, "ListTagsOfResource")

    report = monitor.lambda_handler({}, lambda_context)

    # Then both are exempted with the reason Terraform declared; tags are neither needed nor read
    assert report["exempted"] == [
        {
            "resource_type": "dynamodb_table",
            "name": "legacy-table",
            "region": REGION,
            "status": "EXEMPTED",
            "reason": "encrypted with an AWS-owned key, not KMS",
            "kms_key": None,
            "bucket_key_enabled": None,
            "exemption": "replicated from on-prem, SEC-124",
        },
        {
            "resource_type": "s3_bucket",
            "name": "legacy-bucket",
            "region": None,
            "status": "EXEMPTED",
            "reason": "SSE-S3, not KMS",
            "kms_key": None,
            "bucket_key_enabled": None,
            "exemption": "vendor-managed, SEC-123",
        },
    ]
    assert report["non_compliant"] == report["errors"] == []
    assert bucket_lookups == table_lookups == []
    assert report["alert_sent"] is True
    assert read_metrics() == {
        "CompliantResources": 0,
        "NonCompliantResources": 0,
        "ExemptedResources": 2,
        "ScanErrors": 0,
    }


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("vendor-managed, SEC-123", '"vendor-managed, SEC-123"', id="reason"),
        pytest.param("", '""', id="empty"),
        pytest.param("ok\u202etxt.exe", '"ok\\u202etxt.exe"', id="right-to-left-override"),
    ],
)
def test_an_exemption_tag_alone_exempts_nothing_and_the_finding_says_so(
    monitor: ModuleType,
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    value: str,
    shown: str,
) -> None:
    # Given a non-compliant bucket and table tagged with the exemption tag, and nothing declared
    create_bucket("tagged-bucket", kms_rule("AES256"), tags={EXEMPTION_TAG: value})
    create_table("tagged-table", tags={EXEMPTION_TAG: value})

    report = monitor.lambda_handler({}, lambda_context)

    # Then both stay non-compliant, each finding naming the tag (its value escaped) as undeclared
    note = f"tagged SecurityScanExemption={shown} but not declared in security_scan_exemptions"
    findings = by_name(report)
    assert {name: (f["status"], f["reason"], f["exemption"]) for name, f in findings.items()} == {
        "tagged-bucket": ("NON_COMPLIANT", f"SSE-S3, not KMS; {note}", None),
        "tagged-table": ("NON_COMPLIANT", f"encrypted with an AWS-owned key, not KMS; {note}", None),
    }
    assert report["exempted"] == []
    assert report["alert_sent"] is True
    [alert] = alert_topic.received()
    assert (
        f"- [NON_COMPLIANT] s3_bucket tagged-bucket (region unknown): SSE-S3, not KMS; {note}\n"
        in (alert["Message"])
    )
    assert "\u202e" not in alert["Message"]


def test_a_scan_where_every_finding_is_exempted_sends_one_alert_listing_the_exemptions(
    load_monitor: Callable[..., ModuleType],
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
) -> None:
    create_bucket("good-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    create_bucket("archive-bucket", None)
    create_table("scratch-table")
    monitor = load_monitor(
        SECURITY_SCAN_EXEMPTIONS=declared(
            **{"archive-bucket": "vendor\u202egpj.exe, SEC-7", "scratch-table": "rebuilt nightly, SEC-8"}
        )
    )

    report = monitor.lambda_handler({}, lambda_context)

    assert report["counts"]["exempted"] == 2
    assert report["non_compliant"] == report["errors"] == []
    assert report["alert_sent"] is True
    [alert] = alert_topic.received()
    assert alert["Subject"] == "Security monitor: 0 non-compliant, 0 error(s), 2 exempted"
    assert alert["Message"] == (
        "Encryption scan found 0 non-compliant, 0 error(s), 2 exempted.\n"
        "Scanned 2 S3 bucket(s) and 1 DynamoDB table(s) in us-east-1. Every bucket and table must "
        "use KMS encryption.\n\n"
        "- [EXEMPTED] dynamodb_table scratch-table (us-east-1): encrypted with an AWS-owned key, not "
        'KMS; exempted by security_scan_exemptions: "rebuilt nightly, SEC-8"\n'
        "- [EXEMPTED] s3_bucket archive-bucket (region unknown): no default encryption; "
        'exempted by security_scan_exemptions: "vendor\\u202egpj.exe, SEC-7"\n'
    )


def test_declared_exemptions_that_match_no_finding_alert_nothing_and_are_logged(
    load_monitor: Callable[..., ModuleType],
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given declared exemptions for a compliant bucket and for a bucket that does not exist
    create_bucket("kms-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    monitor = load_monitor(
        SECURITY_SCAN_EXEMPTIONS=declared(**{"kms-bucket": "SEC-1", "gone-bucket": "SEC-2"})
    )

    report = monitor.lambda_handler({}, lambda_context)

    # Then there is no finding and no alert, and one warning names the stale declarations
    assert report["counts"]["compliant"] == 1
    assert report["exempted"] == report["non_compliant"] == []
    assert report["alert_sent"] is False
    assert alert_topic.received() == []
    [warning] = [record for record in caplog.records if hasattr(record, "unused_exemptions")]
    assert warning.levelno == logging.WARNING
    assert warning.unused_exemptions == ["gone-bucket", "kms-bucket"]


def test_a_declared_name_does_not_hide_an_error(
    load_monitor: Callable[..., ModuleType], lambda_context: FakeLambdaContext
) -> None:
    create_bucket("locked-bucket", None)
    monitor = load_monitor(SECURITY_SCAN_EXEMPTIONS=declared(**{"locked-bucket": "SEC-3"}))

    def deny(**_: Any) -> None:
        raise client_error("AccessDenied", "GetBucketEncryption")

    monitor.CLIENTS.s3.meta.events.register("before-parameter-build.s3.GetBucketEncryption", deny)

    report = monitor.lambda_handler({}, lambda_context)

    [finding] = report["errors"]
    assert (finding["name"], finding["status"], finding["exemption"]) == ("locked-bucket", "ERROR", None)
    assert report["exempted"] == []


def test_tags_are_read_only_for_resources_that_are_not_compliant(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    create_bucket("good-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID), tags={EXEMPTION_TAG: "not needed"})
    create_bucket("bad-bucket", kms_rule("AES256"))
    create_table("good-table", {"Enabled": True, "SSEType": "KMS"}, tags={EXEMPTION_TAG: "not needed"})
    create_table("bad-table")
    bucket_lookups = calls_to(monitor.CLIENTS.s3, "GetBucketTagging")
    table_lookups = calls_to(monitor.CLIENTS.regions[0].dynamodb, "ListTagsOfResource")

    report = monitor.lambda_handler({}, lambda_context)

    assert [call["Bucket"] for call in bucket_lookups] == ["bad-bucket"]
    assert [call["ResourceArn"] for call in table_lookups] == [
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/bad-table"
    ]
    assert report["counts"]["compliant"] == 2
    assert sorted(by_name(report)) == ["bad-bucket", "bad-table"]  # no tag, no note


def test_the_exemption_tag_key_comes_from_the_environment(
    load_monitor: Callable[..., ModuleType], lambda_context: FakeLambdaContext
) -> None:
    create_bucket(
        "old-bucket", kms_rule("AES256"), tags={"Exempt": "archived, SEC-9", EXEMPTION_TAG: "ignored"}
    )
    monitor = load_monitor(EXEMPTION_TAG_KEY="Exempt")

    report = monitor.lambda_handler({}, lambda_context)

    [finding] = report["non_compliant"]
    assert finding["reason"] == (
        'SSE-S3, not KMS; tagged Exempt="archived, SEC-9" but not declared in security_scan_exemptions'
    )


@pytest.mark.parametrize(
    ("value", "expected"), [(None, EXEMPTION_TAG), ("", EXEMPTION_TAG), ("Exempt", "Exempt")]
)
def test_the_exemption_tag_key_defaults(layers: SimpleNamespace, value: str | None, expected: str) -> None:
    environ = {} if value is None else {"EXEMPTION_TAG_KEY": value}

    assert layers.config.parse_exemption_tag_key(environ) == expected


def test_a_tag_key_longer_than_aws_allows_is_a_configuration_error(layers: SimpleNamespace) -> None:
    with pytest.raises(layers.config.ConfigurationError, match="at most 128"):
        layers.config.parse_exemption_tag_key({"EXEMPTION_TAG_KEY": "k" * 129})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ("  ", {}),
        ("{}", {}),
        (
            '{"a-bucket": "SEC-1", "a-table": "replica, SEC-2"}',
            {"a-bucket": "SEC-1", "a-table": "replica, SEC-2"},
        ),
    ],
)
def test_declared_exemptions_are_parsed(
    layers: SimpleNamespace, value: str | None, expected: dict[str, str]
) -> None:
    environ = {} if value is None else {"SECURITY_SCAN_EXEMPTIONS": value}

    assert dict(layers.config.parse_scan_exemptions(environ)) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param('{"a-bucket": "SEC-1"', "is not valid JSON", id="truncated"),
        pytest.param("a-bucket=SEC-1", "is not valid JSON", id="not-json"),
        pytest.param('["a-bucket"]', "must be a JSON object of name -> reason, got list", id="list"),
        pytest.param("null", "must be a JSON object of name -> reason, got NoneType", id="null"),
        pytest.param('{"a-bucket": ""}', "the reason for 'a-bucket' must be a non-empty string", id="empty"),
        pytest.param('{"a-bucket": " "}', "the reason for 'a-bucket' must be a non-empty string", id="blank"),
        pytest.param('{"a-bucket": 1}', "the reason for 'a-bucket' must be a non-empty string", id="number"),
        pytest.param(
            '{"a-bucket": null}', "the reason for 'a-bucket' must be a non-empty string", id="null-reason"
        ),
        pytest.param('{"": "SEC-1"}', "has an empty resource name", id="no-name"),
    ],
)
def test_unusable_declared_exemptions_are_a_configuration_error(
    load_function: Callable[..., ModuleType], value: str, message: str
) -> None:
    with pytest.raises(RuntimeError, match=message) as caught:
        load_function(
            "lambda_security_monitor",
            ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:unused",
            SCAN_REGIONS=REGION,
            SECURITY_SCAN_EXEMPTIONS=value,
        )

    assert type(caught.value).__name__ == "ConfigurationError"
    assert str(caught.value).startswith("SECURITY_SCAN_EXEMPTIONS")


def test_unreadable_tags_leave_the_resource_non_compliant_and_say_why(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    create_bucket("private-bucket", kms_rule("AES256"), tags={EXEMPTION_TAG: "would exempt"})

    def deny(**_: Any) -> None:
        raise client_error("AccessDenied", "GetBucketTagging")

    monitor.CLIENTS.s3.meta.events.register("before-parameter-build.s3.GetBucketTagging", deny)

    report = monitor.lambda_handler({}, lambda_context)

    [finding] = report["non_compliant"]
    assert finding["reason"] == (
        "SSE-S3, not KMS; exemption tag SecurityScanExemption could not be read: "
        "GetBucketTagging failed: AccessDenied: Access Denied"
    )


def test_table_tags_are_read_page_by_page(layers: SimpleNamespace) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/t"
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "list_tags_of_resource",
            {"Tags": [{"Key": "team", "Value": "data"}], "NextToken": "next"},
            {"ResourceArn": arn},
        )
        stub.add_response(
            "list_tags_of_resource",
            {"Tags": [{"Key": EXEMPTION_TAG, "Value": "SEC-1"}]},
            {"ResourceArn": arn, "NextToken": "next"},
        )

        tags = layers.access.table_tags(dynamodb, arn, no_wait(layers.access))

        stub.assert_no_pending_responses()
    assert tags == {"team": "data", EXEMPTION_TAG: "SEC-1"}


def test_an_exemption_tag_on_the_second_page_of_tags_is_reported(
    monitor: ModuleType, lambda_context: FakeLambdaContext, alert_topic: SubscribedTopic
) -> None:
    # Given a table on the AWS-owned key with ten other tags first, so that ListTagsOfResource
    # (moto: ten tags a page) returns the exemption tag only on the page after a NextToken
    tags = {f"tag-{index:02d}": "x" for index in range(10)} | {EXEMPTION_TAG: "legacy import, SEC-7"}
    create_table("paged-tags-table", tags=tags)
    pages = []
    monitor.CLIENTS.regions[0].dynamodb.meta.events.register(
        "after-call.dynamodb.ListTagsOfResource", lambda parsed, **_: pages.append(parsed)
    )

    # When the monitor scans
    report = monitor.lambda_handler({}, lambda_context)

    # Then the tag was found on the second page, and the undeclared table is non-compliant
    assert [bool(page.get("NextToken")) for page in pages] == [True, False]
    assert EXEMPTION_TAG not in {tag["Key"] for tag in pages[0]["Tags"]}
    [finding] = report["non_compliant"]
    assert (finding["name"], finding["status"], finding["exemption"]) == (
        "paged-tags-table",
        "NON_COMPLIANT",
        None,
    )
    assert finding["reason"].endswith(
        'tagged SecurityScanExemption="legacy import, SEC-7" but not declared in security_scan_exemptions'
    )
    assert report["alert_sent"] is True
    assert len(alert_topic.received()) == 1


# --- report and alert --------------------------------------------------------------------------


def test_everything_compliant_sends_no_alert_and_lists_nothing(
    monitor: ModuleType,
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    create_bucket("kms-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    create_table("orders", {"Enabled": True, "SSEType": "KMS"})

    report = monitor.lambda_handler({}, lambda_context)

    assert report == {
        "counts": {
            "scanned": 2,
            "scanned_buckets": 1,
            "scanned_tables": 1,
            "compliant": 2,
            "non_compliant": 0,
            "exempted": 0,
            "errors": 0,
        },
        "non_compliant": [],
        "exempted": [],
        "errors": [],
        "alert_sent": False,
    }
    assert alert_topic.received() == []
    # Compliant resources are counted and logged, one line each
    assert sorted(logged_findings(caplog)) == ["kms-bucket", "orders"]
    assert read_metrics() == {
        "CompliantResources": 2,
        "NonCompliantResources": 0,
        "ExemptedResources": 0,
        "ScanErrors": 0,
    }


def test_the_report_is_bounded_whatever_the_account_holds(
    monitor: ModuleType,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    alert_topic: SubscribedTopic,
) -> None:
    monkeypatch.setattr(monitor_layers(monitor).report, "MAX_REPORTED_FINDINGS", 3)
    for index in range(5):
        create_bucket(f"plain-{index}", None)
    for index in range(4):
        create_bucket(f"kms-{index}", kms_rule("aws:kms", CUSTOMER_KEY_ID))

    report = monitor.lambda_handler({}, lambda_context)

    assert set(report) == REPORT_KEYS
    assert report["counts"]["non_compliant"] == 5
    assert report["counts"]["compliant"] == 4
    assert [finding["name"] for finding in report["non_compliant"]] == ["plain-0", "plain-1", "plain-2"]
    # The alert still names all five
    [alert] = alert_topic.received()
    assert all(f"plain-{index} " in alert["Message"] for index in range(5))


def test_the_alert_lists_problems_then_exemptions_for_a_human(
    load_monitor: Callable[..., ModuleType],
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    create_bucket("good-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    create_bucket("sse-s3-bucket", kms_rule("AES256"))
    create_bucket("plain-bucket", None)
    create_bucket("exempt-bucket", None)
    create_table("orders-default")
    create_table("orders-kms", {"Enabled": True, "SSEType": "KMS"})
    monitor = load_monitor(
        SECURITY_SCAN_EXEMPTIONS=declared(**{"exempt-bucket": "vendor\u202egpj.exe, SEC-7"})
    )

    report = monitor.lambda_handler({}, lambda_context)

    # One JSON line per finding, at a level that matches its status
    finding_logs = [record for record in caplog.records if hasattr(record, "finding")]
    assert sorted((record.finding["name"], record.levelno) for record in finding_logs) == [
        ("exempt-bucket", logging.INFO),
        ("good-bucket", logging.INFO),
        ("orders-default", logging.WARNING),
        ("orders-kms", logging.INFO),
        ("plain-bucket", logging.WARNING),
        ("sse-s3-bucket", logging.WARNING),
    ]
    # One alert with each non-compliant resource (type, name, region, reason), then the exemptions
    [alert] = alert_topic.received()
    assert alert["Subject"] == "Security monitor: 3 non-compliant, 0 error(s), 1 exempted"
    message = alert["Message"]
    assert message.startswith("Encryption scan found 3 non-compliant, 0 error(s), 1 exempted.\n")
    assert "Scanned 4 S3 bucket(s) and 2 DynamoDB table(s) in us-east-1." in message
    problems = (
        "- [NON_COMPLIANT] dynamodb_table orders-default (us-east-1): encrypted with an AWS-owned key, not KMS\n"
        "- [NON_COMPLIANT] s3_bucket plain-bucket (region unknown): no default encryption\n"
        "- [NON_COMPLIANT] s3_bucket sse-s3-bucket (region unknown): SSE-S3, not KMS\n"
        "- [EXEMPTED] s3_bucket exempt-bucket (region unknown): no default encryption; "
        'exempted by security_scan_exemptions: "vendor\\u202egpj.exe, SEC-7"\n'
    )
    assert message.endswith("\n\n" + problems)
    assert "\u202e" not in message
    assert "good-bucket" not in message
    assert "orders-kms" not in message
    assert read_metrics() == {
        "CompliantResources": 2,
        "NonCompliantResources": 3,
        "ExemptedResources": 1,
        "ScanErrors": 0,
    }
    # And the report is what the Lambda runtime can serialize
    assert json.loads(json.dumps(report)) == report
    assert all(set(finding) == FINDING_KEYS for finding in report["non_compliant"] + report["exempted"])


def test_the_subject_stays_short_ascii(layers: SimpleNamespace) -> None:
    tally = layers.scan.ScanTally(scanned_buckets=10**40)

    subject, _ = layers.report.build_alert(tally, (REGION,))

    assert subject.isascii()
    assert len(subject) <= 100


def test_a_huge_alert_is_truncated_below_the_sns_limit(
    monitor: ModuleType, alert_topic: SubscribedTopic
) -> None:
    layers = monitor_layers(monitor)
    report = layers.report
    # Given more problems than one SNS message (256 KiB) can list
    findings = [
        layers.classify.new_finding(
            "dynamodb_table", f"table-{index:05d}-" + "x" * 200, REGION, "NON_COMPLIANT", "AWS-owned key"
        )
        for index in range(3000)
    ]
    tally = layers.scan.ScanTally(scanned_tables=3000, non_compliant=findings)
    assert sum(len(report.format_finding(finding)) for finding in findings) > 256 * 1024

    _, message = report.build_alert(tally, (REGION,))

    # Then the listing stops in time and says how many were left out
    assert len(message.encode("utf-8")) <= report.MAX_ALERT_BYTES < 256 * 1024
    listed = message.count("\n- [NON_COMPLIANT] ")
    assert 0 < listed < 3000
    assert message.endswith(f"\n... and {3000 - listed} more\n")
    assert "table-00000-" in message
    # And SNS accepts it as it is
    report.publish_alert(monitor.logger, monitor.CLIENTS.sns, alert_topic.arn, tally, (REGION,))
    [alert] = alert_topic.received()
    assert alert["Message"] == message
