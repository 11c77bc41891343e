"""`make iam-proof`: every IAM grant of the deployed stack is needed, shown on MiniStack with AUTH=true.

1. Deploy the stack once onto MiniStack (IAM, resource and key policies enforced; TLS).
2. Baseline: run every scenario of the pipeline (:data:`SCENARIOS`) and require that each behaves
   and that MiniStack denied nothing but what a scenario denies on purpose.
3. Enumerate the grants from what is deployed, never from a list: every action of every Allow
   statement of the role policies (inline, attached, trust), the topic, queue and bucket policies,
   the Lambda function policies and the KMS key policies, found through the terraform state and read
   back through the AWS API; and of every policy document the stack exports as an output for others
   to attach (the reconcile tool's operator policy): the proof attaches it to an IAM user of its own
   and runs the output's scenarios (reconcile, dead-letter re-drive) as that user.
4. For every grant: take that one action away through the AWS API (no re-apply), rerun the scenarios
   of the principals it applies to, and look in MiniStack's denial log for a denial of exactly that
   action (a delivery S3 makes to a queue answers no request: MiniStack logs a line refusing it);
   restore. Found: ``proven`` (with the scenario and the denial). Not found: ``justified``
   when :data:`JUSTIFICATIONS` says why no emulator can show it and which AWS document requires it,
   else ``unproven``. To save time a statement's actions are first taken away together: each action
   denied then is confirmed alone; the others are taken away together again (a denied call can hide
   a later one), until a run denies none of them. A run that denies none of the removed actions
   follows the baseline's path, so removing any one of them alone would deny nothing either.
5. Write ``build/iam-proof.json`` (one entry per grant, with where it is declared), print a table
   and, last, ``N of M grants proven, K justified, U unproven``. Exit 0 only with 0 unproven.

A grant added to the HCL later is enumerated automatically; if no scenario shows it and no
justification covers it, it is ``unproven`` and the exit status says so: add a scenario, a
justification with its AWS reference, or remove the grant.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fnmatch
import json
import re
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from devkit import toolchain, workspace
from devkit.acting import Acted, Acting, Credentials
from devkit.ministack import Denial, MiniStack, MiniStackError
from devkit.pipeline import FINAL_STATES, Pipeline, TimedOut, wait_for
from devkit.stack import Stack
from scripts.reconcile import Clients, ReconcileError, reconcile

ROOT = toolchain.ROOT
REPORT = ROOT / "build" / "iam-proof.json"
EXEMPTION_TAG = "SecurityScanExemption"
AWS_EVALUATION = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"


# --- grants ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One action of one Allow statement, as deployed."""

    kind: str  # role-policy, managed-policy, trust-policy, topic-policy, queue-policy, bucket-policy, lambda-permission, key-policy
    holder: str  # the role, topic, queue (its ARN), bucket, function or key that carries the policy
    policy: str  # inline policy name, managed policy ARN, or "" when the holder has one policy
    index: int  # the statement's position in the document
    sid: str
    action: str
    principals: tuple[str, ...]  # who it is granted to: the role for identity policies
    condition: str  # the statement's Condition, as JSON (justifications look at kms:ViaService)
    address: str  # the terraform resource that declares it
    declared: str  # file:line of the statement's sid (or of the resource)
    resources: tuple[str, ...] = ()  # the statement's Resource (NotResource: "NotResource:<r>")

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.kind, self.holder, self.policy, self.index)

    def label(self) -> str:
        holder = self.address if self.kind == "key-policy" else short(self.holder)
        return f"{self.kind} {holder} {self.sid or f'#{self.index}'} {self.action}"


def short(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1] if arn.startswith("arn:") else arn


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def principals_of(statement: dict[str, Any]) -> tuple[str, ...]:
    principal = statement.get("Principal", {})
    if principal == "*":
        return ("*",)
    if isinstance(principal, dict):
        return tuple(str(p) for values in principal.values() for p in as_list(values))
    return tuple(str(p) for p in as_list(principal))


def resources_of(statement: dict[str, Any]) -> tuple[str, ...]:
    if "NotResource" in statement:
        return tuple(f"NotResource:{r}" for r in as_list(statement["NotResource"]))
    return tuple(str(r) for r in as_list(statement.get("Resource")))


def condition_keys(condition: str) -> frozenset[str]:
    """The condition keys a statement's Condition (as JSON) tests, lower-case."""
    document = json.loads(condition or "{}")
    return frozenset(key.lower() for tests in document.values() for key in tests)


def allow_statements(document: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, statement)
        for index, statement in enumerate(as_list(document.get("Statement")))
        if statement.get("Effect") == "Allow"
    ]


def grants_of(
    document: dict[str, Any],
    *,
    kind: str,
    holder: str,
    policy: str,
    address: str,
    locate: Callable[[str, str], str],
    identity: str = "",
) -> list[Grant]:
    """One Grant per action of each Allow statement (NotAction counts as one grant, never proven)."""
    found = []
    for index, statement in allow_statements(document):
        actions = [str(a) for a in as_list(statement.get("Action"))]
        if "NotAction" in statement:
            actions = [f"NotAction:{','.join(str(a) for a in as_list(statement['NotAction']))}"]
        sid = str(statement.get("Sid", ""))
        for action in actions:
            found.append(
                Grant(
                    kind=kind,
                    holder=holder,
                    policy=policy,
                    index=index,
                    sid=sid,
                    action=action,
                    principals=(identity,) if identity else principals_of(statement),
                    condition=json.dumps(statement.get("Condition", {}), sort_keys=True),
                    address=address,
                    declared=locate(sid, address),
                    resources=resources_of(statement),
                )
            )
    return found


def without(document: dict[str, Any], index: int, actions: set[str]) -> dict[str, Any]:
    """The document with `actions` taken out of statement `index` (the statement goes if emptied)."""
    changed = copy.deepcopy(document)
    statements = as_list(changed.get("Statement"))
    statement = statements[index]
    kept = [a for a in as_list(statement.get("Action")) if a not in actions]
    if kept:
        statement["Action"] = kept if len(kept) > 1 else kept[0]
    elif len(statements) > 1:
        del statements[index]
    else:
        # AWS refuses a policy without statements: the same statement as a Deny takes it away too.
        statement["Effect"] = "Deny"
        statement["Sid"] = "IamProofTakenAway"
    changed["Statement"] = statements
    return changed


