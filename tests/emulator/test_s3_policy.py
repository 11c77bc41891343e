"""Bucket policies are evaluated on every object request, with their conditions, as S3 does.

moto counts any statement with a Condition as Deny and names actions after the HTTP method; the
emulator evaluates the conditions against the headers of *that* request and authorizes every object
write (multipart parts included) as s3:PutObject.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator, s3_policy
from emulator.admin_client import AdminClient
from emulator.s3_policy import Operator, RequestInfo, evaluate, s3_action

pytestmark = pytest.mark.emulator

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
OBJECTS = "arn:aws:s3:::b/*"
SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
MIB = 1024 * 1024


def deny(condition: dict[str, Any], action: str = "s3:PutObject", sid: str = "Deny") -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": OBJECTS,
        "Condition": condition,
    }


def decide(statement: dict[str, Any], context: dict[str, str], action: str = "s3:PutObject") -> str:
    return evaluate({"Statement": [statement]}, action, "arn:aws:s3:::b/k", context)


# ---------------------------------------------------------------------------- the evaluator


@pytest.mark.parametrize(
    ("operator", "request_values", "expected", "holds"),
    [
        ("StringEquals", ["aws:kms"], ["aws:kms"], True),
        ("StringEquals", [], ["aws:kms"], False),  # a missing key never equals
        ("StringNotEquals", ["AES256"], ["aws:kms"], True),
        ("StringNotEquals", [], ["aws:kms"], True),  # ...and always "not equals"
        ("StringEqualsIfExists", [], ["aws:kms"], True),
        ("StringNotEqualsIfExists", [], ["aws:kms"], True),
        ("StringNotEqualsIfExists", ["aws:kms"], ["aws:kms"], False),
        ("StringEqualsIgnoreCase", ["AWS:KMS"], ["aws:kms"], True),
        ("StringLike", ["alias/pipeline-s3"], ["alias/*"], True),
        ("StringNotLike", ["alias/pipeline-s3"], ["alias/*"], False),
        ("Bool", ["false"], ["false"], True),
        ("Bool", ["true"], ["false"], False),
        ("Null", [], ["true"], True),
        ("Null", ["aws:kms"], ["true"], False),
        ("Null", ["aws:kms"], ["false"], True),
        ("ForAnyValue:StringEquals", ["a"], ["a", "b"], True),
        ("ForAnyValue:StringEquals", [], ["a"], False),
        ("ForAllValues:StringEquals", [], ["a"], True),  # vacuously true, as IAM defines it
        ("ForAllValues:StringNotEquals", ["c"], ["a", "b"], True),
        ("IpAddress", ["127.0.0.1"], ["127.0.0.0/8"], True),
        ("NotIpAddress", ["127.0.0.1"], ["10.0.0.0/8"], True),
        ("NumericLessThan", ["5"], ["10"], True),
        ("ArnLike", [KEY_ARN], ["arn:aws:kms:*:123456789012:key/*"], True),
    ],
)
def test_operators_follow_iam_semantics(
    operator: str, request_values: list[str], expected: list[str], holds: bool
) -> None:
    assert Operator.parse(operator).holds(request_values, expected) is holds


HARDENED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", OBJECTS],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        deny({"Null": {SSE: "false"}, "StringNotEquals": {SSE: "aws:kms"}}, sid="DenyOtherAlgorithms"),
        deny({"StringEquals": {SSE: "aws:kms"}, "Null": {SSE_KEY: "true"}}, sid="DenyKmsWithoutKey"),
        deny({"Null": {SSE_KEY: "false"}, "StringNotEquals": {SSE_KEY: [KEY_ARN]}}, sid="DenyOtherKeys"),
    ],
}


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, "NEUTRAL"),  # no header: default encryption applies; a multipart part looks like this too
        ({SSE: "aws:kms", SSE_KEY: KEY_ARN}, "NEUTRAL"),
        ({SSE: "aws:kms"}, "DENIED"),  # would use aws/s3
        ({SSE: "AES256"}, "DENIED"),
        ({SSE: "aws:kms", SSE_KEY: "arn:aws:kms:us-east-1:123456789012:key/other"}, "DENIED"),
        ({"aws:securetransport": "false"}, "DENIED"),
    ],
)
def test_a_policy_that_relies_on_default_encryption(context: dict[str, str], expected: str) -> None:
    full = {"aws:securetransport": "true", **context}
    assert evaluate(HARDENED, "s3:PutObject", "arn:aws:s3:::b/k", full) == expected


def test_principals_other_than_everyone_do_not_apply() -> None:
    someone = {
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam::1:root"},
        "Action": "s3:*",
        "Resource": "*",
    }
    assert decide(someone, {}) == "NEUTRAL"
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJECTS}
    assert decide(allow, {}, action="s3:GetObject") == "PERMITTED"


def test_an_unknown_operator_is_reported_and_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    statement = deny({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, sid="ByDate")
    with caplog.at_level("ERROR", logger="emulator.s3"):
        assert decide(statement, {}) == "DENIED"
    assert "'ByDate' uses a condition the emulator cannot evaluate" in caplog.text
    assert {
        "sid": "ByDate",
        "effect": "Deny",
        "error": "DateGreaterThan",
    } in s3_policy.unevaluable_statements()
    allow = {**statement, "Sid": "AllowByDate", "Effect": "Allow"}
    assert decide(allow, {}) == "NEUTRAL"  # an Allow it cannot evaluate grants nothing


def test_an_unknown_operator_is_reported_when_a_deny_decides_first(caplog: pytest.LogCaptureFixture) -> None:
    first = deny({"StringEquals": {SSE: "AES256"}}, sid="DecidesFirst")
    later = deny({"BinaryEquals": {SSE: "QUVTMjU2"}}, sid="NeverReached")
    with caplog.at_level("ERROR", logger="emulator.s3"):
        result = evaluate({"Statement": [first, later]}, "s3:PutObject", "arn:aws:s3:::b/k", {SSE: "AES256"})
    assert result == "DENIED"
    assert "'NeverReached' uses a condition the emulator cannot evaluate (BinaryEquals)" in caplog.text
    assert {
        "sid": "NeverReached",
        "effect": "Deny",
        "error": "BinaryEquals",
    } in s3_policy.unevaluable_statements()


def test_an_unknown_operator_after_a_false_condition_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    statement = deny(
        {"StringEquals": {SSE: "AES256"}, "DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        sid="FalseThenUnknown",
    )
    with caplog.at_level("ERROR", logger="emulator.s3"):
        decide(statement, {})  # StringEquals is false for a request without the header
    assert "'FalseThenUnknown' uses a condition the emulator cannot evaluate (DateLessThan)" in caplog.text
    assert {"sid": "FalseThenUnknown", "effect": "Deny", "error": "DateLessThan"} in (
        s3_policy.unevaluable_statements()
    )


def test_an_unknown_operator_in_a_statement_that_does_not_apply_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    statement = deny({"DateGreaterThanEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, sid="OnlyGets")
    statement["Action"] = "s3:GetObject"
    with caplog.at_level("ERROR", logger="emulator.s3"):
        assert decide(statement, {}, action="s3:PutObject") == "NEUTRAL"
    assert "'OnlyGets' uses a condition the emulator cannot evaluate (DateGreaterThanEquals)" in caplog.text
    assert [r.levelname for r in caplog.records if "'OnlyGets'" in r.getMessage()] == ["ERROR"]
    assert {"sid": "OnlyGets", "effect": "Deny", "error": "DateGreaterThanEquals"} in (
        s3_policy.unevaluable_statements()
    )


@pytest.mark.parametrize(
    ("method", "query", "moto_action", "expected"),
    [
        ("PUT", {}, "s3:PutObject", "s3:PutObject"),
        ("POST", {"uploads": [""]}, "s3:PostObject", "s3:PutObject"),
        ("PUT", {"partNumber": ["1"], "uploadId": ["u"]}, "s3:PutObject", "s3:PutObject"),
        ("POST", {"uploadId": ["u"]}, "s3:PostObject", "s3:PutObject"),
        ("DELETE", {"uploadId": ["u"]}, "s3:DeleteObject", "s3:AbortMultipartUpload"),
        ("GET", {"uploadId": ["u"]}, "s3:GetObject", "s3:ListMultipartUploadParts"),
        ("HEAD", {}, "s3:HeadObject", "s3:GetObject"),
    ],
)
def test_requests_are_authorized_as_the_actions_s3_uses(
    method: str, query: dict[str, list[str]], moto_action: str, expected: str
) -> None:
    assert s3_action(moto_action, RequestInfo(method=method, query=query)) == expected


def test_the_request_context_holds_only_this_requests_headers() -> None:
    info = s3_policy.request_info(
        {
            "REQUEST_METHOD": "PUT",
            "QUERY_STRING": "partNumber=1&uploadId=abc",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_X_AMZ_CONTENT_SHA256": "UNSIGNED-PAYLOAD",
            "HTTP_CONTENT_TYPE": "binary/octet-stream",
        }
    )
    assert info.context == {
        "aws:securetransport": "true",
        "aws:sourceip": "127.0.0.1",
        "s3:x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    }
    assert info.query == {"partNumber": ["1"], "uploadId": ["abc"]}


# ---------------------------------------------------------------------------- on the wire


@pytest.fixture(scope="module")
def kms_key(aws_client: Callable[[str], Any]) -> str:
    return str(aws_client("kms").create_key(Description="policy test key")["KeyMetadata"]["Arn"])


@pytest.fixture
def bucket(aws_client: Callable[[str], Any], request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"policy-{request.node.name.split('[')[0][5:40].replace('_', '-')}".rstrip("-").lower()
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=name)
    yield name
    s3.delete_bucket_policy(Bucket=name)


def put_policy(aws_client: Callable[[str], Any], bucket: str, statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        statement["Resource"] = f"arn:aws:s3:::{bucket}/*"
    aws_client("s3").put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def test_a_policy_demanding_the_header_refuses_multipart_parts(
    aws_client: Callable[[str], Any], bucket: str
) -> None:
    """The README's old policy: CreateMultipartUpload carries the header and passes, UploadPart does not."""
    put_policy(aws_client, bucket, [deny({"StringNotEquals": {SSE: "aws:kms"}})])
    s3 = aws_client("s3")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin", ServerSideEncryption="aws:kms")
    code = error_code(
        lambda: s3.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * MIB
        )
    )
    assert code == "AccessDenied"
    assert error_code(lambda: s3.create_multipart_upload(Bucket=bucket, Key="plain.bin")) == "AccessDenied"


