"""The IAM proof's bookkeeping: every action of every Allow statement is a grant, taking one away
changes exactly that, and a grant nobody can show or justify is counted as unproven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit import iam_proof
from devkit.iam_proof import Grant, Result, prove
from devkit.ministack import Denial

DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
        {"Sid": "Guard", "Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        {"Sid": "Start", "Effect": "Allow", "Action": "states:StartExecution", "Resource": "arn:sm"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
    ],
}


def grants(document: dict = DOCUMENT) -> list[Grant]:
    return iam_proof.grants_of(
        document,
        kind="role-policy",
        holder="trigger-role",
        policy="least-privilege",
        address="aws_iam_role_policy.trigger",
        locate=lambda sid, address: f"{sid}@{address}",
        identity="arn:aws:iam::000000000000:role/trigger-role",
    )


def test_every_action_of_every_allow_statement_is_one_grant() -> None:
    found = grants()

    assert [(g.sid, g.action) for g in found] == [
        ("Logs", "logs:CreateLogStream"),
        ("Logs", "logs:PutLogEvents"),
        ("Start", "states:StartExecution"),
        ("", "NotAction:iam:*"),  # enumerated, so that it can only be justified or unproven
    ]
    assert {g.principals for g in found} == {("arn:aws:iam::000000000000:role/trigger-role",)}
    assert found[0].declared == "Logs@aws_iam_role_policy.trigger"


def test_resource_policy_grants_name_their_principals() -> None:
    topic_policy = {
        "Statement": [
            {
                "Sid": "Alarms",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": "arn:topic",
            }
        ]
    }
    (grant,) = iam_proof.grants_of(
        topic_policy, kind="topic-policy", holder="arn:topic", policy="", address="a", locate=lambda s, a: ""
    )
    assert grant.principals == ("cloudwatch.amazonaws.com",)


def test_taking_one_action_away_changes_only_that_action() -> None:
    changed = iam_proof.without(DOCUMENT, 0, {"logs:PutLogEvents"})

    assert changed["Statement"][0]["Action"] == "logs:CreateLogStream"
    assert changed["Statement"][1:] == DOCUMENT["Statement"][1:]
    assert DOCUMENT["Statement"][0]["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"], (
        "original kept"
    )


def test_an_emptied_statement_goes_and_a_lone_one_becomes_a_deny() -> None:
    assert len(iam_proof.without(DOCUMENT, 2, {"states:StartExecution"})["Statement"]) == 3
    lone = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "x"}}]}
    (statement,) = iam_proof.without(lone, 0, {"sts:AssumeRole"})["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "sts:AssumeRole"


def grant(
    kind: str,
    sid: str,
    action: str,
    principals: tuple[str, ...],
    condition: dict | None = None,
    resources: tuple[str, ...] = ("*",),
) -> Grant:
    return Grant(
        kind, "holder", "p", 0, sid, action, principals, json.dumps(condition or {}), "a", "x.tf:1", resources
    )


ACCOUNT = ("arn:aws:iam::0:root",)
VIA_DYNAMODB = {
    "StringEquals": {
        "kms:ViaService": "dynamodb.eu-central-1.amazonaws.com",
        "kms:CallerAccount": "000000000000",
    }
}
MONITOR_ROLE = ("arn:aws:iam::0:role/monitor-role",)
TABLES = ("arn:aws:dynamodb:eu-central-1:000000000000:table/*",)


def justified(candidate: Grant, components: set[str]) -> list[iam_proof.Justification]:
    return [j for j in iam_proof.JUSTIFICATIONS if j.matches(candidate, frozenset(components))]


def test_a_justification_covers_exactly_the_statement_it_names() -> None:
    reencrypt = grant(
        "key-policy", "AccountUsesKeyThroughDynamoDB", "kms:ReEncryptFrom", ACCOUNT, VIA_DYNAMODB
    )
    (match,) = justified(reencrypt, {"account"})
    assert match.group == "kms-reencrypt"
    assert match.reference.startswith("https://docs.aws.amazon.com/")

    assert not justified(reencrypt, {"writer"}), "the same statement given to a role"
    assert not justified(reencrypt, set()), "a principal that is no part of the stack"
    renamed = grant("key-policy", "UseAnyKey", "kms:ReEncryptFrom", ACCOUNT, VIA_DYNAMODB)
    assert not justified(renamed, {"account"}), "a statement no justification names"
    widened = grant("key-policy", "AccountUsesKeyThroughDynamoDB", "kms:Decrypt", ACCOUNT, VIA_DYNAMODB)
    assert not justified(widened, {"account"}), "an action the proof shows (the writer's request)"
    direct = grant("key-policy", "AccountUsesKeyThroughDynamoDB", "kms:ReEncryptFrom", ACCOUNT)
    assert not justified(direct, {"account"}), "the key used directly, not through DynamoDB"
    no_caller = grant(
        "key-policy",
        "AccountUsesKeyThroughDynamoDB",
        "kms:ReEncryptFrom",
        ACCOUNT,
        {"StringEquals": {"kms:ViaService": "dynamodb.eu-central-1.amazonaws.com"}},
    )
    assert not justified(no_caller, {"account"}), "a condition taken off the statement"


def test_a_justification_matches_the_resources_of_the_statement() -> None:
    tags = grant(
        "role-policy", "DescribeTablesAndTags", "dynamodb:ListTagsOfResource", MONITOR_ROLE, resources=TABLES
    )
    (match,) = justified(tags, {"monitor"})
    assert match.group == "ministack-wrong-resource"
    everything = grant("role-policy", "DescribeTablesAndTags", "dynamodb:ListTagsOfResource", MONITOR_ROLE)
    assert not justified(everything, {"monitor"}), "the statement widened to every resource"
    buckets = grant(
        "role-policy",
        "DescribeTablesAndTags",
        "dynamodb:ListTagsOfResource",
        MONITOR_ROLE,
        resources=(*TABLES, "arn:aws:s3:::*"),
    )
    assert not justified(buckets, {"monitor"}), "one resource outside the pattern"
    operator = ("arn:aws:iam::0:user/iam-proof-reconcile-operator-policy-json",)
    dlq = ("arn:aws:sqs:eu-central-1:000000000000:file-ingestion-dev-uploads-dlq",)
    start = grant(
        "operator-policy", "RedriveDeadLetterQueue", "sqs:StartMessageMoveTask", operator, resources=dlq
    )
    assert justified(start, {"operator"}), "MiniStack has no message move task"
    any_queue = grant("operator-policy", "RedriveDeadLetterQueue", "sqs:StartMessageMoveTask", operator)
    assert not justified(any_queue, {"operator"}), "the move task allowed on every queue"
    receive = grant(
        "operator-policy", "RedriveDeadLetterQueue", "sqs:ReceiveMessage", operator, resources=dlq
    )
    assert not justified(receive, {"operator"}), "the dead_letter_redrive scenario shows it"


def test_resource_policy_justifications_need_the_named_principal() -> None:
    logs_context = {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": ["arn:aws:logs:eu-central-1:0:log-group:/x"]}
    }
    logs = grant(
        "key-policy",
        "CloudWatchLogsUsesKeyForThisStacksLogGroups",
        "kms:ReEncryptTo",
        ("logs.eu-central-1.amazonaws.com",),
        logs_context,
    )
    assert justified(logs, set())
    anyone = grant(
        "key-policy", "CloudWatchLogsUsesKeyForThisStacksLogGroups", "kms:ReEncryptTo", ("*",), logs_context
    )
    assert not justified(anyone, set()), "the statement opened to everybody"
    any_group = grant(
        "key-policy",
        "CloudWatchLogsUsesKeyForThisStacksLogGroups",
        "kms:ReEncryptTo",
        ("logs.eu-central-1.amazonaws.com",),
    )
    assert not justified(any_group, set()), "the key for every log group"
    alias = grant("key-policy", "AccountAdministersKey", "kms:CreateAlias", ACCOUNT)
    assert justified(alias, {"account"})
    assert not justified(alias, set()), "administration by a principal that is not the stack's account"
    import_key = grant("key-policy", "AccountAdministersKey", "kms:GetParametersForImport", ACCOUNT)
    assert not justified(import_key, {"account"})


def test_what_the_proof_now_shows_by_acting_is_justified_no_more() -> None:
    """Lambda's log writes, the event source mapping's polling, Step Functions' invoke and publish,
    KMS through a service, trust policies, alarm publishing: devkit/iam_proof/acting.py makes those
    requests."""
    trigger_role = ("arn:aws:iam::0:role/trigger-role",)
    via_sqs = {"StringEquals": {"kms:ViaService": "sqs.eu-central-1.amazonaws.com"}}
    shown = [
        (grant("role-policy", "WriteOwnLogs", "logs:PutLogEvents", trigger_role), {"trigger"}),
        (grant("role-policy", "ConsumeUploadQueue", "sqs:ReceiveMessage", trigger_role), {"trigger"}),
        (
            grant("role-policy", "DecryptUploadQueueMessages", "kms:Decrypt", trigger_role, via_sqs),
            {"trigger"},
        ),
        (grant("role-policy", "InvokeWriter", "lambda:InvokeFunction", ("r",)), {"state_machine"}),
        (grant("trust-policy", "", "sts:AssumeRole", ("lambda.amazonaws.com",)), {"trigger"}),
        (
            grant("topic-policy", "CloudWatchAlarmsPublish", "sns:Publish", ("cloudwatch.amazonaws.com",)),
            set(),
        ),
        (
            grant(
                "key-policy",
                "UploadBucketNotifiesEncryptedQueue",
                "kms:GenerateDataKey",
                ("s3.amazonaws.com",),
            ),
            set(),
        ),
    ]
    for candidate, components in shown:
        assert not justified(candidate, components), candidate.label()


def test_every_justification_names_its_group_says_whose_grant_and_cites_aws() -> None:
    for justification in iam_proof.JUSTIFICATIONS:
        assert justification.reference.startswith("https://docs.aws.amazon.com/"), justification.sids
        assert justification.components or justification.principals
        group = iam_proof.GROUPS[justification.group]
        assert group.reference.startswith("https://docs.aws.amazon.com/")
        assert group.why
        assert justification.reason == group.why
    assert {j.group for j in iam_proof.JUSTIFICATIONS} == set(iam_proof.GROUPS), "a group nothing uses"
    with pytest.raises(ValueError, match="no known group"):
        iam_proof.Justification(
            "nonsense",
            ("role-policy",),
            ("S",),
            ("s3:GetObject",),
            ("*",),
            (),
            "https://x",
            components=("writer",),
        )
    with pytest.raises(ValueError, match="by pattern"):
        iam_proof.Justification(
            "x-ray", ("role-policy",), ("S",), ("kms:Get*",), ("*",), (), "u", components=("writer",)
        )
    with pytest.raises(ValueError, match="whose grant"):
        iam_proof.Justification("x-ray", ("role-policy",), ("S",), ("kms:GetKeyPolicy",), ("*",), (), "u")


def test_the_summary_counts_each_status_and_unproven_is_last_word() -> None:
    found = grants()
    results = [
        Result(found[0], "proven", scenario="upload", denial="denied"),
        Result(found[1], "justified", reason="r", reference="https://docs.aws.amazon.com/x"),
        Result(found[2], "unproven", reason="no denial"),
    ]
    assert iam_proof.summary(results) == "1 of 3 grants proven, 1 justified, 1 unproven"
    assert "unproven" in iam_proof.table(results)


def test_the_locator_follows_the_resource_to_its_policy_document(tmp_path: Path) -> None:
    (tmp_path / "iam.tf").write_text(
        'data "aws_iam_policy_document" "shared" {\n  statement {\n    sid = "Logs"\n  }\n}\n\n'
        'data "aws_iam_policy_document" "trigger" {\n'
        "  source_policy_documents = [data.aws_iam_policy_document.shared.json]\n"
        '  statement {\n    sid = "Start"\n  }\n}\n\n'
        'data "aws_iam_policy_document" "writer" {\n  statement {\n    sid = "Logs"\n  }\n}\n\n'
        'resource "aws_iam_role_policy" "trigger" {\n  policy = data.aws_iam_policy_document.trigger.json\n}\n\n'
        'resource "aws_iam_role_policy" "writer" {\n  policy = data.aws_iam_policy_document.writer.json\n}\n'
    )
    locate = iam_proof.Locator(tmp_path)
    assert locate("Start", "aws_iam_role_policy.trigger") == "iam.tf:10"
    assert locate("Logs", "aws_iam_role_policy.trigger") == "iam.tf:3", "through source_policy_documents"
    assert locate("Logs", "aws_iam_role_policy.writer") == "iam.tf:16", "the writer's own Logs statement"
    assert locate("", "aws_iam_role_policy.writer") == "iam.tf:14", "no sid: the document"


def test_an_unproven_grant_names_the_other_grant_that_gives_the_same_action() -> None:
    role = "arn:aws:iam::000000000000:role/trigger-role"
    (identity,) = iam_proof.grants_of(
        {"Statement": [{"Sid": "Publish", "Effect": "Allow", "Action": "sns:Publish", "Resource": "arn:t"}]},
        kind="role-policy",
        holder="trigger-role",
        policy="p",
        address="aws_iam_role_policy.trigger",
        locate=lambda s, a: "iam.tf:25",
        identity=role,
    )
    (resource,) = iam_proof.grants_of(
        {
            "Statement": [
                {
                    "Sid": "RolesPublish",
                    "Effect": "Allow",
                    "Principal": {"AWS": [role]},
                    "Action": "sns:Publish",
                }
            ]
        },
        kind="topic-policy",
        holder="arn:t",
        policy="",
        address="aws_sns_topic_policy.alerts",
        locate=lambda s, a: "sns.tf:28",
    )
    results = [
        Result(identity, "unproven", reason="no denial"),
        Result(resource, "unproven", reason="no denial"),
    ]

    iam_proof.note_overlaps(results)

    assert "RolesPublish sns:Publish (sns.tf:28)" in results[0].reason
    assert "Publish sns:Publish (iam.tf:25)" in results[1].reason


def test_a_deny_only_queue_policy_carries_no_grant() -> None:
    guardrail = {
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sqs:*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    assert not iam_proof.grants_of(
        guardrail, kind="queue-policy", holder="arn:q", policy="", address="a", locate=lambda s, a: ""
    )


def test_a_delivery_refused_in_ministacks_log_is_a_denial_of_the_service(tmp_path: Path) -> None:
    log = tmp_path / "ministack.log"
    log.write_text(
        "2026-12-06 12:04:29 INFO [s3] S3 notification → SQS file-ingestion-dev-uploads\n"
        "2026-12-06 12:04:30 WARNING [s3] S3 notification: queue policy denies delivery from "
        "the-bucket to file-ingestion-dev-uploads\n"
        "2026-12-06 12:04:31 WARNING [sns] SNS fanout: queue policy denies delivery from "
        "arn:aws:sns:eu-central-1:0:alerts to observer\n"
        "2026-12-06 12:04:32 WARNING [s3] S3 notification: queue policy denies"  # not written out yet
    )

    found, offset = iam_proof.refused_deliveries(log)

    assert [(d.action, d.principal, d.resource) for d in found] == [
        ("sqs:SendMessage", "s3.amazonaws.com", "file-ingestion-dev-uploads"),
        ("sqs:SendMessage", "sns.amazonaws.com", "observer"),
    ]
    assert "queue policy denies delivery from the-bucket" in iam_proof.denial_text(found[0].message)
    assert iam_proof.refused_deliveries(log, offset) == ([], offset), "read once; the partial line waits"


def queue_grant(queue: str) -> Grant:
    return Grant(
        "queue-policy",
        f"arn:aws:sqs:eu-central-1:000000000000:{queue}",
        "",
        1,
        "UploadBucketSendsNotifications",
        "sqs:SendMessage",
        ("s3.amazonaws.com",),
        "{}",
        "aws_sqs_queue_policy.uploads",
        "sqs.tf:70",
    )


def test_a_refused_delivery_proves_the_grant_of_that_queue_and_that_service_only() -> None:
    refused = Denial("sqs", "sqs:SendMessage", "s3.amazonaws.com", "file-ingestion-dev-uploads", "log")
    on_dlq = Denial("sqs", "sqs:SendMessage", "s3.amazonaws.com", "file-ingestion-dev-uploads-dlq", "log")
    from_sns = Denial("sqs", "sqs:SendMessage", "sns.amazonaws.com", "file-ingestion-dev-uploads", "log")
    uploads = queue_grant("file-ingestion-dev-uploads")

    assert iam_proof.Proof.denial_of(uploads, [("upload", refused)]) == ("upload", refused)
    assert iam_proof.Proof.denial_of(uploads, [("upload", on_dlq)]) is None, "another queue"
    assert iam_proof.Proof.denial_of(uploads, [("upload", from_sns)]) is None, "another service"


def test_every_scenario_named_in_the_tables_exists() -> None:
    named = {
        *iam_proof.DELIBERATE,
        *(n for names in iam_proof.COMPONENT_SCENARIOS.values() for n in names),
        *(n for names in iam_proof.SERVICE_SCENARIOS.values() for n in names),
        *(n for names in iam_proof.OUTPUT_SCENARIOS.values() for n in names),
        *(n for names in iam_proof.KEY_SCENARIOS.values() for n in names),
    }
    assert named <= set(iam_proof.SCENARIOS)
    assert "kms_sqs_key_arn" in iam_proof.KEY_SCENARIOS
    assert iam_proof.DELIBERATE["failed_start"] == ("trigger", "states:StartExecution")


def test_a_denial_is_shown_as_its_message_on_one_line() -> None:
    xml = "<Error>\n<Code>AccessDenied</Code><Message>User: r is not\n authorized</Message></Error>"
    assert iam_proof.denial_text(xml) == "User: r is not authorized"
    assert iam_proof.denial_text('{"__type": "AccessDeniedException", "message": "User: r"}') == "User: r"


# --- the proof's loop, on a fake backend whose only behaviour is the policy it is given ----------

ROLE = "arn:aws:iam::000000000000:role/trigger-role"


class FakeServer:
    """MiniStack's denial log: the scenarios append to it."""

    def __init__(self) -> None:
        self.log: list[Denial] = []

    def denial_offset(self) -> int:
        return len(self.log)

    def denials(self, offset: int = 0) -> tuple[list[Denial], int]:
        return self.log[offset:], len(self.log)