class Locator:
    """Where a statement is declared: file:line of its sid inside the policy document its resource
    uses (following source_policy_documents), else of that document, else of the resource."""

    def __init__(self, root: Path = ROOT) -> None:
        self.files = {path.name: path.read_text().splitlines() for path in sorted(root.glob("*.tf"))}

    def block(self, header: str) -> tuple[str, int, list[str]]:
        """(file, first line number, lines) of the top-level block whose first line matches."""
        regex = re.compile(header)
        for name, lines in self.files.items():
            for number, line in enumerate(lines, start=1):
                if regex.search(line):
                    end = next((i for i in range(number, len(lines)) if lines[i] == "}"), len(lines))
                    return name, number, lines[number - 1 : end + 1]
        return "", 0, []

    def _in_document(self, document: str, sid: str, seen: set[str]) -> str:
        name, first, lines = self.block(rf'^data\s+"aws_iam_policy_document"\s+"{re.escape(document)}"')
        if not lines or document in seen:
            return ""
        seen.add(document)
        for offset, line in enumerate(lines):
            if sid and re.search(rf'^\s*sid\s*=\s*"{re.escape(sid)}"', line):
                return f"{name}:{first + offset}"
        for source in re.findall(r"data\.aws_iam_policy_document\.(\w+)\.json", "\n".join(lines)):
            if found := self._in_document(source, sid, seen):
                return found
        return "" if sid else f"{name}:{first}"

    def __call__(self, sid: str, address: str) -> str:
        kind, _, rest = address.partition(".")
        name = rest.split(",")[0].split(" ")[0]
        header = (
            rf'^output\s+"{re.escape(name)}"'
            if kind == "output"
            else rf'^resource\s+"{re.escape(kind)}"\s+"{re.escape(name)}"'
        )
        file, first, lines = self.block(header)
        text = "\n".join(lines)
        for document in re.findall(r"data\.aws_iam_policy_document\.(\w+)\.json", text):
            if found := self._in_document(document, sid, set()):
                return found
        for offset, line in enumerate(lines):  # lambda permissions: statement_id in the resource
            if sid and re.search(rf'^\s*statement_id\s*=\s*"{re.escape(sid)}"', line):
                return f"{file}:{first + offset}"
        if not file and sid:  # not found through its resource: the first statement with that sid
            file, first, _ = self.block(rf'^\s*(sid|statement_id)\s*=\s*"{re.escape(sid)}"')
        return f"{file}:{first}" if file else "?"


# --- the deployed stack's policies -------------------------------------------------------------


@dataclass
class Carrier:
    """A deployed policy document and how to put a changed version of it back."""

    kind: str
    holder: str
    policy: str
    address: str
    document: dict[str, Any]
    identity: str  # the role ARN for identity policies
    apply: Callable[[dict[str, Any]], None]
    read: Callable[[], dict[str, Any]] | None = None  # the document as deployed now


def shape(document: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """What a policy grants, whatever way a service writes it back: (sid, effect, actions,
    principals) per statement."""
    return sorted(
        (
            str(statement.get("Sid", "")),
            str(statement.get("Effect", "")),
            tuple(sorted(str(a) for a in as_list(statement.get("Action")))),
            tuple(sorted(principals_of(statement))),
        )
        for statement in as_list(document.get("Statement"))
    )


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
    pipeline: Pipeline, user: str, policy: str, document: dict[str, Any]
) -> tuple[str, tuple[str, str]]:
    """An IAM user of the proof's own holding `document` as inline policy `policy`: (ARN, keys)."""
    iam = pipeline.client("iam")
    arn = iam.create_user(UserName=user)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    iam.put_user_policy(UserName=user, PolicyName=policy, PolicyDocument=json.dumps(document))
    return arn, (key["AccessKeyId"], key["SecretAccessKey"])


def operator_carriers(
    pipeline: Pipeline, documents: dict[str, dict[str, Any]]
) -> tuple[list[Carrier], dict[str, Operator]]:
    iam = pipeline.client("iam")
    carriers_found: list[Carrier] = []
    operators: dict[str, Operator] = {}
    for output, document in documents.items():
        user = f"iam-proof-{output.replace('_', '-')}"[:64]
        arn, credentials = proof_user(pipeline, user, output, document)
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


def key_administrator(pipeline: Pipeline, keys: list[str]) -> tuple[Any, str]:
    """An IAM user of the proof's own whose policy allows :data:`KEY_ADMINISTRATION` on `keys`
    (a KMS client with its credentials, and its ARN): what it may do then depends on the keys'
    policies, as for any principal of the account but the root."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AdministerKeys", "Effect": "Allow", "Action": list(KEY_ADMINISTRATION), "Resource": keys}
        ],
    }
    arn, credentials = proof_user(pipeline, "iam-proof-key-administrator", "key-administration", document)
    return pipeline.as_user(credentials).client("kms"), arn


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


# --- scenarios --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    observed: str


class ProofError(RuntimeError):
    """The proof could not put the stack back as it was."""


class Stopped(TimedOut):
    """The proof saw the denial it was looking for: no need to wait for the scenario's end."""


def _never() -> bool:
    return False


