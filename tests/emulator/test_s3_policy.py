"""Bucket policies with conditions are evaluated against the request (moto treats any condition as Deny)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.s3_policy import evaluate

pytestmark = pytest.mark.emulator

BUCKET = "policy-bucket"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
OBJECTS = f"arn:aws:s3:::{BUCKET}/*"
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{BUCKET}", OBJECTS],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyUploadsWithoutKms",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:PutObject",
            "Resource": OBJECTS,
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {
            "Sid": "DenyUploadsWithAnotherKmsKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": OBJECTS,
            "Condition": {
                "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                "StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN},
            },
        },
    ],
}


@pytest.mark.parametrize(
    ("action", "context", "expected"),
    [
        ("s3:GetObject", {"aws:securetransport": "true"}, "NEUTRAL"),
        ("s3:GetObject", {"aws:securetransport": "false"}, "DENIED"),
        ("s3:PutObject", {"aws:securetransport": "true"}, "DENIED"),
        (
            "s3:PutObject",
            {"aws:securetransport": "true", "s3:x-amz-server-side-encryption": "AES256"},
            "DENIED",
        ),
        (
            "s3:PutObject",
            {"aws:securetransport": "true", "s3:x-amz-server-side-encryption": "aws:kms"},
            "NEUTRAL",
        ),
        (
            "s3:PutObject",
            {
                "aws:securetransport": "true",
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN,
            },
            "NEUTRAL",
        ),
        (
            "s3:PutObject",
            {
                "aws:securetransport": "true",
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:123456789012:key/other",
            },
            "DENIED",
        ),
    ],
)
def test_evaluate_conditions(action: str, context: dict[str, str], expected: str) -> None:
    assert evaluate(POLICY, action, f"arn:aws:s3:::{BUCKET}/a.csv", context) == expected


def test_evaluate_allow_if_exists_principals_and_unsupported_operators() -> None:
    allow = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": OBJECTS}
    assert evaluate({"Statement": allow}, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/x", {}) == "PERMITTED"
    if_exists = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"StringEqualsIfExists": {"s3:x-amz-acl": "public-read"}},
    }
    assert evaluate({"Statement": [if_exists]}, "s3:PutObject", "arn:aws:s3:::b/k", {}) == "DENIED"
    assert evaluate(
        {"Statement": [if_exists]}, "s3:PutObject", "arn:aws:s3:::b/k", {"s3:x-amz-acl": "private"}
    ) == ("NEUTRAL")
    someone = {
        "Effect": "Deny",
        "Principal": {"AWS": "arn:aws:iam::1:root"},
        "Action": "s3:*",
        "Resource": "*",
    }
    assert evaluate({"Statement": [someone]}, "s3:GetObject", "arn:aws:s3:::b/k", {}) == "NEUTRAL"
    unknown = {**if_exists, "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    assert evaluate({"Statement": [unknown]}, "s3:GetObject", "arn:aws:s3:::b/k", {}) == "NEUTRAL"


def test_bucket_policy_enforced_on_object_requests(aws_client: Callable[[str], Any]) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(POLICY))

    with pytest.raises(ClientError) as plain:
        s3.put_object(Bucket=BUCKET, Key="plain.csv", Body=b"x")
    assert plain.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as other_key:
        s3.put_object(
            Bucket=BUCKET,
            Key="other-key.csv",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/other",
        )
    assert other_key.value.response["Error"]["Code"] == "AccessDenied"

    s3.put_object(Bucket=BUCKET, Key="kms.csv", Body=b"x", ServerSideEncryption="aws:kms")
    s3.put_object(
        Bucket=BUCKET, Key="kms-key.csv", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=KEY_ARN
    )
    assert s3.get_object(Bucket=BUCKET, Key="kms.csv")["Body"].read() == b"x"
    assert s3.head_object(Bucket=BUCKET, Key="kms-key.csv")["ContentLength"] == 1
    s3.delete_object(Bucket=BUCKET, Key="kms.csv")


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
    response = s3.put_object(Bucket="orphan-notifications", Key="k", Body=b"x")
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
