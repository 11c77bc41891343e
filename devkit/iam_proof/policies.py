"""The deployed stack's policies: every policy document of the stack's resources (and of the
policy documents it exports) read back through the AWS API, as a :class:`Carrier` that can put a
changed version back; and the IAM users of the proof's own that hold an exported document."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from devkit.iam_proof.grants import Carrier, as_list, principals_of
from devkit.pipeline import Pipeline
from devkit.stack import Stack


def _doc(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    parsed = json.loads(value) if value else {}
    return parsed if isinstance(parsed, dict) else {}


def state_resources(stack: Stack) -> list[dict[str, Any]]:
    shown = json.loads(stack.workspace.run("show", "-json", "-no-color").stdout or "{}")
    resources: list[dict[str, Any]] = []
    modules = [shown.get("values", {}).get("root_module", {})]
    while modules:
        module = modules.pop()
        resources.extend(r for r in module.get("resources", []) if r.get("mode") == "managed")
        modules.extend(module.get("child_modules", []))
    return resources


def _role_carriers(pipeline: Pipeline, resource: dict[str, Any], inline: dict[Any, str]) -> list[Carrier]:
    """The trust policy, inline policies and attached managed policies of one role."""
    iam = pipeline.client("iam")
    role = iam.get_role(RoleName=resource["values"]["name"])["Role"]
    name, arn = role["RoleName"], role["Arn"]
    found = [
        Carrier(
            "trust-policy",
            name,
            "",
            resource["address"],
            _doc(role["AssumeRolePolicyDocument"]),
            "",
            lambda d: iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(d)),
            lambda: _doc(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]),
        )
    ]
    for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = _doc(iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
        found.append(
            Carrier(
                "role-policy",
                name,
                policy_name,
                inline.get((name, policy_name), f"inline policy {policy_name} of role {name}"),
                document,
                arn,
                lambda d, p=policy_name: iam.put_role_policy(
                    RoleName=name, PolicyName=p, PolicyDocument=json.dumps(d)
                ),
                lambda p=policy_name: _doc(
                    iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                ),
            )
        )
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        policy_arn = attached["PolicyArn"]
        found.append(
            Carrier(
                "managed-policy",
                name,
                policy_arn,
                f"aws_iam_role_policy_attachment (role {name})",
                _managed_policy_document(iam, policy_arn),
                arn,
                lambda d, a=policy_arn: _replace_managed_policy(iam, a, d),
                lambda a=policy_arn: _managed_policy_document(iam, a),
            )
        )
    return found


def _topic_carrier(pipeline: Pipeline, resource: dict[str, Any]) -> Carrier:
    sns, topic = pipeline.client("sns"), resource["values"]["arn"]
    document = _doc(sns.get_topic_attributes(TopicArn=topic)["Attributes"].get("Policy"))
    return Carrier(
        "topic-policy",
        topic,
        "",
        resource["address"],
        document,
        "",
        lambda d: sns.set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(d)
        ),
        lambda: _doc(sns.get_topic_attributes(TopicArn=topic)["Attributes"].get("Policy")),
    )


def _queue_carrier(pipeline: Pipeline, resource: dict[str, Any]) -> Carrier:
    """The queue's policy, held by the queue's ARN (what a denial names). A policy of Deny
    statements only (the dead-letter queue's TLS guardrail) carries no grant."""
    sqs, queue = pipeline.client("sqs"), resource["values"]["queue_url"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy", "QueueArn"])["Attributes"]
    return Carrier(
        "queue-policy",
        attributes["QueueArn"],
        "",
        resource["address"],
        _doc(attributes.get("Policy")),
        "",
        lambda d: sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(d)}),
        lambda: _doc(
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Policy"])["Attributes"].get("Policy")
        ),
    )


def _bucket_carrier(pipeline: Pipeline, resource: dict[str, Any]) -> Carrier:
    s3, bucket = pipeline.client("s3"), resource["values"]["bucket"]
    return Carrier(
        "bucket-policy",
        bucket,
        "",
        resource["address"],
        _doc(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
        "",
        lambda d: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(d)),
        lambda: _doc(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
    )


def _key_carrier(pipeline: Pipeline, resource: dict[str, Any]) -> Carrier:
    kms, key = pipeline.client("kms"), resource["values"]["arn"]
    return Carrier(
        "key-policy",
        key,
        "default",
        resource["address"],
        _doc(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]),
        "",
        lambda d: kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(d)),
        lambda: _doc(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"]),
    )


def _function_policy_carrier(pipeline: Pipeline, function: str, resources: list[dict[str, Any]]) -> Carrier:
    """One function policy holds every permission of the function."""
    lam = pipeline.client("lambda")
    addresses = ", ".join(
        r["address"]
        for r in resources
        if r["type"] == "aws_lambda_permission" and r["values"].get("function_name") == function
    )
    return Carrier(
        "lambda-permission",
        function,
        "",
        addresses,
        _doc(lam.get_policy(FunctionName=function)["Policy"]),
        "",
        lambda d: _replace_permissions(lam, function, d),
        lambda: _doc(lam.get_policy(FunctionName=function)["Policy"]),
    )


_RESOURCE_CARRIERS: dict[str, Callable[[Pipeline, dict[str, Any]], Carrier]] = {
    "aws_sns_topic_policy": _topic_carrier,
    "aws_sqs_queue_policy": _queue_carrier,
    "aws_s3_bucket_policy": _bucket_carrier,
    "aws_kms_key": _key_carrier,
}