@dataclass
class Scenarios:
    """The pipeline's scenarios, each a user's action and what it should lead to (AWS APIs only)."""

    pipeline: Pipeline
    fixtures: dict[str, str] = field(default_factory=dict)
    operators: dict[str, Operator] = field(default_factory=dict)
    stop: Callable[[], bool] = _never  # set by the proof: the denial it looks for has been seen
    admin_keys: list[str] = field(default_factory=list)  # the stack's customer-managed keys
    admin_focus: str = ""  # set by the proof: administer this key only
    key_admin: Any = None  # a KMS client of the key administrator (an IAM user of the proof's own)
    key_admin_arn: str = ""
    trigger_log_group: str = ""
    acting: Acting | None = None  # the services' requests, made by the proof (devkit/acting.py)
    unlogged: list[Denial] = field(default_factory=list)  # denials MiniStack does not log (STS)

    def _acted(self, name: str) -> Outcome:
        """One of devkit/acting.py's scenarios: the requests a service makes with a role or as itself."""
        if self.acting is None:
            return Outcome(False, "acting is not set up")
        seen: Acted = getattr(self.acting, name)()
        self.unlogged.extend(seen.unlogged)
        return Outcome(seen.ok, seen.describe())

    def as_trigger(self) -> Outcome:
        return self._acted("as_trigger")

    def as_writer(self) -> Outcome:
        return self._acted("as_writer")

    def as_monitor(self) -> Outcome:
        return self._acted("as_monitor")

    def as_state_machine(self) -> Outcome:
        return self._acted("as_state_machine")

    def as_services(self) -> Outcome:
        return self._acted("as_services")

    def as_operator(self) -> Outcome:
        return self._acted("as_operator")

    def _until(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        def stoppable() -> Any:
            if self.stop():
                raise Stopped(f"stopped waiting for {what}: the denial was seen")
            return probe()

        return wait_for(what, stoppable, timeout, interval=0.25)

    def _final_execution(self, key: str, timeout: float) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            done = [e for e in self.pipeline.executions_for(key) if e["status"] in FINAL_STATES]
            return done[0] if done else None

        return self._until(f"a finished execution for {key!r}", probe, timeout)

    def setup(self) -> None:
        """A non-compliant bucket and table for the monitor, and one of each tagged with the
        exemption tag but not declared in security_scan_exemptions (so still non-compliant)."""
        p, run = self.pipeline, uuid.uuid4().hex[:6]
        s3, dynamodb = p.client("s3"), p.client("dynamodb")
        names = {
            "bucket": f"proof-plain-{run}",
            "exempt_bucket": f"proof-exempt-{run}",
            "table": f"proof-default-key-{run}",
            "exempt_table": f"proof-exempt-{run}",
        }
        for bucket in (names["bucket"], names["exempt_bucket"]):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": p.region})
        s3.put_bucket_tagging(
            Bucket=names["exempt_bucket"],
            Tagging={"TagSet": [{"Key": EXEMPTION_TAG, "Value": "iam proof fixture"}]},
        )
        for table in (names["table"], names["exempt_table"]):
            dynamodb.create_table(
                TableName=table,
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=[{"Key": EXEMPTION_TAG, "Value": "iam proof fixture"}]
                if table == names["exempt_table"]
                else [],
            )
        self.fixtures = names

    def teardown(self) -> None:
        p = self.pipeline
        with contextlib.suppress(ClientError):
            for bucket in (self.fixtures.get("bucket"), self.fixtures.get("exempt_bucket")):
                if bucket:
                    p.client("s3").delete_bucket(Bucket=bucket)
            for table in (self.fixtures.get("table"), self.fixtures.get("exempt_table")):
                if table:
                    p.client("dynamodb").delete_table(TableName=table)

    def _alert(self, needle: str, timeout: float) -> list[Any]:
        seen: list[Any] = []

        def probe() -> list[Any] | None:
            seen.extend(a for a in self.pipeline.alerts(wait_seconds=0) if needle in a.message)
            return seen or None

        with contextlib.suppress(TimedOut):
            self._until(f"an alert naming {needle!r}", probe, timeout)
        return seen

    def upload(self) -> Outcome:
        key = f"proof-{uuid.uuid4().hex[:8]}/upload.csv"
        self.pipeline.upload(key)
        try:
            execution = self._final_execution(key, timeout=20)
        except TimedOut as error:
            return Outcome(False, str(error))
        rows = len(self.pipeline.rows_for(key))
        return Outcome(execution["status"] == "SUCCEEDED" and rows == 1, f"{execution['status']}, {rows} row")

    def rejected_key(self) -> Outcome:
        key = f"../proof-{uuid.uuid4().hex[:8]}"
        self.pipeline.upload(key)
        alerts = self._alert(key, timeout=10)
        return Outcome(len(alerts) == 1, f"{len(alerts)} alert naming the key")

    def failed_write(self) -> Outcome:
        key = f"proof-{uuid.uuid4().hex[:8]}-failing/ledger.csv"
        with self.pipeline.denied("writer_lambda_name", "dynamodb:PutItem"):
            self.pipeline.upload(key)
            try:
                execution = self._final_execution(key, timeout=60)
            except TimedOut as error:
                return Outcome(False, str(error))
        attempts = self.pipeline.writer_attempts(execution["executionArn"])
        alerts = self._alert(key, timeout=10)
        ok = execution["status"] == "FAILED" and attempts == 4 and len(alerts) == 1
        return Outcome(ok, f"{execution['status']} after {attempts} writer attempts, {len(alerts)} alert")

    def monitor(self) -> Outcome:
        try:
            report = self.pipeline.invoke_monitor()
        except AssertionError as error:
            return Outcome(False, str(error)[:200])
        flagged = {f["name"]: f["reason"] for f in report.get("non_compliant", [])}
        exempted = {f["name"] for f in report.get("exempted", [])}
        fixtures = self.fixtures
        # Nothing is declared in security_scan_exemptions and a tag exempts nothing: the tagged
        # fixtures stay non-compliant, and only a monitor that read their tags (GetBucketTagging,
        # ListTagsOfResource) names the tag in the finding.
        tag_named = "but not declared in security_scan_exemptions"
        # Where the table's tags cannot be read (MiniStack: WRONG_DENIALS) the monitor must say so.
        unreadable = "could not be read" in flagged.get(fixtures["exempt_table"], "")
        ok = (
            set(flagged) == {fixtures[name] for name in ("bucket", "table", "exempt_bucket", "exempt_table")}
            and tag_named in flagged[fixtures["exempt_bucket"]]
            and (unreadable or tag_named in flagged[fixtures["exempt_table"]])
            and not exempted
            and not report.get("errors")
            and bool(report.get("alert_sent"))
        )
        errors = [f"{f['name']}: {f['reason']}" for f in report.get("errors", [])]
        note = "; the tagged table's tags could not be read" if unreadable else ""
        return Outcome(
            ok, f"non-compliant {sorted(flagged)}, exempted {sorted(exempted)}, errors {errors}{note}"
        )

    def failed_start(self) -> Outcome:
        """StartExecution fails (an explicit Deny on the trigger's role): the trigger asks
        DescribeExecution whether another delivery started the execution, then reports the message
        failed, so the queue keeps it for another receive and nothing is started.

        Not waited for: the message's return after the visibility timeout (minutes) or the
        dead-letter queue. The upload queue is purged instead, so that the message does not come
        back in a later scenario.
        """
        p = self.pipeline
        key = f"proof-{uuid.uuid4().hex[:8]}-start-fails/orders.csv"
        since = int(time.time() * 1000) - 1000
        with p.denied("trigger_lambda_name", "states:StartExecution"):
            try:
                p.upload(key)
                try:
                    self._until(
                        f"the trigger reporting {key!r} failed",
                        lambda: self._trigger_logged("StartExecution failed", key, since),
                        timeout=30,
                    )
                except TimedOut as error:
                    return Outcome(False, str(error))
                time.sleep(1)  # the event source mapping deletes the messages not reported failed
                depth = p.queue_depth("upload_queue_url")
                kept = depth["visible"] + depth["in_flight"]
                executions = len(p.executions_for(key))
            finally:
                self._purge_upload_queue()
        return Outcome(
            kept >= 1 and executions == 0,
            f"reported failed: {kept} message(s) kept in the upload queue, {executions} execution(s)",
        )

    def _trigger_logged(self, message: str, key: str, since: int) -> bool:
        """Whether the trigger logged `message` naming `key` (its log group) since `since` (ms)."""
        if not self.trigger_log_group:
            config = self.pipeline.client("lambda").get_function_configuration(
                FunctionName=self.pipeline.outputs["trigger_lambda_name"]
            )
            self.trigger_log_group = config.get("LoggingConfig", {}).get(
                "LogGroup", f"/aws/lambda/{config['FunctionName']}"
            )
        pages = (
            self.pipeline.client("logs")
            .get_paginator("filter_log_events")
            .paginate(logGroupName=self.trigger_log_group, startTime=since)
        )
        return any(
            message in event["message"] and key in event["message"]
            for page in pages
            for event in page.get("events", [])
        )

    def _purge_upload_queue(self) -> None:
        try:
            self.pipeline.client("sqs").purge_queue(QueueUrl=self.pipeline.outputs["upload_queue_url"])
        except ClientError as error:
            # AWS allows one purge a minute: the message then comes back and is ingested normally.
            if not error.response["Error"]["Code"].endswith("PurgeQueueInProgress"):
                raise

    def dead_letter_redrive(self) -> Outcome:
        """An operator (the exported policy, on a user of its own) re-drives the dead-letter queue.

        On AWS that is ``aws sqs start-message-move-task``: SQS then reads the dead-letter queue's
        attributes, receives its messages, sends them to the upload queue and deletes them, with
        the caller's permissions (AWS's redrive permissions: GetQueueAttributes, ReceiveMessage and
        DeleteMessage on the source, SendMessage on the destination). MiniStack has no message
        move task, so the operator makes those calls of the move itself. The message is the
        notification of an upload S3 never announced (notifications off, as in :meth:`reconcile`),
        put into the dead-letter queue as SQS would have moved it there; re-driven, it is ingested.
        """
        operator = self.operators.get("reconcile_operator_policy_json")
        if operator is None:
            return Outcome(False, "no reconcile_operator_policy_json output")
        p = self.pipeline
        dead_letters, uploads = p.outputs["dead_letter_queue_url"], p.outputs["upload_queue_url"]
        key = f"proof-{uuid.uuid4().hex[:8]}-dead-letter/file.csv"
        p.client("sqs").send_message(QueueUrl=dead_letters, MessageBody=self._unannounced_upload(key))
        sqs = p.as_user(operator.credentials).client("sqs")
        refused: list[str] = []

        def call(name: str, request: Callable[[], Any]) -> Any:
            try:
                return request()
            except ClientError as error:
                refused.append(f"{name}: {error.response['Error']['Code']}")
                return None

        call(
            "GetQueueAttributes",
            lambda: sqs.get_queue_attributes(
                QueueUrl=dead_letters, AttributeNames=["ApproximateNumberOfMessages"]
            ),
        )
        moved = 0
        for _ in range(10):  # every message of the dead-letter queue, as the move task does
            received = call(
                "ReceiveMessage",
                lambda: sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1),
            )
            messages = (received or {}).get("Messages", [])
            for body, handle in ((m["Body"], m["ReceiptHandle"]) for m in messages):
                sent = call("SendMessage", lambda b=body: sqs.send_message(QueueUrl=uploads, MessageBody=b))
                if sent is not None:  # deleted from the dead-letter queue only once sent on
                    deleted = call(
                        "DeleteMessage",
                        lambda h=handle: sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=h),
                    )
                    moved += deleted is not None
            if not messages:
                break
        try:
            execution = self._final_execution(key, timeout=20)
        except TimedOut as error:
            return Outcome(False, f"{moved} moved, refused: {refused or 'nothing'}; {error}")
        rows = len(p.rows_for(key))
        return Outcome(
            not refused and execution["status"] == "SUCCEEDED" and rows == 1,
            f"{moved} moved, refused: {refused or 'nothing'}; re-driven: {execution['status']}, {rows} row",
        )

    def _unannounced_upload(self, key: str) -> str:
        """Upload `key` with the bucket's notifications off; the S3 notification it would have
        had (the fields the trigger reads), as a queue message's body."""
        p, bucket = self.pipeline, self.pipeline.outputs["s3_bucket_name"]
        s3 = p.client("s3")
        notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
        notifications.pop("ResponseMetadata", None)
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
        try:
            p.upload(key)
        finally:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)
        head = s3.head_object(Bucket=bucket, Key=key)
        s3_object = {
            "key": urllib.parse.quote_plus(key, safe="/"),
            "size": head["ContentLength"],
            "eTag": head["ETag"].strip('"'),
            "sequencer": f"{time.time_ns():016X}",
        }
        if head.get("VersionId"):
            s3_object["versionId"] = head["VersionId"]
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": p.region,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "start-ingestion",
                "bucket": {"name": bucket, "arn": p.outputs["s3_bucket_arn"]},
                "object": s3_object,
            },
        }
        return json.dumps({"Records": [record]})

    def reconcile(self) -> Outcome:
        """An operator (the exported policy, on a user of its own) finds an upload S3 never
        announced and re-drives it with scripts/reconcile.py."""
        operator = self.operators.get("reconcile_operator_policy_json")
        if operator is None:
            return Outcome(False, "no reconcile_operator_policy_json output")
        p, bucket = self.pipeline, self.pipeline.outputs["s3_bucket_name"]
        s3 = p.client("s3")
        notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
        notifications.pop("ResponseMetadata", None)
        key = f"proof-{uuid.uuid4().hex[:8]}-unannounced/file.csv"
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
        try:
            p.upload(key)
        finally:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)
        as_operator = p.as_user(operator.credentials)
        clients = Clients(
            s3=as_operator.client("s3"),
            dynamodb=as_operator.client("dynamodb"),
            stepfunctions=as_operator.client("stepfunctions"),
        )
        try:
            summary = reconcile(
                clients,
                bucket,
                p.outputs["dynamodb_table_name"],
                p.outputs["step_function_arn"],
                redrive=True,
            )
        except ReconcileError as error:
            return Outcome(False, f"reconcile failed: {error}")
        try:
            execution = self._final_execution(key, timeout=20)
        except TimedOut as error:
            return Outcome(False, f"{summary.line()}; {error}")
        return Outcome(
            execution["status"] == "SUCCEEDED", f"{summary.line()}; re-driven: {execution['status']}"
        )

    def key_administration(self) -> Outcome:
        """A key administrator of the account (an IAM user allowed the administration actions by
        its own policy, as key policies with the account as principal require) administers the
        stack's keys: each call is made whatever happened to the one before it."""
        keys = [self.admin_focus] if self.admin_focus else self.admin_keys
        if self.key_admin is None or not keys:
            return Outcome(False, "no key administrator or no key")
        refused = [f"{short(key)} {what}" for key in keys for what in self._administer(key)]
        return Outcome(not refused, f"{len(keys)} key(s) administered; refused: {refused or 'nothing'}")

    def _administer(self, key: str) -> list[str]:
        root, admin = self.pipeline.client("kms"), self.key_admin
        before = root.describe_key(KeyId=key)["KeyMetadata"]
        rotation = root.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]
        policy = root.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        grantee = self.key_admin_arn
        grant = root.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["DescribeKey"])["GrantId"]
        tag = [{"TagKey": "IamProof", "TagValue": "key administration"}]
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("DescribeKey", lambda: admin.describe_key(KeyId=key)),
            ("GetKeyPolicy", lambda: admin.get_key_policy(KeyId=key, PolicyName="default")),
            ("GetKeyRotationStatus", lambda: admin.get_key_rotation_status(KeyId=key)),
            ("ListKeyPolicies", lambda: admin.list_key_policies(KeyId=key)),
            ("ListResourceTags", lambda: admin.list_resource_tags(KeyId=key)),
            ("ListGrants", lambda: admin.list_grants(KeyId=key)),
            ("TagResource", lambda: admin.tag_resource(KeyId=key, Tags=tag)),
            ("UntagResource", lambda: admin.untag_resource(KeyId=key, TagKeys=["IamProof"])),
            (
                "UpdateKeyDescription",
                lambda: admin.update_key_description(KeyId=key, Description=before["Description"]),
            ),
            ("DisableKeyRotation", lambda: admin.disable_key_rotation(KeyId=key)),
            ("EnableKeyRotation", lambda: admin.enable_key_rotation(KeyId=key)),
            ("DisableKey", lambda: admin.disable_key(KeyId=key)),
            ("EnableKey", lambda: admin.enable_key(KeyId=key)),
            ("ScheduleKeyDeletion", lambda: admin.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)),
            ("CancelKeyDeletion", lambda: admin.cancel_key_deletion(KeyId=key)),
            ("RevokeGrant", lambda: admin.revoke_grant(KeyId=key, GrantId=grant)),
            ("PutKeyPolicy", lambda: admin.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)),
        ]
        refused = []
        try:
            for name, call in calls:
                try:
                    call()
                except ClientError as error:
                    refused.append(f"{name}: {error.response['Error']['Code']}")
        finally:
            self._repair_key(key, before, rotation, grant)
        return refused

    def _repair_key(self, key: str, before: dict[str, Any], rotation: bool, grant: str) -> None:
        """Put the key back as it was (as the account root, whom no key policy stops here)."""
        root = self.pipeline.client("kms")
        repairs: list[Callable[[], Any]] = [
            lambda: root.cancel_key_deletion(KeyId=key),
            lambda: root.enable_key(KeyId=key) if before["Enabled"] else root.disable_key(KeyId=key),
            lambda: root.enable_key_rotation(KeyId=key) if rotation else root.disable_key_rotation(KeyId=key),
            lambda: root.untag_resource(KeyId=key, TagKeys=["IamProof"]),
            lambda: root.update_key_description(KeyId=key, Description=before["Description"]),
            lambda: root.revoke_grant(KeyId=key, GrantId=grant),
        ]
        for repair in repairs:
            with contextlib.suppress(ClientError):  # already as it was (e.g. no deletion pending)
                repair()
        state = root.describe_key(KeyId=key)["KeyMetadata"]
        if state["KeyState"] != before["KeyState"]:
            raise ProofError(f"key {key} left {state['KeyState']}, was {before['KeyState']}")

    def schedule(self) -> Outcome:
        restore = self.pipeline.run_schedule_soon(self.pipeline.outputs["security_scan_rule_name"])
        try:
            alerts = self._alert(self.fixtures["bucket"], timeout=90)
        finally:
            restore()
        return Outcome(bool(alerts), f"{len(alerts)} scheduled scan alert(s)")


