"""Security Monitor Lambda against moto: buckets and tables classified, one alert when needed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

if TYPE_CHECKING:
    from tests.conftest import FakeLambdaContext, SubscribedTopic

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
CUSTOMER_KEY_ID = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def kms_rule(algorithm: str, key_id: str | None = None, bucket_key: bool | None = None) -> dict[str, Any]:
    default: dict[str, Any] = {"SSEAlgorithm": algorithm}
    if key_id is not None:
        default["KMSMasterKeyID"] = key_id
    rule: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": default}
    if bucket_key is not None:
        rule["BucketKeyEnabled"] = bucket_key
    return {"Rules": [rule]}


def create_bucket(name: str, encryption: dict[str, Any] | None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=name)
    if encryption is not None:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)


def create_table(name: str, sse: dict[str, Any] | None = None, region: str = REGION) -> None:
    extra = {"SSESpecification": sse} if sse is not None else {}
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
    findings = report["compliant"] + report["non_compliant"] + report["errors"]
    return {finding["name"]: finding for finding in findings}


@pytest.fixture
def load_monitor(
    load_function: Callable[..., ModuleType], alert_topic: SubscribedTopic
) -> Callable[..., ModuleType]:
    def load(scan_regions: str = REGION) -> ModuleType:
        return load_function(
            "lambda_security_monitor", ALERT_TOPIC_ARN=alert_topic.arn, SCAN_REGIONS=scan_regions
        )

    return load


@pytest.fixture
def monitor(load_monitor: Callable[..., ModuleType]) -> ModuleType:
    return load_monitor()


@pytest.fixture
def monitor_functions(load_function: Callable[..., ModuleType]) -> ModuleType:
    """The monitor module for tests of its pure functions: no AWS resources behind its settings."""
    return load_function(
        "lambda_security_monitor",
        ALERT_TOPIC_ARN=f"arn:aws:sns:{REGION}:123456789012:unused",
        SCAN_REGIONS=REGION,
    )


# --- buckets -----------------------------------------------------------------------------------


def test_each_kind_of_bucket_is_classified(
    monitor: ModuleType, lambda_context: FakeLambdaContext, alert_topic: SubscribedTopic
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

    monitor.S3.meta.events.register("before-parameter-build.s3.GetBucketEncryption", deny_locked)

    # When the monitor runs
    report = monitor.lambda_handler({}, lambda_context)

    # Then every bucket is classified, and the denied one is an error, not a stop
    assert report["scanned_buckets"] == 6
    findings = by_name(report)
    assert findings["kms-bucket"] == {
        "resource_type": "s3_bucket",
        "name": "kms-bucket",
        "region": None,
        "status": "COMPLIANT",
        "reason": f"aws:kms with key {CUSTOMER_KEY_ID}, S3 Bucket Key enabled",
        "kms_key": CUSTOMER_KEY_ID,
        "bucket_key_enabled": True,
    }
    assert findings["kms-default-key-bucket"]["status"] == "COMPLIANT"
    assert (
        findings["kms-default-key-bucket"]["reason"]
        == "aws:kms with the AWS-managed key aws/s3, S3 Bucket Key disabled"
    )
    assert findings["kms-default-key-bucket"]["kms_key"] is None
    assert findings["dsse-bucket"]["status"] == "COMPLIANT"
    assert findings["dsse-bucket"]["reason"].startswith("aws:kms:dsse with key")
    assert findings["dsse-bucket"]["bucket_key_enabled"] is False
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


def test_buckets_are_listed_page_by_page(monitor_functions: ModuleType) -> None:
    # moto 5.2.5 honours MaxBuckets but never returns a ContinuationToken, so paging is stubbed.
    s3 = boto3.client("s3", region_name=REGION)
    with Stubber(s3) as stub:
        stub.add_response(
            "list_buckets",
            {"Buckets": [{"Name": "bucket-a", "BucketRegion": REGION}], "ContinuationToken": "page-2"},
            {"MaxBuckets": 1000},
        )
        stub.add_response(
            "get_bucket_encryption",
            {"ServerSideEncryptionConfiguration": kms_rule("AES256")},
            {"Bucket": "bucket-a"},
        )
        stub.add_response(
            "list_buckets",
            {"Buckets": [{"Name": "bucket-b", "BucketRegion": OTHER_REGION}]},
            {"MaxBuckets": 1000, "ContinuationToken": "page-2"},
        )
        stub.add_client_error(
            "get_bucket_encryption",
            service_error_code="ServerSideEncryptionConfigurationNotFoundError",
            expected_params={"Bucket": "bucket-b"},
        )

        scanned, findings = monitor_functions.scan_buckets(s3)

        stub.assert_no_pending_responses()
    assert scanned == 2
    assert [(f["name"], f["region"], f["reason"]) for f in findings] == [
        ("bucket-a", REGION, "SSE-S3, not KMS"),
        ("bucket-b", OTHER_REGION, "no default encryption"),
    ]


def test_a_denied_bucket_listing_is_an_error_and_tables_are_still_scanned(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    create_table("orders")

    def deny(**_: Any) -> None:
        raise client_error("AccessDenied", "ListBuckets")

    monitor.S3.meta.events.register("before-parameter-build.s3.ListBuckets", deny)

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
        }
    ]
    assert report["scanned_tables"] == 1
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
    monitor_functions: ModuleType, configuration: dict[str, Any], reason: str
) -> None:
    finding = monitor_functions.classify_bucket_encryption("b", REGION, configuration)

    assert (finding["status"], finding["reason"]) == ("NON_COMPLIANT", reason)


# --- tables ------------------------------------------------------------------------------------


def test_each_kind_of_table_is_classified(monitor: ModuleType, lambda_context: FakeLambdaContext) -> None:
    # Given a table with a customer key, one with the AWS-managed key and one with the default
    customer_key = boto3.client("kms", region_name=REGION).create_key(Description="orders")["KeyMetadata"][
        "Arn"
    ]
    create_table("orders-cmk", {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": customer_key})
    create_table("orders-aws-managed", {"Enabled": True, "SSEType": "KMS"})
    create_table("orders-default")
    managed_key = boto3.client("kms", region_name=REGION).describe_key(KeyId="alias/aws/dynamodb")[
        "KeyMetadata"
    ]["Arn"]

    report = monitor.lambda_handler({}, lambda_context)

    findings = by_name(report)
    assert report["scanned_tables"] == 3
    assert findings["orders-cmk"] == {
        "resource_type": "dynamodb_table",
        "name": "orders-cmk",
        "region": REGION,
        "status": "COMPLIANT",
        "reason": "KMS with a customer managed key",
        "kms_key": customer_key,
        "bucket_key_enabled": None,
    }
    assert findings["orders-aws-managed"]["status"] == "COMPLIANT"
    assert findings["orders-aws-managed"]["reason"] == "KMS with the AWS-managed key alias/aws/dynamodb"
    assert findings["orders-aws-managed"]["kms_key"] == managed_key
    assert findings["orders-default"] == {
        "resource_type": "dynamodb_table",
        "name": "orders-default",
        "region": REGION,
        "status": "NON_COMPLIANT",
        "reason": "encrypted with an AWS-owned key, not KMS",
        "kms_key": None,
        "bucket_key_enabled": None,
    }


def test_the_aws_managed_key_is_looked_up_once_per_region(
    monitor: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    for index in range(3):
        create_table(f"kms-{index}", {"Enabled": True, "SSEType": "KMS"})
    lookups: list[str] = []
    monitor.REGION_CLIENTS[0].kms.meta.events.register(
        "before-parameter-build.kms.DescribeKey", lambda params, **_: lookups.append(params["KeyId"])
    )

    monitor.lambda_handler({}, lambda_context)

    assert lookups == ["alias/aws/dynamodb"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        pytest.param(
            "AccessDeniedException",
            "KMS; could not tell whether the key is alias/aws/dynamodb "
            "(kms:DescribeKey failed: AccessDeniedException)",
            id="denied",
        ),
        pytest.param("NotFoundException", "KMS with a customer managed key", id="no-aws-managed-key-yet"),
    ],
)
def test_when_the_aws_managed_key_cannot_be_read_a_kms_table_stays_compliant(
    monitor: ModuleType, lambda_context: FakeLambdaContext, code: str, reason: str
) -> None:
    create_table("orders", {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": CUSTOMER_KEY_ID})

    def refuse(**_: Any) -> None:
        raise client_error(code, "DescribeKey")

    monitor.REGION_CLIENTS[0].kms.meta.events.register("before-parameter-build.kms.DescribeKey", refuse)

    report = monitor.lambda_handler({}, lambda_context)

    [finding] = report["compliant"]
    assert finding["reason"] == reason
    assert finding["kms_key"] == CUSTOMER_KEY_ID


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
    monitor_functions: ModuleType, sse: dict[str, Any], reason: str
) -> None:
    def no_lookup() -> Any:
        raise AssertionError("the AWS-managed key is only looked up for KMS tables in effect")

    finding = monitor_functions.classify_table("t", REGION, {"SSEDescription": sse}, no_lookup)

    assert (finding["status"], finding["reason"]) == ("NON_COMPLIANT", reason)


def test_an_updating_kms_table_is_compliant(monitor_functions: ModuleType) -> None:
    table = {"SSEDescription": {"SSEType": "KMS", "Status": "UPDATING", "KMSMasterKeyArn": CUSTOMER_KEY_ID}}

    finding = monitor_functions.classify_table(
        "t", REGION, table, lambda: monitor_functions.ManagedKeyLookup(arn=None)
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

    monitor.REGION_CLIENTS[0].dynamodb.meta.events.register(
        "before-parameter-build.dynamodb.DescribeTable", delete_first
    )

    report = monitor.lambda_handler({}, lambda_context)

    findings = by_name(report)
    assert findings["ephemeral"]["status"] == "ERROR"
    assert findings["ephemeral"]["reason"].startswith("DescribeTable failed: ResourceNotFoundException")
    assert findings["alpha"]["status"] == findings["omega"]["status"] == "NON_COMPLIANT"
    assert report["scanned_tables"] == 3


def test_more_than_one_page_of_tables_is_scanned(
    monitor: ModuleType, lambda_context: FakeLambdaContext, alert_topic: SubscribedTopic
) -> None:
    # ListTables returns at most 100 names per page
    for index in range(130):
        create_table(f"table-{index:03d}")

    report = monitor.lambda_handler({}, lambda_context)

    assert report["scanned_tables"] == 130
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

    assert [clients.region for clients in monitor.REGION_CLIENTS] == [REGION, OTHER_REGION]
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

    monitor.REGION_CLIENTS[0].dynamodb.meta.events.register(
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
    monitor_functions: ModuleType, environ: dict[str, str], regions: tuple[str, ...]
) -> None:
    assert monitor_functions.parse_regions(environ) == regions


def test_no_region_at_all_is_a_configuration_error(monitor_functions: ModuleType) -> None:
    with pytest.raises(
        monitor_functions.ConfigurationError, match="SCAN_REGIONS is empty and AWS_REGION is not set"
    ):
        monitor_functions.parse_regions({})


def test_a_missing_alert_topic_is_a_configuration_error(load_function: Callable[..., ModuleType]) -> None:
    with pytest.raises(RuntimeError, match="ALERT_TOPIC_ARN is not set") as caught:
        load_function("lambda_security_monitor", SCAN_REGIONS=REGION)

    assert type(caught.value).__name__ == "ConfigurationError"


# --- report and alert --------------------------------------------------------------------------


def test_everything_compliant_sends_no_alert(
    monitor: ModuleType,
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    create_bucket("kms-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    create_table("orders", {"Enabled": True, "SSEType": "KMS"})

    report = monitor.lambda_handler({}, lambda_context)

    assert (report["scanned_buckets"], report["scanned_tables"]) == (1, 1)
    assert len(report["compliant"]) == 2
    assert report["non_compliant"] == report["errors"] == []
    assert report["alert_sent"] is False
    assert alert_topic.received() == []
    assert read_metrics() == {"CompliantResources": 2, "NonCompliantResources": 0, "ScanErrors": 0}


def test_the_alert_lists_every_problem_for_a_human(
    monitor: ModuleType,
    lambda_context: FakeLambdaContext,
    alert_topic: SubscribedTopic,
    caplog: pytest.LogCaptureFixture,
    read_metrics: Callable[[], dict[str, float]],
) -> None:
    create_bucket("good-bucket", kms_rule("aws:kms", CUSTOMER_KEY_ID))
    create_bucket("sse-s3-bucket", kms_rule("AES256"))
    create_bucket("plain-bucket", None)
    create_table("orders-default")
    create_table("orders-kms", {"Enabled": True, "SSEType": "KMS"})

    report = monitor.lambda_handler({}, lambda_context)

    # One JSON line per finding, at a level that matches its status
    finding_logs = [record for record in caplog.records if hasattr(record, "finding")]
    assert sorted((record.finding["name"], record.levelno) for record in finding_logs) == [
        ("good-bucket", logging.INFO),
        ("orders-default", logging.WARNING),
        ("orders-kms", logging.INFO),
        ("plain-bucket", logging.WARNING),
        ("sse-s3-bucket", logging.WARNING),
    ]
    # One alert with each non-compliant resource: type, name, region and reason
    [alert] = alert_topic.received()
    assert alert["Subject"] == "Security monitor: 3 non-compliant, 0 error(s)"
    message = alert["Message"]
    assert message.startswith("Encryption scan found 3 non-compliant, 0 error(s).\n")
    assert "Scanned 3 S3 bucket(s) and 2 DynamoDB table(s) in us-east-1." in message
    assert "- [NON_COMPLIANT] s3_bucket sse-s3-bucket (region unknown): SSE-S3, not KMS\n" in message
    assert "- [NON_COMPLIANT] s3_bucket plain-bucket (region unknown): no default encryption\n" in message
    assert (
        "- [NON_COMPLIANT] dynamodb_table orders-default (us-east-1): "
        "encrypted with an AWS-owned key, not KMS\n" in message
    )
    assert "good-bucket" not in message
    assert "orders-kms" not in message
    assert read_metrics() == {"CompliantResources": 2, "NonCompliantResources": 3, "ScanErrors": 0}
    # And the report is what the Lambda runtime can serialize
    assert json.loads(json.dumps(report)) == report


def test_the_subject_stays_short_ascii(monitor_functions: ModuleType) -> None:
    report = {
        "scanned_buckets": 10**40,
        "scanned_tables": 0,
        "compliant": [],
        "non_compliant": [],
        "errors": [],
        "alert_sent": False,
    }

    subject, _ = monitor_functions.build_alert(report, [REGION])

    assert subject.isascii()
    assert len(subject) <= 100


def test_a_huge_alert_is_truncated_below_the_sns_limit(
    monitor: ModuleType, alert_topic: SubscribedTopic
) -> None:
    # Given more problems than one SNS message (256 KiB) can list
    findings = [
        monitor._finding(
            "dynamodb_table", f"table-{index:05d}-" + "x" * 200, REGION, "NON_COMPLIANT", "AWS-owned key"
        )
        for index in range(3000)
    ]
    report = {
        "scanned_buckets": 0,
        "scanned_tables": 3000,
        "compliant": [],
        "non_compliant": findings,
        "errors": [],
        "alert_sent": False,
    }
    assert sum(len(monitor.format_finding(finding)) for finding in findings) > 256 * 1024

    _, message = monitor.build_alert(report, [REGION])

    # Then the listing stops in time and says how many were left out
    assert len(message.encode("utf-8")) <= monitor.MAX_ALERT_BYTES < 256 * 1024
    listed = message.count("\n- [NON_COMPLIANT] ")
    assert 0 < listed < 3000
    assert message.endswith(f"\n... and {3000 - listed} more\n")
    assert "table-00000-" in message
    # And SNS accepts it as it is
    monitor.publish_alert(monitor.SNS, alert_topic.arn, report, [REGION])
    [alert] = alert_topic.received()
    assert alert["Message"] == message
