"""Server-side encryption of S3 objects chosen the way S3 chooses it.

moto 5.2.5 fills a missing KMS key id from the bucket's default encryption even when the request
says ``x-amz-server-side-encryption: aws:kms`` without a key, so such an upload looked as if it was
under the bucket's customer-managed key. On AWS it is encrypted with the account's AWS-managed key
``aws/s3`` (AWS documentation: "Specifying server-side encryption with AWS KMS"), which silently
bypasses a pipeline's key. Here, for PutObject, CopyObject (a copy onto the same key too: moto
forced ``AES256`` there when the source was KMS-encrypted) and multipart uploads (decided at
CreateMultipartUpload, as S3 does):

* no SSE header -> the bucket's default encryption (its algorithm and key); no default -> SSE-S3
  (``AES256``, every bucket's default since January 2023);
* ``aws:kms`` (or ``aws:kms:dsse``) without a key id -> the AWS-managed key ``aws/s3``, created on
  first use in the bucket's region with alias ``alias/aws/s3``, as AWS does;
* ``aws:kms`` with a key id, key ARN, alias name or alias ARN -> that key, stored as its key ARN;
  a key that does not exist -> ``KMS.NotFoundException`` (HTTP 400), as S3 answers;
* ``AES256`` -> SSE-S3, no key; a key id with any other algorithm -> ``InvalidArgument``.

HeadObject and GetObject report what was applied (``ServerSideEncryption``, ``SSEKMSKeyId``).
GetBucketEncryption of a bucket that was never configured (or whose configuration was deleted)
answers SSE-S3, as S3 does since January 2023; moto answered
``ServerSideEncryptionConfigurationNotFoundError``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from emulator.patch import Patch

AWS_MANAGED_S3_ALIAS = "alias/aws/s3"
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
_AWS_MANAGED_DESCRIPTION = "Default key that protects my S3 objects when no other key is defined"


def _client_error(code: str, message: str) -> Exception:
    """An S3 error answered with HTTP 400 (both codes here are client errors)."""
    from moto.s3.exceptions import S3ClientError

    return S3ClientError(code, message)


@dataclass(frozen=True)
class Encryption:
    """What S3 applies to one object."""

    algorithm: str
    kms_key_arn: str | None = None


def kms_backend(account_id: str, region: str) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[account_id][region]


def aws_managed_key_arn(account_id: str, region: str) -> str:
    """The ARN of ``aws/s3`` in that account and region, creating the key on first use."""
    backend = kms_backend(account_id, region)
    key_id = backend.get_key_id_from_alias(AWS_MANAGED_S3_ALIAS)
    key = backend.keys[key_id]
    if key.key_manager != "AWS":
        key.key_manager = "AWS"
        key.description = _AWS_MANAGED_DESCRIPTION
    return str(key.arn)


def resolve_key_arn(account_id: str, region: str, key_ref: str) -> str:
    """A key id, key ARN, alias name or alias ARN -> the key's ARN; unknown -> KMS.NotFoundException."""
    backend = kms_backend(account_id, region)
    try:
        key_id = backend.any_id_to_key_id(key_ref)
        return str(backend.keys[key_id].arn)
    except (KeyError, AttributeError, TypeError) as exc:
        raise _client_error("KMS.NotFoundException", f"Invalid keyId '{key_ref}'") from exc


def _bucket_default(bucket: Any) -> tuple[str | None, str | None]:
    rule = (bucket.encryption or {}).get("Rule") or {}
    default = rule.get("ApplyServerSideEncryptionByDefault") or {}
    return default.get("SSEAlgorithm"), default.get("KMSMasterKeyID")