# Scenario name -> method, and the requests a scenario denies on purpose (explicit Deny, role, action).
SCENARIOS: dict[str, Callable[[Scenarios], Outcome]] = {
    "upload": Scenarios.upload,
    "rejected_key": Scenarios.rejected_key,
    "failed_write": Scenarios.failed_write,
    "monitor": Scenarios.monitor,
    "failed_start": Scenarios.failed_start,
    "schedule": Scenarios.schedule,
    "reconcile": Scenarios.reconcile,
    "dead_letter_redrive": Scenarios.dead_letter_redrive,
    "key_administration": Scenarios.key_administration,
    "as_trigger": Scenarios.as_trigger,
    "as_writer": Scenarios.as_writer,
    "as_monitor": Scenarios.as_monitor,
    "as_state_machine": Scenarios.as_state_machine,
    "as_services": Scenarios.as_services,
    "as_operator": Scenarios.as_operator,
}
# Policies carried by the resource they govern: a denial proves such a grant only on that resource.
RESOURCE_POLICIES = {"key-policy", "topic-policy", "queue-policy", "lambda-permission", "bucket-policy"}
# Scenarios whose calls do not depend on each other, each naming the resource it acts on: a denial
# of an action in them comes from that action alone, so a statement's actions taken away together
# need no confirmation one by one.
INDEPENDENT_CALLS = {"key_administration"}
# What the key administrator does (kms:<call> for each call of Scenarios._administer); its own IAM
# policy allows exactly these on the stack's keys, so the key policy decides.
KEY_ADMINISTRATION = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:ListGrants",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:DisableKeyRotation",
    "kms:EnableKeyRotation",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RevokeGrant",
    "kms:PutKeyPolicy",
)
# Requests MiniStack denies although AWS allows them with the deployed grants (measured; listed in
# the README's MiniStack differences). Neither the baseline nor a proof counts them.
WRONG_DENIALS = {
    "dynamodb:ListTagsOfResource": "MiniStack authorizes ListTagsOfResource against '*', not the table ARN it names",
}
DELIBERATE = {
    "failed_write": ("writer", "dynamodb:PutItem"),
    "failed_start": ("trigger", "states:StartExecution"),
}
# Which scenarios exercise which part of the stack. A grant to a role is rerun with the scenarios of
# the function (or state machine) using that role; a grant to a service with the scenario in which
# that service acts; a grant on a key with the scenarios that use the key.
COMPONENT_SCENARIOS = {
    # failed_start: a StartExecution that fails makes the trigger look for the execution
    # as_*: the requests the Lambda service, the event source mapping and Step Functions make with
    # the role (devkit/acting.py); assuming the role there also shows its trust policy.
    "trigger": ("as_trigger", "upload", "rejected_key", "failed_start"),
    "writer": ("as_writer", "upload"),
    "monitor": ("as_monitor", "monitor"),
    "state_machine": ("as_state_machine", "failed_write"),
}
SERVICE_SCENARIOS = {
    "s3.amazonaws.com": ("upload",),  # S3 notifies the upload queue
    "events.amazonaws.com": ("as_services", "schedule"),
    "cloudwatch.amazonaws.com": ("as_services",),
    "lambda.amazonaws.com": ("upload", "rejected_key", "monitor"),
    "states.amazonaws.com": ("failed_write",),
}
OUTPUT_SCENARIOS = {"reconcile_operator_policy_json": ("as_operator", "reconcile", "dead_letter_redrive")}
# A key's use (not its administration) is shown only by requests the proof makes (devkit/acting.py):
# MiniStack's services never call KMS for a caller.
KEY_SCENARIOS = {
    "kms_s3_key_arn": ("as_services",),
    "kms_dynamodb_key_arn": ("as_writer", "as_operator"),
    "kms_sns_key_arn": ("as_trigger", "as_monitor", "as_state_machine", "as_services"),
    "kms_stepfunctions_key_arn": ("as_trigger", "as_state_machine", "as_services", "as_operator"),
    "kms_sqs_key_arn": ("as_trigger", "as_services", "as_operator"),
    "kms_logs_key_arn": ("as_services",),
}


