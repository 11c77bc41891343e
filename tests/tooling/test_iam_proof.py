"""The IAM proof's bookkeeping: every action of every Allow statement is a grant, taking one away
changes exactly that, and a grant nobody can show or justify is counted as unproven."""

from __future__ import annotations

import json
from pathlib import Path

from devkit import iam_proof
from devkit.iam_proof import Grant, Result

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


def test_a_justification_matches_by_kind_action_and_kms_via_service() -> None:
    writer_kms = Grant(
        "role-policy",
        "writer-role",
        "p",
        3,
        "UseTableKey",
        "kms:Encrypt",
        ("arn:aws:iam::0:role/writer-role",),
        json.dumps({"StringEquals": {"kms:ViaService": "dynamodb.eu-central-1.amazonaws.com"}}),
        "a",
        "iam.tf:1",
    )
    matching = [j for j in iam_proof.JUSTIFICATIONS if j.matches(writer_kms, "lambda")]
    assert matching
    assert matching[0].reference.startswith("https://docs.aws.amazon.com/")
    s3_key_encrypt = Grant(
        "key-policy",
        "arn:key",
        "default",
        1,
        "AccountUsesKeyThroughS3",
        "kms:Encrypt",
        ("arn:aws:iam::0:root",),
        json.dumps({"StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"}}),
        "aws_kms_key.s3",
        "kms.tf:1",
    )
    assert not [j for j in iam_proof.JUSTIFICATIONS if j.matches(s3_key_encrypt, "")], (
        "S3 documents only GenerateDataKey and Decrypt: Encrypt on the S3 key is not justified"
    )


def test_the_summary_counts_each_status_and_unproven_is_last_word() -> None:
    found = grants()
    results = [
        Result(found[0], "proven", scenario="upload", denial="denied"),
        Result(found[1], "justified", reason="r", reference="https://docs.aws.amazon.com/x"),
        Result(found[2], "unproven", reason="no denial"),
    ]
    assert iam_proof.summary(results) == "1 of 3 grants proven, 1 justified, 1 unproven"
    assert "unproven" in iam_proof.table(results)


def test_the_locator_points_at_the_sid_or_the_resource(tmp_path: Path) -> None:
    (tmp_path / "iam.tf").write_text(
        'resource "aws_iam_role_policy" "trigger" {\n}\n\ndata "x" "y" {\n  statement {\n    sid = "Start"\n  }\n}\n'
    )
    locate = iam_proof.Locator(tmp_path)
    assert locate("Start", "aws_iam_role_policy.trigger") == "iam.tf:6"
    assert locate("", "aws_iam_role_policy.trigger") == "iam.tf:1"


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


def test_a_denial_is_shown_as_its_message_on_one_line() -> None:
    xml = "<Error>\n<Code>AccessDenied</Code><Message>User: r is not\n authorized</Message></Error>"
    assert iam_proof.denial_text(xml) == "User: r is not authorized"
    assert iam_proof.denial_text('{"__type": "AccessDeniedException", "message": "User: r"}') == "User: r"