class FakePolicy:
    """A deployed role policy: what the proof applies is what the scenarios see."""

    def __init__(self, document: dict) -> None:
        self.deployed = document
        self.applied: list[dict] = []

    def apply(self, document: dict) -> None:
        self.applied.append(document)
        self.deployed = document

    def allows(self, action: str) -> bool:
        return any(
            s["Effect"] == "Allow" and action in iam_proof.as_list(s.get("Action"))
            for s in self.deployed["Statement"]
        )


def fake_proof(monkeypatch: pytest.MonkeyPatch, policy: FakePolicy, calls: list[str]) -> iam_proof.Proof:
    """A proof whose trigger scenarios make `calls` as the trigger role, denied unless allowed."""
    server = FakeServer()

    def scenario(_: object) -> iam_proof.Outcome:
        for action in calls:
            if not policy.allows(action):
                server.log.append(
                    Denial("svc", action, f"{ROLE.replace(':role/', ':assumed-role/')}/s", "arn:r", "")
                )
        return iam_proof.Outcome(True, "ran")

    for name in iam_proof.COMPONENT_SCENARIOS["trigger"]:
        monkeypatch.setitem(iam_proof.SCENARIOS, name, scenario)
    monkeypatch.setattr(prove.time, "sleep", lambda seconds: None)  # Proof.run's pause
    proof = iam_proof.Proof(pipeline=None, server=server, scenarios=iam_proof.Scenarios(pipeline=None))  # type: ignore[arg-type]
    proof.components["trigger-role"] = "trigger"
    return proof