# --- justifications -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """Why no request made here can exercise a kind of grant, and the AWS document saying so."""

    name: str
    why: str
    reference: str


@dataclass(frozen=True)
class Justification:
    """Why no request made here can show the grants of one declared statement (its group), and
    the AWS document that requires them.

    It names the statement exactly: kind, sid, actions, the resources it grants them on (fnmatch
    patterns every Resource of the statement must match), the condition keys it tests (exactly
    those), and whose it is: the parts of the stack holding it (``components``: trigger, writer,
    monitor, state_machine; ``account`` for the account root of a key policy; ``operator`` for an
    exported operator policy) and/or the service principals it is granted to. A grant added later,
    an action added to a statement, the statement widened to other resources or stripped of a
    condition, or given to another part of the stack matches nothing, so it is ``unproven`` until a
    scenario shows it or a justification names it.
    """

    group: str  # a key of GROUPS
    kinds: tuple[str, ...]
    sids: tuple[str, ...]  # exact; "" for statements without a sid (trust policies)
    actions: tuple[str, ...]  # exact action names, never patterns
    resources: tuple[str, ...]  # fnmatch patterns; "*" only where the statement's resource is "*"
    conditions: tuple[str, ...]  # exactly the condition keys the statement tests
    reference: str  # the AWS document that requires the grant
    components: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()  # service principals (fnmatch: logs.*.amazonaws.com)
    via_service: str = ""  # the kms:ViaService service its condition must name ("" = none)

    def __post_init__(self) -> None:
        if not (self.components or self.principals):
            raise ValueError(f"justification {self.sids} must say whose grant it covers")
        if any(ch in action for action in self.actions for ch in "*?["):
            raise ValueError(f"justification {self.sids} names actions by pattern")
        if self.group not in GROUPS:
            raise ValueError(f"justification {self.sids} names no known group: {self.group!r}")

    @property
    def reason(self) -> str:
        return GROUPS[self.group].why

    def matches(self, grant: Grant, components: frozenset[str]) -> bool:
        if grant.kind not in self.kinds or grant.sid not in self.sids or grant.action not in self.actions:
            return False
        if not grant.resources or not all(
            any(fnmatch.fnmatchcase(r, pattern) for pattern in self.resources) for r in grant.resources
        ):
            return False
        if condition_keys(grant.condition) != {c.lower() for c in self.conditions}:
            return False
        if self.components and not (components and components <= set(self.components)):
            return False
        services = [p for p in grant.principals if not p.startswith("arn:")]
        if self.principals and not (
            services and all(any(fnmatch.fnmatchcase(p, w) for w in self.principals) for p in services)
        ):
            return False
        if self.via_service:
            return f'"{self.via_service}.' in grant.condition
        return "kms:ViaService" not in grant.condition


GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group(
            "x-ray",
            "X-Ray segments and sampling requests go to the X-Ray API, which neither emulator here "
            "implements: no such request can be made, so none can be authorized or denied",
            "https://docs.aws.amazon.com/xray/latest/devguide/security_iam_service-with-iam.html",
        ),
        Group(
            "kms-alias-operations",
            "an alias operation needs the action on the alias (IAM policy) and on the key (key "
            "policy); MiniStack authorizes it on the alias only, so taking the key policy's grant "
            "away denies nothing there",
            "https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html",
        ),
        Group(
            "kms-reencrypt",
            "MiniStack implements no ReEncrypt operation, so the request that needs "
            "kms:ReEncryptFrom and kms:ReEncryptTo (a service re-encrypting its data keys, e.g. "
            "after the table or log group changes key) cannot be made here",
            "https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html",
        ),
        Group(
            "kms-grant-at-table-creation",
            "DynamoDB creates its grant on the table's key when the table is created or restored, "
            "with the credentials of whoever does it (Terraform's caller, the account root here, "
            "whom MiniStack never checks against a key policy)",
            "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html",
        ),
        Group(
            "sqs-message-move-task",
            "MiniStack 1.5.33 implements no message move task (Start/List/CancelMessageMoveTask); "
            "the re-drive scenario makes the requests AWS documents the task makes instead, and "
            "those are proven",
            "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html",
        ),
        Group(
            "ministack-wrong-resource",
            "MiniStack authorizes dynamodb:ListTagsOfResource against '*', not the table ARN the "
            "request names, so the grant on table ARNs can neither allow nor deny it there "
            "(WRONG_DENIALS)",
            "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html",
        ),
    )
}
FUNCTIONS = ("trigger", "writer", "monitor")
ACCOUNT_VIA = ("kms:CallerAccount", "kms:ViaService")
JUSTIFICATIONS: tuple[Justification, ...] = (
    Justification(
        "x-ray",
        ("role-policy",),
        ("WriteTraces",),
        ("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
        ("*",),
        (),
        "https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html",
        components=FUNCTIONS,
    ),
    Justification(
        "x-ray",
        ("role-policy",),
        ("WriteTraces",),
        (
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
        ),
        ("*",),
        (),
        "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-xray-tracing.html",
        components=("state_machine",),
    ),
    Justification(
        "kms-alias-operations",
        ("key-policy",),
        ("AccountAdministersKey",),
        ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"),
        ("*",),
        (),
        "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html",
        components=("account",),
    ),
    Justification(
        "kms-reencrypt",
        ("key-policy",),
        ("AccountUsesKeyThroughDynamoDB",),
        ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
        ("*",),
        ACCOUNT_VIA,
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html",
        components=("account",),
        via_service="dynamodb",
    ),
    Justification(
        "kms-reencrypt",
        ("key-policy",),
        ("CloudWatchLogsUsesKeyForThisStacksLogGroups",),
        ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
        ("*",),
        ("kms:EncryptionContext:aws:logs:arn",),
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
        principals=("logs.*.amazonaws.com",),
    ),
    Justification(
        "kms-grant-at-table-creation",
        ("key-policy",),
        ("DynamoDBCreatesGrantsForTheTable",),
        ("kms:CreateGrant",),
        ("*",),
        ("kms:ViaService", "kms:GrantIsForAWSResource"),
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html",
        components=("account",),
        via_service="dynamodb",
    ),
    Justification(
        "sqs-message-move-task",
        ("operator-policy",),
        ("RedriveDeadLetterQueue",),
        ("sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask"),
        ("arn:aws:sqs:*:*:*-uploads-dlq",),
        (),
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html",
        components=("operator",),
    ),
    Justification(
        "ministack-wrong-resource",
        ("role-policy",),
        ("DescribeTablesAndTags",),
        ("dynamodb:ListTagsOfResource",),
        ("arn:aws:dynamodb:*:*:table/*",),
        (),
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Tagging.Operations.html",
        components=("monitor",),
    ),
)


# --- the proof ------------------------------------------------------------------------------------

# A delivery a service makes to a queue or topic (an S3 notification, SNS fan-out) is no caller's
# request: MiniStack refuses one its resource policy does not allow without an access-denied
# response, and writes one line to its log instead (ministack/services/s3.py, sns.py).
_REFUSED_DELIVERY = re.compile(
    r"\[(?P<sender>s3|sns)\] (?:S3 notification|SNS fanout): (?P<destination>queue|topic) policy "
    r"denies delivery from (?P<source>\S*) to (?P<target>\S+)$"
)
# (sender, destination) -> the service refusing, the action and the service principal refused.
REFUSED_DELIVERIES = {
    ("s3", "queue"): ("sqs", "sqs:SendMessage", "s3.amazonaws.com"),
    ("s3", "topic"): ("sns", "sns:Publish", "s3.amazonaws.com"),
    ("sns", "queue"): ("sqs", "sqs:SendMessage", "sns.amazonaws.com"),
}


def refused_deliveries(path: Path, offset: int = 0) -> tuple[list[Denial], int]:
    """The deliveries MiniStack's log (from byte `offset`) says it refused, each as a denial of the
    sending service's principal on the queue (its name) or topic (its ARN); and the new offset."""
    if not path.is_file():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    found = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        match = _REFUSED_DELIVERY.search(line.rstrip())
        if match:
            service, action, principal = REFUSED_DELIVERIES[(match["sender"], match["destination"])]
            text = line.rstrip()[match.start() :]
            found.append(Denial(service, action, principal, match["target"], f"MiniStack's log: {text}"))
    return found, offset + len(complete)


@dataclass
class Result:
    grant: Grant
    status: str  # proven | justified | unproven
    scenario: str = ""
    denial: str = ""
    reason: str = ""
    reference: str = ""
    group: str = ""  # for justified: the GROUPS entry saying why no request here can show it

    def entry(self) -> dict[str, Any]:
        grant = asdict(self.grant)
        grant["principals"] = list(self.grant.principals)
        return {
            **grant,
            "status": self.status,
            "scenario": self.scenario,
            "denial": self.denial,
            "reason": self.reason,
            "reference": self.reference,
            "group": self.group,
            "resources": list(self.grant.resources),
        }


@dataclass
class Proof:
    pipeline: Pipeline
    server: MiniStack
    scenarios: Scenarios
    components: dict[str, str] = field(default_factory=dict)  # role name -> component
    role_arns: dict[str, str] = field(default_factory=dict)  # role ARN -> role name
    account_root: str = ""  # arn:<partition>:iam::<account>:root
    log: Callable[[str], None] = print

    def discover(self) -> None:
        """Which role is whose (from the deployed functions and state machine)."""
        outputs = self.pipeline.outputs
        for component, output in (
            ("trigger", "trigger_lambda_name"),
            ("writer", "writer_lambda_name"),
            ("monitor", "lambda_security_monitor_function_name"),
        ):
            arn = self.pipeline.client("lambda").get_function_configuration(FunctionName=outputs[output])[
                "Role"
            ]
            self.components[arn.rsplit("/", 1)[-1]] = component
            self.role_arns[arn] = arn.rsplit("/", 1)[-1]
        machine = self.pipeline.client("stepfunctions").describe_state_machine(
            stateMachineArn=outputs["step_function_arn"]
        )
        self.components[machine["roleArn"].rsplit("/", 1)[-1]] = "state_machine"
        self.role_arns[machine["roleArn"]] = machine["roleArn"].rsplit("/", 1)[-1]
        _, partition, _, _, account, _ = outputs["step_function_arn"].split(":", 5)
        self.account_root = f"arn:{partition}:iam::{account}:root"

    def components_of(self, grant: Grant) -> frozenset[str]:
        """Whose grant it is: the part of the stack holding the role (identity and trust policies),
        ``operator`` for an exported policy, else the parts of the stack (or ``account`` for the
        account root) among its principals. Service principals are matched by name instead."""
        if grant.kind in ("role-policy", "managed-policy", "trust-policy"):
            return frozenset({self.components.get(grant.holder, "")} - {""})
        if grant.kind == "operator-policy":
            return frozenset({"operator"})
        found = set()
        for principal in grant.principals:
            if principal == self.account_root:
                found.add("account")
            elif principal in self.role_arns:
                found.add(self.components.get(self.role_arns[principal], ""))
        return frozenset(found - {""})

    def scenarios_for(self, grant: Grant) -> tuple[str, ...]:
        names: list[str] = []
        if grant.kind in ("role-policy", "managed-policy", "trust-policy"):
            names += COMPONENT_SCENARIOS.get(self.components.get(grant.holder, ""), ())
        elif grant.kind == "operator-policy":
            names += OUTPUT_SCENARIOS.get(grant.policy, ())
        elif grant.kind == "key-policy" and self.administers(grant):
            names.append("key_administration")
        elif grant.kind == "key-policy":
            for output, scenarios in KEY_SCENARIOS.items():
                if self.pipeline.outputs.get(output) == grant.holder:
                    names += scenarios
        else:
            for principal in grant.principals:
                names += SERVICE_SCENARIOS.get(principal, ())
                names += COMPONENT_SCENARIOS.get(
                    self.components.get(self.role_arns.get(principal, ""), ""), ()
                )
        return tuple(dict.fromkeys(names))

    def administers(self, grant: Grant) -> bool:
        """A key-policy grant to the account itself, not through a service: key administration."""
        return grant.principals == (self.account_root,) and "kms:ViaService" not in grant.condition

    def deliberate(self, denial: Denial, scenario: str) -> bool:
        component, action = DELIBERATE.get(scenario, ("", ""))
        role = next((r for r, c in self.components.items() if c == component), "\0")
        return denial.action.lower() == action.lower() and f"/{role}/" in denial.principal

    def mark(self) -> tuple[int, int]:
        """Where the denial log and MiniStack's log end now."""
        log = self.server.log_path if isinstance(self.server, MiniStack) else None
        return self.server.denial_offset(), log.stat().st_size if log and log.is_file() else 0

    def denials_since(self, mark: tuple[int, int]) -> list[Denial]:
        """The requests denied, and the deliveries refused, since `mark`."""
        found, _ = self.server.denials(mark[0])
        if isinstance(self.server, MiniStack):
            found += refused_deliveries(self.server.log_path, mark[1])[0]
        return found

    def run(
        self, names: tuple[str, ...], wanted: set[str] | None = None
    ) -> tuple[dict[str, Outcome], list[tuple[str, Denial]]]:
        """Run the scenarios; with `wanted` (actions), stop a scenario's waiting once one is denied."""
        outcomes, denials = {}, []
        for name in names:
            mark = self.mark()
            if wanted:
                self.scenarios.stop = lambda m=mark: any(
                    d.action.lower() in wanted for d in self.denials_since(m)
                )
            try:
                outcomes[name] = SCENARIOS[name](self.scenarios)
            finally:
                self.scenarios.stop = _never
            time.sleep(0.3)  # let the last asynchronous requests of the scenario reach the log
            found = self.denials_since(mark) + self.scenarios.unlogged
            self.scenarios.unlogged.clear()
            denials += [
                (name, d) for d in found if not self.deliberate(d, name) and d.action not in WRONG_DENIALS
            ]
            if wanted and wanted <= {d.action.lower() for _, d in denials}:
                break  # every action looked for is denied: the other scenarios would add nothing
        return outcomes, denials

    def baseline(self) -> bool:
        outcomes, denials = self.run(tuple(SCENARIOS))
        for name, outcome in outcomes.items():
            self.log(f"  baseline {name:<24} {'ok ' if outcome.ok else 'BAD'} {outcome.observed}")
        for name, denial in denials:
            self.log(f"  baseline {name}: unexpected denial: {denial.describe()}")
        for action, why in WRONG_DENIALS.items():
            self.log(f"  baseline: {action} denied as a known MiniStack difference ({why}), not counted")
        return all(o.ok for o in outcomes.values()) and not denials

    @staticmethod
    def denial_of(grant: Grant, denials: list[tuple[str, Denial]]) -> tuple[str, Denial] | None:
        for scenario, denial in denials:
            if denial.action.lower() != grant.action.lower():
                continue
            if (
                grant.kind in ("role-policy", "managed-policy")
                and f"/{grant.holder}/" not in denial.principal
            ):
                continue
            if grant.kind == "operator-policy" and not denial.principal.endswith(f"/{grant.holder}"):
                continue
            if grant.kind == "trust-policy" and not denial.resource.endswith(f"/{grant.holder}"):
                continue  # assuming another role
            if grant.kind in RESOURCE_POLICIES and short(grant.holder) not in denial.resource:
                continue  # a denial on another key, topic or function is not this grant's
            if grant.kind == "queue-policy" and short(denial.resource) != short(grant.holder):
                continue  # by name: the upload queue's name is part of its dead-letter queue's
            if (
                denial.principal.endswith(".amazonaws.com")
                and "*" not in grant.principals
                and denial.principal not in grant.principals
            ):
                continue  # a delivery refused to another service
            return scenario, denial
        return None

    @contextlib.contextmanager
    def taken_away(self, carrier: Carrier, index: int, actions: set[str]) -> Iterator[None]:
        carrier.apply(without(carrier.document, index, actions))
        try:
            yield
        finally:
            carrier.apply(carrier.document)
            if carrier.read is not None and shape(carrier.read()) != shape(carrier.document):
                raise ProofError(f"{carrier.kind} of {carrier.holder} was not restored as deployed")

    def prove(self, carrier: Carrier, grants: list[Grant]) -> list[Result]:
        """The grants of one statement: take them away together, then one by one where denied."""
        results: list[Result] = []
        names = self.scenarios_for(grants[0])
        remaining = [g for g in grants if not g.action.startswith("NotAction:")] if names else []
        seen: dict[str, tuple[str, Denial]] = {}
        self.scenarios.admin_focus = carrier.holder if "key_administration" in names else ""
        independent = set(names) <= INDEPENDENT_CALLS
        while remaining:
            with self.taken_away(carrier, grants[0].index, {g.action for g in remaining}):
                _, denials = self.run(names, {g.action.lower() for g in remaining})
            hits = {g.action: hit for g in remaining if (hit := self.denial_of(g, denials))}
            if not hits:
                break
            for grant in [g for g in remaining if g.action in hits]:
                hit: tuple[str, Denial] | None = hits[grant.action]
                if len(remaining) > 1 and not independent:  # confirm with this action taken away alone
                    with self.taken_away(carrier, grant.index, {grant.action}):
                        order = (hits[grant.action][0], *(n for n in names if n != hits[grant.action][0]))
                        _, alone = self.run(order, {grant.action.lower()})
                    hit = self.denial_of(grant, alone)
                if hit:
                    seen[grant.action] = hit
            remaining = [g for g in remaining if g.action not in hits]
        self.scenarios.admin_focus = ""
        for grant in grants:
            if grant.action in seen:
                scenario, denial = seen[grant.action]
                text = denial_text(denial.message) if denial.message else denial.describe()
                results.append(Result(grant, "proven", scenario=scenario, denial=text))
                continue
            justification = next(
                (j for j in JUSTIFICATIONS if j.matches(grant, self.components_of(grant))), None
            )
            if justification is not None:
                results.append(
                    Result(
                        grant,
                        "justified",
                        reason=justification.reason,
                        reference=justification.reference,
                        group=justification.group,
                    )
                )
            else:
                tried = ", ".join(names) or "no scenario exercises this principal"
                results.append(
                    Result(
                        grant,
                        "unproven",
                        reason=f"taking it away caused no denial ({tried}); no justification",
                    )
                )
        return results


def acting_for(proof: Proof, pipeline: Pipeline, scenarios: Scenarios) -> Acting:
    """devkit/acting.py's scenarios for this stack: its roles, the operator, and an uploader (an
    IAM user of the proof's own allowed to use the S3 key through S3, as any uploader of the
    account would be; what it may do then depends on the key's policy)."""
    roles = {component: arn for arn, name in proof.role_arns.items() if (component := proof.components[name])}
    key = pipeline.outputs["kms_s3_key_arn"]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "UseUploadKeyThroughS3",
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": [key],
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{pipeline.region}.amazonaws.com"}},
            }
        ],
    }
    _, keys = proof_user(pipeline, "iam-proof-uploader", "upload-key-use", document)
    operator = next(iter(scenarios.operators.values()), None)
    return Acting(
        pipeline,
        roles=roles,
        uploader=Credentials(*keys),
        operator=Credentials(*operator.credentials) if operator else None,
    )