def carriers(pipeline: Pipeline, resources: list[dict[str, Any]]) -> list[Carrier]:
    """Every deployed policy document of the stack's resources, read back through the AWS API."""
    inline = {
        (r["values"].get("role"), r["values"].get("name")): r["address"]
        for r in resources
        if r["type"] == "aws_iam_role_policy"
    }
    found: list[Carrier] = []
    functions: list[str] = []
    for resource in resources:
        kind = resource["type"]
        if kind == "aws_iam_role":
            found.extend(_role_carriers(pipeline, resource, inline))
        elif kind in _RESOURCE_CARRIERS:
            found.append(_RESOURCE_CARRIERS[kind](pipeline, resource))
        elif kind == "aws_lambda_permission" and resource["values"]["function_name"] not in functions:
            functions.append(resource["values"]["function_name"])
    found.extend(_function_policy_carrier(pipeline, function, resources) for function in functions)
    return found


def output_documents(stack: Stack) -> dict[str, dict[str, Any]]:
    """Outputs whose value is an IAM policy document (a JSON object with Statement)."""
    shown = json.loads(stack.workspace.run("output", "-json", "-no-color").stdout or "{}")
    found = {}
    for name, entry in shown.items():
        with contextlib.suppress(ValueError, TypeError):
            value = json.loads(entry.get("value")) if isinstance(entry.get("value"), str) else None
            if isinstance(value, dict) and "Statement" in value:
                found[name] = value
    return found


@dataclass
class Operator:
    """An IAM user of the proof's own, holding one exported policy document (as an operator would)."""

    output: str
    user: str
    arn: str
    credentials: tuple[str, str]


def proof_user(
    pipeline: Pipeline,
    user: str,
    policy: str,
    document: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> tuple[str, tuple[str, str]]:
    """An IAM user of the proof's own holding `document` as inline policy `policy`: (ARN, keys)."""
    iam = pipeline.client("iam")
    tagged = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    arn = iam.create_user(UserName=user, **tagged)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(UserName=user, PolicyName=policy, PolicyDocument=json.dumps(document))
    return arn, (key["AccessKeyId"], key["SecretAccessKey"])


def operator_carriers(
    pipeline: Pipeline,
    documents: dict[str, dict[str, Any]],
    prefix: str = "iam-proof",
    tags: dict[str, str] | None = None,
) -> tuple[list[Carrier], dict[str, Operator]]:
    iam = pipeline.client("iam")
    carriers_found: list[Carrier] = []
    operators: dict[str, Operator] = {}
    for output, document in documents.items():
        user = f"{prefix}-{output.replace('_', '-')}"[:64]
        arn, credentials = proof_user(pipeline, user, output, document, tags)
        operators[output] = Operator(output, user, arn, credentials)
        carriers_found.append(
            Carrier(
                "operator-policy",
                user,
                output,
                f"output.{output}",
                document,
                arn,
                lambda d, u=user, o=output: iam.put_user_policy(
                    UserName=u, PolicyName=o, PolicyDocument=json.dumps(d)
                ),
                lambda u=user, o=output: _doc(
                    iam.get_user_policy(UserName=u, PolicyName=o)["PolicyDocument"]
                ),
            )
        )
    return carriers_found, operators


def _managed_policy_document(iam: Any, policy_arn: str) -> dict[str, Any]:
    version = iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
    return _doc(iam.get_policy_version(PolicyArn=policy_arn, VersionId=version)["PolicyVersion"]["Document"])


def _replace_managed_policy(iam: Any, policy_arn: str, document: dict[str, Any]) -> None:
    versions = iam.list_policy_versions(PolicyArn=policy_arn)["Versions"]
    for version in versions:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=policy_arn, VersionId=version["VersionId"])
    iam.create_policy_version(PolicyArn=policy_arn, PolicyDocument=json.dumps(document), SetAsDefault=True)


def _replace_permissions(lam: Any, function: str, document: dict[str, Any]) -> None:
    """Make the function policy equal `document` (statements removed or re-added by Sid)."""
    current = _doc(lam.get_policy(FunctionName=function)["Policy"]) if _has_policy(lam, function) else {}
    have = {s["Sid"]: s for s in as_list(current.get("Statement"))}
    want = {s["Sid"]: s for s in as_list(document.get("Statement"))}
    for sid in set(have) - set(want):
        lam.remove_permission(FunctionName=function, StatementId=sid)
    for sid in set(want) - set(have):
        statement = want[sid]
        if statement.get("Effect") != "Allow":
            continue  # a function policy holds only Allows: leaving the statement out takes it away
        arguments: dict[str, Any] = {
            "FunctionName": function,
            "StatementId": sid,
            "Action": as_list(statement["Action"])[0],
            "Principal": principals_of(statement)[0],
        }
        condition = statement.get("Condition", {})
        source_arn = condition.get("ArnLike", {}).get("AWS:SourceArn")
        source_account = condition.get("StringEquals", {}).get("AWS:SourceAccount")
        if source_arn:
            arguments["SourceArn"] = source_arn
        if source_account:
            arguments["SourceAccount"] = source_account
        lam.add_permission(**arguments)


def _has_policy(lam: Any, function: str) -> bool:
    try:
        lam.get_policy(FunctionName=function)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return False
        raise
    return True
