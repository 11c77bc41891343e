"""S3 applies server-side encryption as AWS documents it, whatever moto would have chosen.

The case that matters: ``--sse aws:kms`` without a key id is encrypted with the AWS-managed key
``aws/s3``, not with the bucket's customer-managed default key (moto said the latter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.emulator
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket_key(aws_client: Callable[[str], Any]) -> dict[str, str]:
    """A bucket whose default encryption is SSE-KMS with a customer-managed key (like the stack's)."""
    kms, s3 = aws_client("kms"), aws_client("s3")
    key = kms.create_key(Description="bucket default key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/bucket-default", TargetKeyId=key["KeyId"])
    s3.create_bucket(Bucket="sse-bucket")
    s3.put_bucket_versioning(Bucket="sse-bucket", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket="sse-bucket",
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key["Arn"],
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    return {"arn": key["Arn"], "id": key["KeyId"]}


def applied(s3: Any, key: str, **kwargs: Any) -> tuple[str | None, str | None]:
    head = s3.head_object(Bucket="sse-bucket", Key=key, **kwargs)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")


def aws_managed_s3_key(aws_client: Callable[[str], Any]) -> dict[str, Any]:
    kms = aws_client("kms")
    aliases = [a for page in kms.get_paginator("list_aliases").paginate() for a in page["Aliases"]]
    [alias] = [a for a in aliases if a["AliasName"] == "alias/aws/s3"]
    return dict(kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"])


def test_no_header_gets_the_bucket_default_key(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str]
) -> None:
    s3 = aws_client("s3")
    response = s3.put_object(Bucket="sse-bucket", Key="default.txt", Body=b"x")
    assert (response["ServerSideEncryption"], response["SSEKMSKeyId"]) == ("aws:kms", bucket_key["arn"])
    assert applied(s3, "default.txt") == ("aws:kms", bucket_key["arn"])
    assert s3.get_object(Bucket="sse-bucket", Key="default.txt")["SSEKMSKeyId"] == bucket_key["arn"]


def test_aws_kms_without_a_key_id_uses_the_aws_managed_key(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str]
) -> None:
    s3 = aws_client("s3")
    s3.put_object(Bucket="sse-bucket", Key="managed.txt", Body=b"x", ServerSideEncryption="aws:kms")

    algorithm, key = applied(s3, "managed.txt")
    managed = aws_managed_s3_key(aws_client)  # created on first use, as AWS does
    assert algorithm == "aws:kms"
    assert key == managed["Arn"]
    assert key != bucket_key["arn"]
    assert managed["KeyManager"] == "AWS"
    s3.put_object(Bucket="sse-bucket", Key="managed-2.txt", Body=b"x", ServerSideEncryption="aws:kms")
    assert applied(s3, "managed-2.txt")[1] == managed["Arn"]  # one aws/s3 key per account and region


@pytest.mark.parametrize("form", ["arn", "id", "alias", "alias-arn"])
def test_a_named_key_in_any_form_is_stored_as_its_arn(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str], form: str
) -> None:
    named = {
        "arn": bucket_key["arn"],
        "id": bucket_key["id"],
        "alias": "alias/bucket-default",
        "alias-arn": bucket_key["arn"].split(":key/")[0] + ":alias/bucket-default",
    }[form]
    s3 = aws_client("s3")
    s3.put_object(
        Bucket="sse-bucket",
        Key=f"named-{form}.txt",
        Body=b"x",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=named,
    )
    assert applied(s3, f"named-{form}.txt") == ("aws:kms", bucket_key["arn"])


