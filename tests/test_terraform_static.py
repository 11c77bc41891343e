"""Static checks of the Terraform configuration that `terraform test` cannot express.

Parses every root ``*.tf`` with python-hcl2 and checks the repository's IAM and style rules:
no wildcard in an Allow statement's actions, a "*" resource only for the actions AWS offers no
resource-level permission for (each with its comment), every policy from a policy document,
every variable typed and described, provider.tf free of local-emulator settings.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hcl2
import pytest

from devkit import functions, toolchain

ROOT = Path(__file__).resolve().parent.parent
TF_FILES = sorted(p for p in ROOT.glob("*.tf") if not p.name.endswith("_override.tf"))
EXPECTED_FILES = {
    "provider.tf",
    "variables.tf",
    "outputs.tf",
    "kms.tf",
    "s3.tf",
    "dynamodb.tf",
    "sns.tf",
    "sqs.tf",
    "iam.tf",
    "step_functions.tf",
    "cloudwatch.tf",
    *(function.terraform_file for function in functions.FUNCTIONS),  # functions.json
}
# The functions' Terraform resource names (trigger, ...): their documents, log groups, dependencies.
FUNCTION_RESOURCES = [function.resource.split(".", 1)[1] for function in functions.FUNCTIONS]
# Actions without resource-level permissions: AWS only accepts "*" as their resource.
STAR_RESOURCE_ACTIONS = {
    "s3:ListAllMyBuckets",
    "dynamodb:ListTables",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "kms:ListAliases",
}
KEY_POLICY_DOCUMENTS = {
    "kms_administration",
    "kms_s3",
    "kms_dynamodb",
    "kms_sns",
    "kms_logs",
    "kms_stepfunctions",
    "kms_sqs",
}


def unquote(value: object) -> object:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parsed() -> dict[str, dict]:
    return {path.name: hcl2.loads(path.read_text()) for path in TF_FILES}


def blocks(kind: str) -> Iterator[tuple[str, str, str, dict]]:
    """(file, type, name, body) of every resource/data block; (file, "", name, body) for variable/output."""
    for file, document in parsed().items():
        for entry in document.get(kind, []):
            for type_name, inner in entry.items():
                if kind in ("variable", "output"):
                    yield file, "", str(unquote(type_name)), inner
                    continue
                for name, body in inner.items():
                    yield file, str(unquote(type_name)), str(unquote(name)), body


def policy_documents() -> dict[str, dict]:
    return {name: body for _, kind, name, body in blocks("data") if kind == "aws_iam_policy_document"}


def as_list(value: object) -> list:
    """A list attribute, or a single expression (e.g. a for-expression) as a one-element list."""
    return value if isinstance(value, list) else [value]


def document_statements(body: dict) -> list[dict]:
    """A policy document's statements, with the content of its ``dynamic "statement"`` blocks (a
    statement granted in one workflow profile only: ``for_each = <cond> ? ["Sid"] : []``, ``sid =
    statement.value``), each with its sid resolved from the for_each."""
    found = list(body.get("statement", []))
    for entry in body.get("dynamic", []):
        for label, block in entry.items():
            if unquote(label) != "statement":
                continue
            sids = re.findall(r'\["([A-Za-z0-9]+)"\]', str(block["for_each"]))
            assert len(sids) == 1, f"a dynamic statement names its one sid in for_each: {block['for_each']}"
            for content in block["content"]:
                found.append({**content, "sid": f'"{sids[0]}"'})
    return found


def statements() -> Iterator[tuple[str, dict]]:
    for name, body in policy_documents().items():
        for statement in document_statements(body):
            yield name, statement


def test_the_root_has_exactly_the_documented_flat_layout() -> None:
    assert {p.name for p in TF_FILES} == EXPECTED_FILES


def test_iam_documents_exist_for_every_role_and_policy() -> None:
    assert {*FUNCTION_RESOURCES, "step_functions", "uploads_bucket", "alerts_topic"} <= set(
        policy_documents()
    )


@pytest.mark.parametrize(
    ("document", "statement"), list(statements()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_no_statement_allows_a_wildcard_action(document: str, statement: dict) -> None:
    actions = [unquote(a) for a in statement.get("actions", [])]
    assert "*" not in actions, f"{document}: a bare '*' action"
    assert not statement.get("not_actions"), f"{document}: not_actions grants everything else"
    if unquote(statement.get("effect", '"Allow"')) == "Allow":
        wildcards = [a for a in actions if "*" in str(a)]
        assert not wildcards, f"{document}/{unquote(statement.get('sid'))}: wildcard actions {wildcards}"


@pytest.mark.parametrize(
    ("document", "statement"), list(statements()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_star_resources_only_where_aws_requires_them_and_commented(document: str, statement: dict) -> None:
    resources = [unquote(r) for r in as_list(statement.get("resources", []))]
    if "*" not in resources:
        return
    comments = " ".join(c["value"] for c in statement.get("__comments__", []))
    assert "requires" in comments, f"{document}: a '*' resource needs a comment saying AWS requires it"
    if document in KEY_POLICY_DOCUMENTS:
        return  # in a key policy "*" means the key itself
    actions = {str(unquote(a)) for a in statement.get("actions", [])}
    assert actions <= STAR_RESOURCE_ACTIONS, (
        f"{document}: '*' resource for {sorted(actions - STAR_RESOURCE_ACTIONS)}"
    )


def test_no_other_resource_pattern_spans_more_than_a_service_resource_type() -> None:
    """Account-wide patterns exist only where the monitor must read every bucket and table."""
    broad = {
        (document, unquote(statement.get("sid")))
        for document, statement in statements()
        for resource in as_list(statement.get("resources", []))
        if ":::*" in str(resource)
        or re.search(r":(table|function|key|topic|stateMachine)[/:]\*", str(resource))
    }
    assert broad == {
        ("security_monitor", "ReadBucketEncryptionAndTags"),
        ("security_monitor", "DescribeTablesAndTags"),
    }


@pytest.mark.parametrize(
    ("resource_type", "attribute"),
    [
        ("aws_iam_role", "assume_role_policy"),
        ("aws_iam_role_policy", "policy"),
        ("aws_kms_key", "policy"),
        ("aws_s3_bucket_policy", "policy"),
        ("aws_sns_topic_policy", "policy"),
    ],
)
def test_every_policy_comes_from_a_policy_document(resource_type: str, attribute: str) -> None:
    found = [(name, body) for _, kind, name, body in blocks("resource") if kind == resource_type]
    assert found
    for name, body in found:
        assert re.fullmatch(r"\$\{data\.aws_iam_policy_document\.\w+\.json\}", body[attribute]), (
            f"{resource_type}.{name}.{attribute} must be a data.aws_iam_policy_document's json"
        )


def test_each_key_carries_its_own_policy_document() -> None:
    keys = {name: body["policy"] for _, kind, name, body in blocks("resource") if kind == "aws_kms_key"}
    assert keys == {
        "s3": "${data.aws_iam_policy_document.kms_s3.json}",
        "dynamodb": "${data.aws_iam_policy_document.kms_dynamodb.json}",
        "sns": "${data.aws_iam_policy_document.kms_sns.json}",
        "logs": "${data.aws_iam_policy_document.kms_logs.json}",
        "stepfunctions": "${data.aws_iam_policy_document.kms_stepfunctions.json}",
        "sqs": "${data.aws_iam_policy_document.kms_sqs.json}",
    }


def conditions_of(statement: dict) -> dict[str, tuple[str, list]]:
    """Condition variable -> (test, values) of a statement."""
    return {
        str(unquote(c["variable"])): (str(unquote(c["test"])), [unquote(v) for v in as_list(c["values"])])
        for c in statement.get("condition", [])
    }


def service_principals(statement: dict) -> list[str]:
    return [
        str(unquote(identifier))
        for principal in statement.get("principals", [])
        if unquote(principal["type"]) == "Service"
        for identifier in as_list(principal["identifiers"])
    ]


# The one key policy statement for a service principal without aws:SourceAccount: the CloudWatch
# Logs user guide documents log group encryption with the encryption context only (kms.tf).
SOURCE_ACCOUNT_EXEMPT = {("kms_logs", "CloudWatchLogsUsesKeyForThisStacksLogGroups")}


def key_policy_service_statements() -> list[tuple[str, dict]]:
    documents = policy_documents()
    return [
        (name, statement)
        for name in sorted(KEY_POLICY_DOCUMENTS)
        for statement in document_statements(documents[name])
        if service_principals(statement)
    ]


@pytest.mark.parametrize(
    ("document", "statement"),
    key_policy_service_statements(),
    ids=lambda v: v if isinstance(v, str) else str(unquote(v.get("sid"))),
)
def test_every_key_policy_statement_for_a_service_is_pinned_to_this_account(
    document: str, statement: dict
) -> None:
    """Confused-deputy protection: a service principal may use a key only for this account (and,
    where the statement names it, for the source resource), never for another AWS customer."""
    sid = str(unquote(statement.get("sid")))
    conditions = conditions_of(statement)
    if (document, sid) in SOURCE_ACCOUNT_EXEMPT:
        assert "aws:SourceAccount" not in conditions, (
            f"{document}/{sid}: no longer exempt, drop the exemption"
        )
        test, values = conditions["kms:EncryptionContext:aws:logs:arn"]
        assert test == "ArnLike", f"{document}/{sid}"
        assert values == ["${local.log_group_arns}"], f"{document}/{sid}"
        return
    assert conditions.get("aws:SourceAccount") == ("StringEquals", ["${local.account_id}"]), (
        f"{document}/{sid}: a service principal statement needs aws:SourceAccount = local.account_id"
    )
    if "aws:SourceArn" in conditions:
        assert conditions["aws:SourceArn"][0] in {"ArnEquals", "ArnLike", "StringEquals"}, f"{document}/{sid}"


def test_the_service_principal_statements_are_the_known_ones() -> None:
    """A new service principal in a key policy is looked at (and pinned) before it lands."""
    found = {
        (document, str(unquote(statement.get("sid"))), tuple(service_principals(statement)))
        for document, statement in key_policy_service_statements()
    }
    assert found == {
        (
            "kms_logs",
            "CloudWatchLogsUsesKeyForThisStacksLogGroups",
            ("logs.${var.aws_region}.amazonaws.com",),
        ),
        ("kms_sns", "CloudWatchAlarmsPublishToEncryptedTopic", ("cloudwatch.amazonaws.com",)),
        ("kms_sqs", "UploadBucketNotifiesEncryptedQueue", ("s3.amazonaws.com",)),
        ("kms_stepfunctions", "StepFunctionsUsesKeyForThisStateMachine", ("states.amazonaws.com",)),
        ("kms_stepfunctions", "LogDeliveryDecryptsExecutionEvents", ("delivery.logs.amazonaws.com",)),
    }


def test_key_administration_is_granted_to_key_admin_principals_only() -> None:
    """The administration statement names local.key_admin_principals, which falls back to the
    account root; no key policy grants an administration action in a statement of its own."""
    documents = policy_documents()
    (administration,) = document_statements(documents["kms_administration"])
    (principal,) = administration["principals"]
    assert unquote(principal["type"]) == "AWS"
    assert principal["identifiers"] == "${local.key_admin_principals}"
    for name in KEY_POLICY_DOCUMENTS - {"kms_administration"}:
        assert documents[name]["source_policy_documents"] == [
            "${data.aws_iam_policy_document.kms_administration.json}"
        ], name
        for statement in document_statements(documents[name]):
            actions = {str(unquote(a)) for a in statement.get("actions", [])}
            assert not actions & {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey"}, name
    local = next(
        entry["key_admin_principals"]
        for document in parsed().values()
        for entry in document.get("locals", [])
        if "key_admin_principals" in entry
    )
    assert "var.key_admin_principals" in local, local
    assert ":root" in local, local


def test_the_alert_topic_denies_requests_without_tls() -> None:
    """The topic's TLS guardrail, and that the topic's policy is this document (tests/pipeline.tftest.hcl
    cannot compare it at plan: the document is read only at apply)."""
    policies = {
        name: (body["arn"], body["policy"])
        for _, kind, name, body in blocks("resource")
        if kind == "aws_sns_topic_policy"
    }
    assert policies == {
        "alerts": ("${aws_sns_topic.alerts.arn}", "${data.aws_iam_policy_document.alerts_topic.json}")
    }
    statements = {
        str(unquote(s.get("sid"))): s for s in document_statements(policy_documents()["alerts_topic"])
    }
    deny = statements["DenyInsecureTransport"]
    assert unquote(deny["effect"]) == "Deny"
    assert [unquote(a) for a in deny["actions"]] == ["sns:*"]
    assert conditions_of(deny) == {"aws:SecureTransport": ("Bool", ["false"])}
    alarms = conditions_of(statements["CloudWatchAlarmsPublish"])
    assert alarms["aws:SourceAccount"] == ("StringEquals", ["${local.account_id}"])
    assert alarms["aws:SourceArn"] == ("ArnLike", ["${local.alarm_source_arn}"])


def test_the_upload_bucket_policy_is_the_hardened_document() -> None:
    """What tests/pipeline.tftest.hcl cannot compare at plan: that document is read only at apply."""
    policies = {
        name: (body["bucket"], body["policy"])
        for _, kind, name, body in blocks("resource")
        if kind == "aws_s3_bucket_policy"
    }
    assert policies == {
        "uploads": ("${aws_s3_bucket.uploads.id}", "${data.aws_iam_policy_document.uploads_bucket.json}")
    }


def test_every_log_group_is_named_in_the_logs_key_policy_and_encrypted_with_it() -> None:
    """The logs key serves only the log groups in local.log_group_names: a log group named any
    other way would be refused by CloudWatch Logs (its ARN is not in the key policy's condition)."""
    groups = {name: body for _, kind, name, body in blocks("resource") if kind == "aws_cloudwatch_log_group"}
    assert set(groups) == {*(f.log_group.split(".", 1)[1] for f in functions.FUNCTIONS), "state_machine"}
    for name, body in groups.items():
        assert body["name"] == f"${{local.log_group_names.{name}}}", name
        assert body["kms_key_id"] == "${aws_kms_key.logs.arn}", name
    local_names = next(
        entry["log_group_names"]
        for document in parsed().values()
        for entry in document.get("locals", [])
        if "log_group_names" in entry
    )
    # The functions' log groups come from functions.json (provider.tf), the state machine's by hand.
    assert "for f in values(local.functions)" in local_names
    assert 'trimprefix(f.log_group, "aws_cloudwatch_log_group.")' in local_names
    assert "{state_machine = " in local_names


def test_every_variable_has_a_type_and_a_description() -> None:
    variables = list(blocks("variable"))
    assert len(variables) > 10
    for _, _, name, body in variables:
        assert body.get("type"), f"variable {name} has no type"
        assert str(unquote(body.get("description", ""))).strip(), f"variable {name} has no description"


def test_every_output_has_a_description_and_the_seed_names_exist() -> None:
    outputs = {name: body for _, _, name, body in blocks("output")}
    for name, body in outputs.items():
        assert str(unquote(body.get("description", ""))).strip(), f"output {name} has no description"
    assert {
        "s3_bucket_name",
        "dynamodb_table_name",
        "step_function_arn",
        *(function.output for function in functions.FUNCTIONS),
        "sns_topic_arn",
        "kms_s3_key_arn",
        "kms_dynamodb_key_arn",
        "kms_sns_key_arn",
    } <= set(outputs)


def test_the_reconcile_operator_policy_grants_exactly_the_calls_the_tool_makes() -> None:
    """scripts/reconcile.py names the IAM action of every AWS call it makes (``aws_errors(...)``);
    the operator policy grants those, plus the use of the table key (through DynamoDB) and of the
    execution key (through Step Functions), plus the dead-letter queue's re-drive (a message move
    task into the upload queue, as AWS documents it), and is an output."""
    documents = policy_documents()
    document = documents["reconcile_operator"]
    assert document["source_policy_documents"] == ["${data.aws_iam_policy_document.use_execution_key.json}"]
    granted = {
        str(unquote(a))
        for statement in document_statements(document) + documents["use_execution_key"]["statement"]
        for a in statement["actions"]
    }
    script = "\n".join(p.read_text() for p in sorted((ROOT / "ingestion_reconcile").glob("*.py")))
    called = set(re.findall(r'aws_errors\(\s*"([a-z0-9]+:[A-Za-z]+)"', script))
    assert called == {
        "s3:ListBucketVersions",
        "dynamodb:Scan",
        "states:DescribeStateMachine",
        "states:ListExecutions",
        "states:DescribeExecution",
        "states:StartExecution",
    }
    redrive = {
        "sqs:StartMessageMoveTask",
        "sqs:ListMessageMoveTasks",
        "sqs:CancelMessageMoveTask",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    }
    # kms: the table key through DynamoDB, the execution key through Step Functions, the queue key through SQS
    assert granted == called | redrive | {"kms:Decrypt", "kms:GenerateDataKey"}
    outputs = {name: body for _, _, name, body in blocks("output")}
    assert outputs["reconcile_operator_policy_json"]["value"] == (
        "${data.aws_iam_policy_document.reconcile_operator.json}"
    )


def test_provider_file_is_for_real_aws_only() -> None:
    document = parsed()["provider.tf"]
    terraform = document["terraform"][0]
    assert unquote(terraform["required_version"]) == ">= 1.7.0"
    aws = terraform["required_providers"][0]["aws"]
    assert unquote(aws["source"]) == "hashicorp/aws"
    assert unquote(aws["version"]) == ">= 5.61.0, < 7.0.0"
    assert unquote(aws["version"]) == toolchain.PROVIDER_CONSTRAINT, (
        "the tooling picks providers in this range"
    )
    provider = document["provider"][0]['"aws"']
    assert set(provider) - {"__is_block__", "__comments__"} == {"region", "default_tags"}


def test_runtime_defaults_to_python_3_12() -> None:
    runtime = next(body for _, _, name, body in blocks("variable") if name == "lambda_runtime")
    assert unquote(runtime["default"]) == "python3.12"


def test_no_generated_or_local_file_is_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offending = [
        f
        for f in tracked
        if re.search(
            r"(_override\.tf$|\.tfstate|\.auto\.tfvars|(^|/)\.terraform/|\.zip$|(^|/)\.venv/|__pycache__)", f
        )
    ]
    assert offending == []


@pytest.mark.parametrize("function", FUNCTION_RESOURCES)
def test_each_function_waits_for_its_log_group_and_role_policy(function: str) -> None:
    """Created first, the log group keeps its retention; otherwise Lambda creates it unmanaged."""
    body = next(
        b for _, kind, name, b in blocks("resource") if kind == "aws_lambda_function" and name == function
    )
    assert f"${{aws_cloudwatch_log_group.{function}}}" in body.get("depends_on", []), body.get("depends_on")
    assert f"${{aws_iam_role_policy.{function}}}" in body.get("depends_on", [])


def test_handler_tests_use_the_deployed_table_key_schema() -> None:
    """Duplicate detection depends on the key schema, so tests must not use a simpler table."""
    from devkit.lambda_harness import METADATA_TABLE_KEYS

    table = next(
        b for _, kind, name, b in blocks("resource") if kind == "aws_dynamodb_table" and name == "metadata"
    )
    declared = {unquote(table["hash_key"]): "HASH", unquote(table["range_key"]): "RANGE"}
    assert dict(METADATA_TABLE_KEYS) == declared
    assert {unquote(a["name"]): unquote(a["type"]) for a in table["attribute"]} == dict.fromkeys(
        declared, "S"
    )


CHECKOV_SKIP = re.compile(r"^  #checkov:skip=(?P<check>CKV2?_AWS_\d+):(?P<reason>\S.*)$")
BLOCK_START = re.compile(r'^(resource|data) "(\w+)" "(\w+)" \{$')


def inline_checkov_skips() -> list[tuple[str, str, str, str]]:
    """(file, block address, check id, reason) of every ``#checkov:skip=`` comment in the root
    ``*.tf`` files; fails on one that checkov would not apply as written (no reason, not inside a
    resource or data block, a malformed id)."""
    found = []
    for path in TF_FILES:
        block = None
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if start := BLOCK_START.match(line):
                block = f"{start[2]}.{start[3]}" if start[1] == "resource" else f"data.{start[2]}.{start[3]}"
            elif line == "}":
                block = None
            if "checkov:skip" not in line:
                continue
            where = f"{path.name}:{number}"
            skip = CHECKOV_SKIP.match(line)
            assert skip, (
                f"{where}: write `#checkov:skip=CKV_AWS_NNN:<reason>` at the top level of a block: {line!r}"
            )
            assert block is not None, f"{where}: an inline skip applies only inside a resource or data block"
            found.append((path.name, block, skip["check"], skip["reason"].strip()))
    return found


def test_checkov_skips_nothing_globally() -> None:
    """Every accepted checkov finding is skipped inline, on the resource it fires on: a global
    skip-check would also hide the check on every resource added later."""
    config = (ROOT / ".checkov.yaml").read_text()
    keys = [
        line
        for line in config.splitlines()
        if re.match(r"^\s*-?\s*(skip[-_]check|soft[-_]fail[-_]on|hard[-_]fail[-_]on)\s*:", line)
    ]
    assert keys == [], f".checkov.yaml skips or soft-fails checks globally: {keys}"
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"--(skip-check|soft-fail)", makefile), "the checkov recipe skips checks globally"