def choose(bucket: Any, header_algorithm: str | None, header_key: str | None) -> Encryption:
    """The encryption S3 applies to a new object of ``bucket`` given the request's SSE headers."""
    account_id, region = bucket.account_id, bucket.region_name
    algorithm, key_ref = header_algorithm, header_key
    if algorithm is None:
        if key_ref is not None:
            raise _client_error(
                "InvalidArgument",
                "Server Side Encryption with AWS KMS managed key requires HTTP header"
                " x-amz-server-side-encryption : aws:kms",
            )
        algorithm, key_ref = _bucket_default(bucket)
        algorithm = algorithm or "AES256"
    if algorithm not in KMS_ALGORITHMS:
        if header_key is not None:
            raise _client_error(
                "InvalidArgument", f"A KMS key id cannot be used with server-side encryption {algorithm}"
            )
        return Encryption(algorithm)
    if key_ref:
        return Encryption(algorithm, resolve_key_arn(account_id, region, key_ref))
    return Encryption(algorithm, aws_managed_key_arn(account_id, region))


def _put_object(original: Any) -> Any:
    def put_object(
        self: Any, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any
    ) -> Any:
        bucket = self.get_bucket(bucket_name)
        chosen = choose(bucket, kwargs.get("encryption"), kwargs.get("kms_key_id"))
        kwargs["encryption"] = chosen.algorithm
        kwargs["kms_key_id"] = chosen.kms_key_arn
        return original(self, bucket_name, key_name, value, *args, **kwargs)

    return put_object


def _copy_object(original: Any) -> Any:
    def copy_object(
        self: Any,
        src_key: Any,
        dest_bucket_name: str,
        dest_key_name: str,
        storage: str | None = None,
        encryption: str | None = None,
        kms_key_id: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        in_place = src_key.name == dest_key_name and src_key.bucket_name == dest_bucket_name
        if in_place and not encryption and src_key.encryption not in (None, "AES256"):
            # moto would force "AES256" here, which put_object cannot tell from a header: decide now
            chosen = choose(self.get_bucket(dest_bucket_name), None, kms_key_id)
            encryption, kms_key_id = chosen.algorithm, chosen.kms_key_arn
        return original(
            self, src_key, dest_bucket_name, dest_key_name, storage, encryption, kms_key_id, *args, **kwargs
        )

    return copy_object


def _create_multipart_upload(original: Any) -> Any:
    def create_multipart_upload(
        self: Any,
        bucket_name: str,
        key_name: str,
        metadata: Any,
        storage_type: str,
        tags: dict[str, str],
        acl: Any,
        sse_encryption: str | None,
        kms_key_id: str | None,
    ) -> Any:
        chosen = choose(self.get_bucket(bucket_name), sse_encryption, kms_key_id)
        return original(
            self,
            bucket_name,
            key_name,
            metadata,
            storage_type,
            tags,
            acl,
            chosen.algorithm,
            chosen.kms_key_arn,
        )

    return create_multipart_upload


SSE_S3_DEFAULT = {
    "Rule": {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}
}


def _get_bucket_encryption(original: Any) -> Any:
    def get_bucket_encryption(self: Any, bucket_name: str) -> dict[str, Any] | None:
        return original(self, bucket_name) or copy.deepcopy(SSE_S3_DEFAULT)

    return get_bucket_encryption


PATCHES = [
    Patch(
        "moto.s3.models.S3Backend.put_object",
        "moto takes the bucket's default KMS key for 'aws:kms' without a key id; S3 uses the"
        " AWS-managed key aws/s3 then, stores key ARNs and applies SSE-S3 when nothing is configured",
        _put_object,
    ),
    Patch(
        "moto.s3.models.S3Backend.get_bucket_encryption",
        "moto says a new bucket has no default encryption; since January 2023 every bucket has SSE-S3"
        " (AES256) by default, and GetBucketEncryption says so",
        _get_bucket_encryption,
    ),
    Patch(
        "moto.s3.models.S3Backend.copy_object",
        "moto encrypts a copy onto the same key without an SSE header with AES256 when the source"
        " was KMS-encrypted; S3 applies the bucket's default encryption (its KMS key) then",
        _copy_object,
    ),
    Patch(
        "moto.s3.models.S3Backend.create_multipart_upload",
        "a multipart upload's encryption is chosen when it is created, like a PutObject's",
        _create_multipart_upload,
    ),
]