def test_a_grant_is_proven_only_by_the_denial_its_removal_causes(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {
        "Statement": [
            {
                "Sid": "Work",
                "Effect": "Allow",
                "Action": ["states:StartExecution", "sns:Publish", "s3:GetObject"],
            },
        ]
    }
    policy = FakePolicy(document)
    proof = fake_proof(monkeypatch, policy, calls=["states:StartExecution", "sns:Publish"])
    carrier = iam_proof.Carrier(
        "role-policy", "trigger-role", "p", "a", document, ROLE, policy.apply, lambda: policy.deployed
    )
    (statement,) = [g for _, g in iam_proof.enumerate_grants([carrier], lambda sid, address: "iam.tf:1")]

    results = {r.grant.action: r for r in proof.prove(carrier, statement)}

    assert results["states:StartExecution"].status == "proven"
    assert results["states:StartExecution"].scenario == iam_proof.COMPONENT_SCENARIOS["trigger"][0]
    assert results["sns:Publish"].status == "proven"
    assert results["s3:GetObject"].status == "unproven", "nothing needs it and nothing justifies it"
    assert "no justification" in results["s3:GetObject"].reason
    assert policy.deployed == document, "restored as deployed"
    assert {a for d in policy.applied for s in d["Statement"] for a in iam_proof.as_list(s["Action"])} >= {
        "s3:GetObject"
    }


def test_a_policy_not_restored_as_deployed_stops_the_proof(monkeypatch: pytest.MonkeyPatch) -> None:
    document = {
        "Statement": [{"Sid": "Work", "Effect": "Allow", "Action": ["states:StartExecution", "sns:Publish"]}]
    }
    policy = FakePolicy(document)
    proof = fake_proof(monkeypatch, policy, calls=["states:StartExecution"])
    stuck = {"Statement": [{"Sid": "Work", "Effect": "Allow", "Action": "sns:Publish"}]}
    carrier = iam_proof.Carrier(
        "role-policy", "trigger-role", "p", "a", document, ROLE, policy.apply, lambda: stuck
    )
    (statement,) = [g for _, g in iam_proof.enumerate_grants([carrier], lambda sid, address: "")]

    with pytest.raises(iam_proof.ProofError, match="not restored"):
        proof.prove(carrier, statement)


def test_the_exit_status_is_0_only_with_a_clean_baseline_and_nothing_unproven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = grants()
    proven = Result(found[0], "proven", scenario="upload", denial="denied")
    justified_one = Result(found[1], "justified", reason="r", reference="https://docs.aws.amazon.com/x")
    report = tmp_path / "iam-proof.json"

    assert iam_proof.finish([proven, justified_one], True, report, {"provider": "5.100.0"}) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 of 2 grants proven, 1 justified, 0 unproven"
    written = json.loads(report.read_text())
    assert [g["status"] for g in written["grants"]] == ["proven", "justified"]
    assert written["provider"] == "5.100.0"
    assert written["baseline_ok"] is True

    unproven = Result(found[2], "unproven", reason="no denial")
    assert iam_proof.finish([proven, unproven], True, report, {}) == 1
    assert "UNPROVEN: role-policy trigger-role Start states:StartExecution" in capsys.readouterr().out
    assert iam_proof.finish([proven], False, report, {}) == 1, "a baseline with a denial fails the proof"
    assert iam_proof.finish([], True, report, {}) == 1, "no grants found is a failure, not a pass"