def test_every_inline_checkov_skip_has_a_reason_and_is_listed_in_the_readme() -> None:
    skips = inline_checkov_skips()
    assert skips, "no inline checkov skip found: the parser, or the README's list, is out of date"
    pairs = [(block, check) for _, block, check, _ in skips]
    assert len(pairs) == len(set(pairs)), "a check is skipped twice on one block"
    for file, block, check, reason in skips:
        assert len(reason.split()) >= 8, f"{file} {block} {check}: the skip needs a reason that says why"
    readme = (ROOT / "README.md").read_text()
    security = readme[readme.index("## Security features") :]
    security = security[: security.index("\n## ", 1)]
    skipped = {check for _, _, check, _ in skips}
    assert {c for c in skipped if f"`{c}`" not in security} == set(), (
        "README's security section must list every inline skip"
    )


def test_the_inline_skip_parser_rejects_a_skip_without_a_reason() -> None:
    for line in (
        "  #checkov:skip=CKV_AWS_18",
        "  #checkov:skip=CKV_AWS_18:",
        "  #checkov:skip=CKV_AWS_18:  ",
    ):
        assert not CHECKOV_SKIP.match(line), line
    assert CHECKOV_SKIP.match("  #checkov:skip=CKV_AWS_18:Access logging is opt-in")


def test_the_roles_that_alert_take_the_publish_document_and_the_writer_does_not() -> None:
    """The alert topic's policy names no role: publishing rests on this source document alone."""
    documents = policy_documents()
    publishing = {
        name
        for name, body in documents.items()
        if "${data.aws_iam_policy_document.publish_alerts.json}" in body.get("source_policy_documents", [])
    }
    assert publishing == {"trigger", "security_monitor", "step_functions"}


def test_the_callers_of_the_encrypted_state_machine_take_the_execution_key_document() -> None:
    """Starting or describing an execution needs the state machine's key through Step Functions."""
    callers = {
        name
        for name, body in policy_documents().items()
        if "${data.aws_iam_policy_document.use_execution_key.json}" in body.get("source_policy_documents", [])
    }
    assert callers == {"trigger", "reconcile_operator"}