def enumerate_grants(carriers_found: list[Carrier], locate: Locator) -> list[tuple[Carrier, list[Grant]]]:
    """(carrier, grants of one statement) for every Allow statement."""
    groups: list[tuple[Carrier, list[Grant]]] = []
    for carrier in carriers_found:
        grants = grants_of(
            carrier.document,
            kind=carrier.kind,
            holder=carrier.holder,
            policy=carrier.policy,
            address=carrier.address,
            locate=locate,
            identity=carrier.identity,
        )
        by_statement: dict[int, list[Grant]] = {}
        for grant in grants:
            by_statement.setdefault(grant.index, []).append(grant)
        groups += [(carrier, statement) for statement in by_statement.values()]
    return groups


def denial_text(message: str) -> str:
    """The human part of a denial response (S3 answers XML, the others JSON), on one line."""
    match = re.search(r"<Message>(.*?)</Message>", message, flags=re.S)
    if match:
        message = match.group(1)
    else:
        with contextlib.suppress(ValueError):
            body = json.loads(message)
            if isinstance(body, dict):
                message = str(body.get("message") or body.get("Message") or message)
    return " ".join(message.split())


def note_overlaps(results: list[Result]) -> None:
    """Say, for an unproven grant, which other grant gives the same principal the same action.

    Within one account a request is allowed when either the identity policy or the resource policy
    allows it, so of two such grants neither can be shown alone: one of them has to go.
    """
    for result in results:
        if result.status != "unproven":
            continue
        mine = set(result.grant.principals)
        for other in results:
            if other is result or other.grant.action != result.grant.action:
                continue
            if mine & set(other.grant.principals):
                result.reason += (
                    f"; the same principal also gets this action from {other.grant.label()} "
                    f"({other.grant.declared}), so taking one away denies nothing: one of them is "
                    f"redundant ({AWS_EVALUATION})"
                )
                break


