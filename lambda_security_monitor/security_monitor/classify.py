"""Classification: pure functions from what AWS answered to one finding per resource.

Since 2023 every new bucket has SSE-S3 and every table an AWS-owned key, so "is it encrypted" is
always yes; the meaningful question is "is it KMS, and with which key". A NON_COMPLIANT resource
is EXEMPTED only when its name is declared in Terraform (``security_scan_exemptions``); its tags
exempt nothing, and are read only to say that it carries the exemption tag without a declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

from lambda_common.alerts import display_text
from security_monitor.access import AWS_MANAGED_DYNAMODB_KEY, AwsCallError, ManagedKeyLookup

ResourceType = Literal["s3_bucket", "dynamodb_table"]
Status = Literal["COMPLIANT", "NON_COMPLIANT", "EXEMPTED", "ERROR"]

KMS_ALGORITHMS: Final = frozenset({"aws:kms", "aws:kms:dsse"})
COMPLIANT_TABLE_SSE_STATUSES: Final = frozenset({"ENABLED", "UPDATING"})

DEFAULT_EXEMPTION_TAG_KEY: Final = "SecurityScanExemption"
EXEMPTIONS_VARIABLE: Final = "security_scan_exemptions"
"""The Terraform variable that declares exemptions, as findings name it."""


class Finding(TypedDict):
    resource_type: ResourceType
    name: str
    region: str | None
    status: Status
    reason: str
    kms_key: str | None
    bucket_key_enabled: bool | None
    exemption: str | None
    """For EXEMPTED: the reason declared in ``security_scan_exemptions``; else None."""


def new_finding(
    resource_type: ResourceType,
    name: str,
    region: str | None,
    status: Status,
    reason: str,
    kms_key: str | None = None,
    bucket_key_enabled: bool | None = None,
) -> Finding:
    return Finding(
        resource_type=resource_type,
        name=name,
        region=region,
        status=status,
        reason=reason,
        kms_key=kms_key,
        bucket_key_enabled=bucket_key_enabled,
        exemption=None,
    )


# --- exemptions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExemptionRules:
    """What exempts a non-compliant resource: being named in ``declared`` (and nothing else).

    A name exempts every bucket and every table of that name (in every scanned region).
    ``tag_key`` is only read to report a resource that carries it without being declared.
    """

    declared: Mapping[str, str]
    tag_key: str = DEFAULT_EXEMPTION_TAG_KEY

    def reason_for(self, name: str) -> str | None:
        return self.declared.get(name)


def _with_note(finding: Finding, note: str) -> Finding:
    return Finding(**{**finding, "reason": f"{finding['reason']}; {note}"})


def undeclared_tag_note(tag_key: str, value: str) -> str:
    """What a non-compliant finding says about an exemption tag that is not backed by a declaration
    (the value is quoted and escaped: whoever tagged the resource chose it)."""
    return f"tagged {tag_key}={display_text(value)} but not declared in {EXEMPTIONS_VARIABLE}"


def apply_exemption(
    finding: Finding, rules: ExemptionRules, read_tags: Callable[[], Mapping[str, str]]
) -> Finding:
    """A NON_COMPLIANT finding, EXEMPTED (with the declared reason) when its name is declared.

    Otherwise it stays NON_COMPLIANT; its tags are read only to say so when it carries the
    exemption tag (which exempts nothing), or that they could not be read.
    """
    declared_reason = rules.reason_for(finding["name"])
    if declared_reason is not None:
        return Finding(**{**finding, "status": "EXEMPTED", "exemption": declared_reason})
    try:
        tags = read_tags()
    except AwsCallError as err:
        return _with_note(finding, f"exemption tag {rules.tag_key} could not be read: {err.describe()}")
    value = tags.get(rules.tag_key)
    if value is None:
        return finding
    return _with_note(finding, undeclared_tag_note(rules.tag_key, value))


# --- S3 ----------------------------------------------------------------------------------------


def classify_bucket_encryption(name: str, region: str | None, configuration: Mapping[str, Any]) -> Finding:
    """Classify a GetBucketEncryption ServerSideEncryptionConfiguration (empty: none)."""
    for rule in configuration.get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault")
        if not default:
            continue
        algorithm = default.get("SSEAlgorithm")
        bucket_key = bool(rule.get("BucketKeyEnabled", False))
        if algorithm in KMS_ALGORITHMS:
            key_id = default.get("KMSMasterKeyID")
            key_text = f"key {key_id}" if key_id else "the AWS-managed key aws/s3"
            bucket_key_text = "enabled" if bucket_key else "disabled"
            return new_finding(
                "s3_bucket",
                name,
                region,
                "COMPLIANT",
                f"{algorithm} with {key_text}, S3 Bucket Key {bucket_key_text}",
                kms_key=key_id,
                bucket_key_enabled=bucket_key,
            )
        if algorithm == "AES256":
            return new_finding("s3_bucket", name, region, "NON_COMPLIANT", "SSE-S3, not KMS")
        return new_finding(
            "s3_bucket", name, region, "NON_COMPLIANT", f"default encryption {algorithm!r} is not KMS"
        )
    return new_finding("s3_bucket", name, region, "NON_COMPLIANT", "no default encryption")


# --- DynamoDB ----------------------------------------------------------------------------------


def classify_table(
    name: str, region: str, table: Mapping[str, Any], managed_key: Callable[[], ManagedKeyLookup]
) -> Finding:
    """Classify a DescribeTable ``Table``; ``managed_key`` is called only for KMS tables."""
    sse = table.get("SSEDescription")
    if not sse:
        return new_finding(
            "dynamodb_table", name, region, "NON_COMPLIANT", "encrypted with an AWS-owned key, not KMS"
        )
    key_arn = sse.get("KMSMasterKeyArn")
    sse_type, sse_status = sse.get("SSEType"), sse.get("Status")
    if sse_type != "KMS" or sse_status not in COMPLIANT_TABLE_SSE_STATUSES:
        return new_finding(
            "dynamodb_table",
            name,
            region,
            "NON_COMPLIANT",
            f"server-side encryption is type {sse_type}, status {sse_status} (expected KMS, ENABLED)",
            kms_key=key_arn,
        )
    lookup = managed_key()
    if lookup.error is not None:
        reason = f"KMS; could not tell whether the key is {AWS_MANAGED_DYNAMODB_KEY} ({lookup.error})"
    elif key_arn is not None and key_arn == lookup.arn:
        reason = f"KMS with the AWS-managed key {AWS_MANAGED_DYNAMODB_KEY}"
    else:
        reason = "KMS with a customer managed key"
    return new_finding("dynamodb_table", name, region, "COMPLIANT", reason, kms_key=key_arn)