def test_sse_s3_and_bad_requests(aws_client: Callable[[str], Any], bucket_key: dict[str, str]) -> None:
    s3 = aws_client("s3")
    s3.put_object(Bucket="sse-bucket", Key="aes.txt", Body=b"x", ServerSideEncryption="AES256")
    assert applied(s3, "aes.txt") == ("AES256", None)
    with pytest.raises(ClientError) as unknown:
        s3.put_object(
            Bucket="sse-bucket",
            Key="unknown-key.txt",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        )
    assert unknown.value.response["Error"]["Code"] == "KMS.NotFoundException"
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_bucket_without_default_encryption_gets_sse_s3(aws_client: Callable[[str], Any]) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="no-default-bucket")
    s3.put_object(Bucket="no-default-bucket", Key="k", Body=b"x")
    assert s3.head_object(Bucket="no-default-bucket", Key="k")["ServerSideEncryption"] == "AES256"
    # ...and says so, as S3 does for every bucket since January 2023
    [rule] = s3.get_bucket_encryption(Bucket="no-default-bucket")["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    s3.put_bucket_encryption(
        Bucket="no-default-bucket",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.delete_bucket_encryption(Bucket="no-default-bucket")
    [rule] = s3.get_bucket_encryption(Bucket="no-default-bucket")["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_copy_object_uses_the_destinations_rules_not_the_sources(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str]
) -> None:
    s3 = aws_client("s3")
    s3.put_object(Bucket="sse-bucket", Key="copy-source.txt", Body=b"x", ServerSideEncryption="AES256")
    source = {"Bucket": "sse-bucket", "Key": "copy-source.txt"}
    s3.copy_object(Bucket="sse-bucket", Key="copy-default.txt", CopySource=source)
    s3.copy_object(
        Bucket="sse-bucket", Key="copy-managed.txt", CopySource=source, ServerSideEncryption="aws:kms"
    )
    assert applied(s3, "copy-default.txt") == ("aws:kms", bucket_key["arn"])
    assert applied(s3, "copy-managed.txt") == ("aws:kms", aws_managed_s3_key(aws_client)["Arn"])


def test_a_copy_onto_the_same_key_without_a_header_gets_the_bucket_default(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str]
) -> None:
    """Re-encrypting in place under the bucket's key: moto forced AES256 for same-key copies."""
    s3 = aws_client("s3")
    s3.put_object(Bucket="sse-bucket", Key="in-place.txt", Body=b"x", ServerSideEncryption="aws:kms")
    assert applied(s3, "in-place.txt") == ("aws:kms", aws_managed_s3_key(aws_client)["Arn"])
    source = {"Bucket": "sse-bucket", "Key": "in-place.txt"}

    response = s3.copy_object(Bucket="sse-bucket", Key="in-place.txt", CopySource=source)

    assert (response.get("ServerSideEncryption"), response.get("SSEKMSKeyId")) == (
        "aws:kms",
        bucket_key["arn"],
    )
    assert applied(s3, "in-place.txt") == ("aws:kms", bucket_key["arn"])
    s3.copy_object(Bucket="sse-bucket", Key="in-place.txt", CopySource=source, ServerSideEncryption="AES256")
    assert applied(s3, "in-place.txt") == ("AES256", None)  # a header still decides


def test_a_multipart_uploads_encryption_is_chosen_when_it_is_created(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str]
) -> None:
    s3 = aws_client("s3")
    for key, extra in (("mp-default.bin", {}), ("mp-managed.bin", {"ServerSideEncryption": "aws:kms"})):
        upload_id = s3.create_multipart_upload(Bucket="sse-bucket", Key=key, **extra)["UploadId"]
        part = s3.upload_part(Bucket="sse-bucket", Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * MIB)
        s3.complete_multipart_upload(
            Bucket="sse-bucket",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
        )
    assert applied(s3, "mp-default.bin") == ("aws:kms", bucket_key["arn"])
    assert applied(s3, "mp-managed.bin") == ("aws:kms", aws_managed_s3_key(aws_client)["Arn"])


def test_every_version_reports_its_own_encryption(
    aws_client: Callable[[str], Any], bucket_key: dict[str, str]
) -> None:
    """ListObjectVersions has no encryption field in the S3 API; HeadObject per version reports it."""
    s3 = aws_client("s3")
    s3.put_object(Bucket="sse-bucket", Key="versioned.txt", Body=b"1")
    s3.put_object(Bucket="sse-bucket", Key="versioned.txt", Body=b"2", ServerSideEncryption="AES256")
    versions = s3.list_object_versions(Bucket="sse-bucket", Prefix="versioned.txt")["Versions"]
    found = {applied(s3, "versioned.txt", VersionId=v["VersionId"]) for v in versions}
    assert found == {("aws:kms", bucket_key["arn"]), ("AES256", None)}
