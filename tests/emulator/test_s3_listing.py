"""ListObjectVersions with encoding-type=url, as hashicorp/aws 5.x uses it to empty a bucket."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.emulator

KEYS = ["x/my file+v2.csv", "y/Déjà vu ✓.csv", "plain.txt"]


@pytest.fixture
def versioned_bucket(aws_client: Callable[[str], Any]) -> str:
    s3 = aws_client("s3")
    bucket = f"listing-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    s3.delete_object(Bucket=bucket, Key="plain.txt")  # leaves a delete marker
    return bucket


def test_names_asked_for_url_encoded_come_back_encoded(
    aws_client: Callable[[str], Any], versioned_bucket: str
) -> None:
    listing = aws_client("s3").list_object_versions(Bucket=versioned_bucket, EncodingType="url")

    assert listing["EncodingType"] == "url"
    keys = [v["Key"] for v in listing["Versions"]]
    assert "x/my%20file%2Bv2.csv" in keys
    assert sorted(urllib.parse.unquote_plus(k) for k in keys) == sorted(KEYS)
    assert [m["Key"] for m in listing["DeleteMarkers"]] == ["plain.txt"]


def test_a_decoding_client_gets_every_name_exactly(
    aws_client: Callable[[str], Any], versioned_bucket: str
) -> None:
    # botocore asks for encoding-type=url by itself and URL-decodes the answer, as the Go provider does.
    listing = aws_client("s3").list_object_versions(Bucket=versioned_bucket)

    assert sorted(v["Key"] for v in listing["Versions"]) == sorted(KEYS)


def test_versions_deleted_by_their_listed_names_empty_the_bucket(
    aws_client: Callable[[str], Any], versioned_bucket: str
) -> None:
    s3 = aws_client("s3")
    listing = s3.list_object_versions(Bucket=versioned_bucket)
    items = listing["Versions"] + listing["DeleteMarkers"]

    s3.delete_objects(
        Bucket=versioned_bucket,
        Delete={"Objects": [{"Key": i["Key"], "VersionId": i["VersionId"]} for i in items]},
    )

    after = s3.list_object_versions(Bucket=versioned_bucket)
    assert after.get("Versions", []) == []
    assert after.get("DeleteMarkers", []) == []
    s3.delete_bucket(Bucket=versioned_bucket)