def table(results: list[Result]) -> str:
    rows = [("STATUS", "GRANT", "DECLARED", "EVIDENCE")]
    for result in results:
        denied = (
            result.denial[result.denial.find("not authorized") :] if "not authorized" in result.denial else ""
        )
        evidence = (
            f"{result.scenario}: {(denied or result.denial)[:100]}"
            if result.status == "proven"
            else result.reason[:110]
        )
        rows.append((result.status, result.grant.label(), result.grant.declared, evidence))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2].ljust(widths[2])}  {row[3]}"
        for row in rows
    )


def summary(results: list[Result]) -> str:
    count = {
        status: sum(r.status == status for r in results) for status in ("proven", "justified", "unproven")
    }
    return (
        f"{count['proven']} of {len(results)} grants proven, {count['justified']} justified, "
        f"{count['unproven']} unproven"
    )


def prove_stack(
    stack: Stack, server: MiniStack, outputs: dict[str, str], started: float
) -> tuple[bool, list[Result]]:
    """Baseline, then every grant of the deployed stack taken away in turn."""
    pipeline = Pipeline(server.endpoint_url, outputs, ca_bundle=server.ca_bundle)
    pipeline.subscribe_alerts("iam-proof-alerts")
    resources = state_resources(stack)
    scenarios = Scenarios(pipeline)
    scenarios.setup()
    scenarios.admin_keys = [r["values"]["arn"] for r in resources if r["type"] == "aws_kms_key"]
    scenarios.key_admin, scenarios.key_admin_arn = key_administrator(pipeline, scenarios.admin_keys)
    operator_found, scenarios.operators = operator_carriers(pipeline, output_documents(stack))
    proof = Proof(pipeline, server, scenarios)
    proof.discover()
    scenarios.acting = acting_for(proof, pipeline, scenarios)
    print(
        f"[iam-proof] baseline: every scenario, no denial ({time.monotonic() - started:.0f} s) ...",
        flush=True,
    )
    baseline_ok = proof.baseline()
    groups = enumerate_grants(carriers(pipeline, resources) + operator_found, Locator())
    total = sum(len(g) for _, g in groups)
    print(f"[iam-proof] {total} grants in {len(groups)} statements; taking each away ...", flush=True)
    results: list[Result] = []
    for carrier, grants in groups:
        results += proof.prove(carrier, grants)
    note_overlaps(results)
    scenarios.teardown()
    pipeline.empty_bucket()  # see tests/e2e: MiniStack's force_destroy cannot delete keys with '+'
    return baseline_ok, results


def finish(results: list[Result], baseline_ok: bool, report: Path, facts: dict[str, Any]) -> int:
    """Write the report, print the table and, last, the summary; 0 only when every grant is
    proven or justified after a clean baseline."""
    report.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **facts,
        "baseline_ok": baseline_ok,
        "summary": summary(results),
        "grants": [r.entry() for r in results],
    }
    report.write_text(json.dumps(document, indent=2) + "\n")
    print(table(results))
    print(f"[iam-proof] {report} written")
    if not baseline_ok:
        print("[iam-proof] the baseline failed: a scenario misbehaved or a request was denied (see above)")
    unproven = [r for r in results if r.status == "unproven"]
    for result in unproven:
        print(
            f"[iam-proof] UNPROVEN: {result.grant.label()} ({result.grant.declared}): remove it, or add a scenario"
        )
    print(summary(results))
    return 0 if baseline_ok and not unproven and results else 1


def run(provider: str | None, report: Path = REPORT) -> int:
    started = time.monotonic()
    server = MiniStack(port=0, name="iam-proof")
    print("[iam-proof] MiniStack with AUTH=true (IAM, resource and key policies enforced) ...", flush=True)
    server.start()
    stack = Stack.staged(server.endpoint_url, provider, name="iam-proof", ca_bundle=server.ca_bundle)
    baseline_ok, results = False, []
    try:
        print(f"[iam-proof] terraform apply with hashicorp/aws {stack.provider} ...", flush=True)
        baseline_ok, results = prove_stack(stack, server, stack.deploy(), started)
    finally:
        try:
            if stack.has_state():
                stack.destroy(timeout=300)
        finally:
            stack.remove_overrides()
            server.stop()
    facts = {
        "backend": "ministack (AUTH=true)",
        "provider": stack.provider,
        "seconds": round(time.monotonic() - started),
    }
    return finish(results, baseline_ok, report, facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.iam_proof", description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    try:
        # The provider source is resolved before MiniStack starts: without one, nothing is started.
        return run(toolchain.select().version, args.report)
    except (MiniStackError, ProofError, workspace.TerraformError, toolchain.ToolchainError) as error:
        print(f"iam-proof: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