def test_every_write_request_kind_is_checked_as_put_object(
    aws_client: Callable[[str], Any], bucket: str
) -> None:
    """Deny writes naming AES256: PutObject, CopyObject and CreateMultipartUpload with it are refused."""
    put_policy(aws_client, bucket, [deny({"StringEquals": {SSE: "AES256"}})])
    s3 = aws_client("s3")
    s3.put_object(Bucket=bucket, Key="source.txt", Body=b"x")
    assert (
        error_code(lambda: s3.put_object(Bucket=bucket, Key="a", Body=b"x", ServerSideEncryption="AES256"))
        == "AccessDenied"
    )
    copy = {"Bucket": bucket, "Key": "copy.txt", "CopySource": {"Bucket": bucket, "Key": "source.txt"}}
    assert error_code(lambda: s3.copy_object(**copy, ServerSideEncryption="AES256")) == "AccessDenied"
    s3.copy_object(**copy)
    assert (
        error_code(lambda: s3.create_multipart_upload(Bucket=bucket, Key="m", ServerSideEncryption="AES256"))
        == "AccessDenied"
    )


def test_complete_multipart_upload_and_upload_part_copy_are_checked(
    aws_client: Callable[[str], Any], bucket: str
) -> None:
    """A policy keyed on a header only those requests send shows they are evaluated at all."""
    s3 = aws_client("s3")
    s3.put_object(Bucket=bucket, Key="source.bin", Body=b"y" * (5 * MIB))
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="joined.bin")["UploadId"]
    put_policy(aws_client, bucket, [deny({"Null": {"s3:x-amz-copy-source": "false"}}, sid="NoCopies")])
    code = error_code(
        lambda: s3.upload_part_copy(
            Bucket=bucket,
            Key="joined.bin",
            UploadId=upload_id,
            PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "source.bin"},
        )
    )
    assert code == "AccessDenied"
    part = s3.upload_part(
        Bucket=bucket, Key="joined.bin", UploadId=upload_id, PartNumber=1, Body=b"z" * (5 * MIB)
    )
    put_policy(aws_client, bucket, [deny({"Null": {"s3:x-amz-request-payer": "false"}}, sid="NoRequester")])
    completion = {"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}
    code = error_code(
        lambda: s3.complete_multipart_upload(
            Bucket=bucket,
            Key="joined.bin",
            UploadId=upload_id,
            MultipartUpload=completion,
            RequestPayer="requester",
        )
    )
    assert code == "AccessDenied"
    s3.complete_multipart_upload(
        Bucket=bucket, Key="joined.bin", UploadId=upload_id, MultipartUpload=completion
    )
    assert s3.head_object(Bucket=bucket, Key="joined.bin")["ContentLength"] == 5 * MIB


def test_the_hardened_policy_accepts_plain_and_multipart_uploads(
    aws_client: Callable[[str], Any], bucket: str, kms_key: str
) -> None:
    put_policy(aws_client, bucket, [dict(s) for s in HARDENED["Statement"][1:]])
    policy = json.loads(aws_client("s3").get_bucket_policy(Bucket=bucket)["Policy"])
    policy["Statement"][2]["Condition"]["StringNotEquals"][SSE_KEY] = [kms_key]
    aws_client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    s3 = aws_client("s3")
    s3.put_object(Bucket=bucket, Key="plain.txt", Body=b"x")
    s3.put_object(
        Bucket=bucket, Key="named.txt", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key
    )
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=1, Body=b"x" * MIB)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert (
        error_code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="aws:kms"))
        == "AccessDenied"
    )
    assert (
        error_code(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", ServerSideEncryption="AES256"))
        == "AccessDenied"
    )
    assert s3.get_object(Bucket=bucket, Key="plain.txt")["Body"].read() == b"x"


def test_put_bucket_policy_reports_an_unknown_operator_no_request_reaches(
    aws_client: Callable[[str], Any], bucket: str, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored, not yet evaluated: the statement is in the emulator log and the admin counter at once."""
    statement = {
        "Sid": "DeleteOnlyBeforeNewYear",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
        "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
    }
    with caplog.at_level("ERROR", logger="emulator.s3"):
        aws_client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Statement": [statement]}))

    assert "'DeleteOnlyBeforeNewYear' uses a condition the emulator cannot evaluate (DateGreaterThan)" in (
        caplog.text
    )
    assert f"(bucket {bucket})" in caplog.text
    listed = AdminClient(emulator.endpoint_url).call("GET", "/_emulator/s3/policy")["unevaluable_statements"]
    assert {"sid": "DeleteOnlyBeforeNewYear", "effect": "Deny", "error": "DateGreaterThan"} in listed


def test_batch_delete_reports_denied_keys_per_key(aws_client: Callable[[str], Any], bucket: str) -> None:
    s3 = aws_client("s3")
    s3.put_object(Bucket=bucket, Key="keep/a", Body=b"x")
    s3.put_object(Bucket=bucket, Key="drop/b", Body=b"x")
    statement = {
        "Sid": "Keep",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": "",
    }
    aws_client("s3").put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps({"Statement": [{**statement, "Resource": f"arn:aws:s3:::{bucket}/keep/*"}]}),
    )
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "keep/a"}, {"Key": "drop/b"}]})
    assert [d["Key"] for d in result["Deleted"]] == ["drop/b"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("keep/a", "AccessDenied")]


def test_notification_to_a_missing_function_does_not_fail_put_object(
    aws_client: Callable[[str], Any],
) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="orphan-notifications")
    s3.put_bucket_notification_configuration(
        Bucket="orphan-notifications",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "LambdaFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:gone",
                    "Events": ["s3:ObjectCreated:*"],
                }
            ]
        },
    )
    assert (
        s3.put_object(Bucket="orphan-notifications", Key="k", Body=b"x")["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
