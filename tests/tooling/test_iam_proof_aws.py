"""``make iam-proof-aws``'s own logic: AWS's denial answers read as denials, a grant proven only by
what taking it away alone caused, the scenarios it runs all real requests, the report and its exit
status, and the stops before anything is created. The whole run against MiniStack (AUTH=true) is in
tests/e2e/test_iam_proof_aws_run.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from devkit import iam_proof, toolchain
from devkit.iam_proof import Grant, Result, answered, aws, tables
from devkit.ministack import Denial

ROLE = "arn:aws:iam::123456789012:role/ingest-ab12-e2e-writer-role"
SESSION = "arn:aws:sts::123456789012:assumed-role/ingest-ab12-e2e-writer-role/session"


@pytest.mark.parametrize(
    ("message", "action", "principal", "resource"),
    [
        # DynamoDB (JSON)
        (
            f"User: {SESSION} is not authorized to perform: dynamodb:PutItem on resource: "
            "arn:aws:dynamodb:eu-central-1:123456789012:table/files because no identity-based policy "
            "allows the dynamodb:PutItem action",
            "dynamodb:PutItem",
            SESSION,
            "arn:aws:dynamodb:eu-central-1:123456789012:table/files",
        ),
        # SNS spells the service in capitals and ends the resource with a full stop
        (
            f"User: {SESSION} is not authorized to perform: SNS:Publish on resource: "
            "arn:aws:sns:eu-central-1:123456789012:alerts because no identity-based policy allows the "
            "SNS:Publish action",
            "SNS:Publish",
            SESSION,
            "arn:aws:sns:eu-central-1:123456789012:alerts",
        ),
        # KMS through a service: the key policy
        (
            "User: arn:aws:iam::123456789012:user/ingest-ab12-proof-reconcile is not authorized to "
            "perform: kms:Decrypt on resource: arn:aws:kms:eu-central-1:123456789012:key/1234 because "
            "no resource-based policy allows the kms:Decrypt action",
            "kms:Decrypt",
            "arn:aws:iam::123456789012:user/ingest-ab12-proof-reconcile",
            "arn:aws:kms:eu-central-1:123456789012:key/1234",
        ),
        # an action on no particular resource
        (
            f"User: {SESSION} is not authorized to perform: s3:ListAllMyBuckets because no "
            "identity-based policy allows the s3:ListAllMyBuckets action",
            "s3:ListAllMyBuckets",
            SESSION,
            "",
        ),
    ],
)
def test_an_access_denial_answer_names_the_caller_action_and_resource(
    message: str, action: str, principal: str, resource: str
) -> None:
    denial = answered.parse_denial("svc", message)

    assert denial is not None
    assert (denial.action, denial.principal, denial.resource) == (action, principal, resource)
    assert denial.message == message


def test_a_refusal_that_is_no_access_denial_is_no_denial() -> None:
    assert answered.parse_denial("sqs", "The specified queue does not exist.") is None


class Model:
    class service_model:  # botocore's attribute name
        endpoint_prefix = "dynamodb"


def test_answers_record_denials_in_order_and_nothing_else() -> None:
    answers = answered.Answers()
    denied = f"User: {SESSION} is not authorized to perform: dynamodb:PutItem on resource: arn:t"

    answers._after_call(parsed={"Error": {"Code": "AccessDeniedException", "Message": denied}}, model=Model())
    answers._after_call(parsed={"Error": {"Code": "ValidationException", "Message": "bad"}}, model=Model())
    answers._after_call(parsed={"Items": []}, model=Model())
    mark = answers.denial_offset()
    answers._after_call(parsed={"Error": {"Code": "AccessDenied", "Message": denied}}, model=Model())

    assert [d.service for d in answers.denials(0)[0]] == ["dynamodb", "dynamodb"]
    assert answers.denials(mark) == ([answers.seen[1]], 2)


def test_the_aws_scenarios_are_real_requests_only_and_every_table_names_one_of_them() -> None:
    assert set(tables.AWS_SCENARIOS) <= set(iam_proof.SCENARIOS)
    assert not [name for name in tables.AWS_SCENARIOS if name.startswith("as_")], (
        "the as_* scenarios act as service principals through MiniStack's markings: impossible on AWS"
    )
    for table in (
        tables.AWS_COMPONENT_SCENARIOS,
        tables.AWS_OUTPUT_SCENARIOS,
        tables.AWS_KEY_SCENARIOS,
        tables.AWS_SERVICE_SCENARIOS,
    ):
        for names in table.values():
            assert set(names) <= set(tables.AWS_SCENARIOS)
    assert set(tables.AWS_KEY_SCENARIOS) == set(iam_proof.KEY_SCENARIOS), (
        "every key of the stack has scenarios"
    )
    assert set(tables.AWS_COMPONENT_SCENARIOS) == set(iam_proof.COMPONENT_SCENARIOS)


def test_a_denial_that_names_no_resource_is_on_the_resource_the_request_named() -> None:
    """Through a real client's event chain (botocore's Stubber answers in place of KMS)."""
    answers = answered.Answers()
    answers.listen()
    kms = boto3.client(
        "kms", region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b"
    )  # created after listen(), as the proof's clients are
    key = "arn:aws:kms:eu-central-1:123456789012:key/k1"
    message = "User: arn:aws:iam::123456789012:user/admin is not authorized to perform: kms:TagResource"
    with Stubber(kms) as stub:
        stub.add_client_error("tag_resource", "AccessDeniedException", message)
        with pytest.raises(ClientError):
            kms.tag_resource(KeyId=key, Tags=[{"TagKey": "a", "TagValue": "b"}])

    assert [(d.service, d.action, d.resource) for d in answers.seen] == [("kms", "kms:TagResource", key)]


def test_key_administration_is_attributed_by_its_answers_in_one_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "arn:aws:kms:eu-central-1:123456789012:key/k1"
    document = {
        "Statement": [
            {
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": ["kms:TagResource", "kms:DisableKey", "kms:GetKeyPolicy"],
            }
        ]
    }
    policy = FakePolicy(document)
    answers = answered.Answers()
    admin = "arn:aws:iam::123456789012:user/ingest-ab12-proof-key-administrator"

    def administer(scenarios: iam_proof.Scenarios) -> iam_proof.Outcome:
        assert scenarios.admin_focus == key, "only the key whose policy is changed is administered"
        refused = [a for a in ("kms:TagResource", "kms:DisableKey") if not policy.allows(a)]
        answers.seen += [Denial("kms", a, admin, key, f"not authorized to perform: {a}") for a in refused]
        return iam_proof.Outcome(not refused, f"refused: {refused}")

    monkeypatch.setitem(iam_proof.SCENARIOS, "key_administration", administer)
    monkeypatch.setattr(iam_proof.prove.time, "sleep", lambda seconds: None)
    proof = answered.AwsProof(
        pipeline=None, server=answers, scenarios=iam_proof.Scenarios(pipeline=None), settle=0
    )  # type: ignore[arg-type]
    proof.account_root = "arn:aws:iam::123456789012:root"
    applied: list[dict] = []

    def apply(changed: dict) -> None:
        applied.append(changed)
        policy.apply(changed)

    carrier = iam_proof.Carrier(
        "key-policy", key, "", "aws_kms_key.s3", document, "", apply, lambda: policy.deployed
    )
    (statement,) = [g for _, g in iam_proof.enumerate_grants([carrier], lambda sid, address: "kms.tf:1")]

    results = {r.grant.action: r for r in proof.prove(carrier, statement)}

    assert results["kms:TagResource"].status == results["kms:DisableKey"].status == "proven"
    assert "AWS answered" in results["kms:DisableKey"].denial
    assert results["kms:GetKeyPolicy"].status == "not shown", "no request of the fake needs it"
    assert len(applied) == 4, "taken away together once, then for the one no answer named; each restored"
    assert proof.scenarios.admin_focus == ""


# --- the mutation, on fakes: a scenario breaks, or AWS answers, as the policy says ------------------


class FakePolicy:
    def __init__(self, document: dict) -> None:
        self.deployed = document

    def apply(self, document: dict) -> None:
        self.deployed = document

    def allows(self, action: str) -> bool:
        return any(
            s["Effect"] == "Allow" and action in iam_proof.as_list(s.get("Action"))
            for s in self.deployed["Statement"]
        )


def fake_aws_proof(
    monkeypatch: pytest.MonkeyPatch, policy: FakePolicy, needed: str, denied: str
) -> answered.AwsProof:
    """The writer's scenario breaks without `needed` (a service's request: no answer) and AWS
    answers the proof's own request with a denial without `answered`."""
    answers = answered.Answers()

    def upload(_: object) -> iam_proof.Outcome:
        if not policy.allows(denied):
            answers.seen.append(Denial("kms", denied, SESSION, "arn:k", f"not authorized: {denied}"))
        return iam_proof.Outcome(
            policy.allows(needed), "SUCCEEDED, 1 row" if policy.allows(needed) else "FAILED"
        )

    monkeypatch.setitem(iam_proof.SCENARIOS, "upload", upload)
    monkeypatch.setattr(iam_proof.prove.time, "sleep", lambda seconds: None)
    proof = answered.AwsProof(
        pipeline=None, server=answers, scenarios=iam_proof.Scenarios(pipeline=None), settle=0
    )  # type: ignore[arg-type]
    proof.components["ingest-ab12-e2e-writer-role"] = "writer"
    return proof


def test_a_grant_is_shown_on_aws_only_by_what_taking_it_away_alone_caused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = {
        "Statement": [
            {
                "Sid": "Write",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "kms:GenerateDataKey", "xray:PutTraceSegments"],
            }
        ]
    }
    policy = FakePolicy(document)
    proof = fake_aws_proof(monkeypatch, policy, needed="dynamodb:PutItem", denied="kms:GenerateDataKey")
    carrier = iam_proof.Carrier(
        "role-policy",
        "ingest-ab12-e2e-writer-role",
        "p",
        "a",
        document,
        ROLE,
        policy.apply,
        lambda: policy.deployed,
    )
    (statement,) = [g for _, g in iam_proof.enumerate_grants([carrier], lambda sid, address: "iam.tf:1")]

    results = {r.grant.action: r for r in proof.prove(carrier, statement)}

    assert results["dynamodb:PutItem"].status == "proven"
    assert results["dynamodb:PutItem"].denial == "broke with it taken away: upload: FAILED"
    assert results["kms:GenerateDataKey"].status == "proven"
    assert "AWS answered" in results["kms:GenerateDataKey"].denial
    assert results["xray:PutTraceSegments"].status == "not shown"
    assert "broke nothing" in results["xray:PutTraceSegments"].reason
    assert policy.deployed == document, "restored as deployed"


def test_a_scenario_whose_own_request_is_refused_fails_and_the_answer_shows_the_grant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An upload refused (the S3 key's grant taken away) raises in the scenario: the proof goes on."""
    key = "arn:aws:kms:eu-central-1:123456789012:key/k1"
    document = {
        "Statement": [
            {
                "Sid": "AccountUsesKeyThroughS3",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": ["kms:GenerateDataKey"],
                "Condition": {"StringEquals": {"kms:ViaService": "s3.eu-central-1.amazonaws.com"}},
            }
        ]
    }
    policy = FakePolicy(document)
    answers = answered.Answers()
    message = f"User: {ROLE} is not authorized to perform: kms:GenerateDataKey on resource: {key}"

    def upload(_: object) -> iam_proof.Outcome:
        if not policy.allows("kms:GenerateDataKey"):
            answers.seen.append(Denial("s3", "kms:GenerateDataKey", ROLE, key, message))
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, "PutObject")
        return iam_proof.Outcome(True, "SUCCEEDED, 1 row")

    for name in ("upload", "reconcile"):
        monkeypatch.setitem(iam_proof.SCENARIOS, name, upload)
    monkeypatch.setattr(iam_proof.prove.time, "sleep", lambda seconds: None)
    proof = answered.AwsProof(
        pipeline=None, server=answers, scenarios=iam_proof.Scenarios(pipeline=None), settle=0
    )  # type: ignore[arg-type]
    proof.pipeline = type("Outputs", (), {"outputs": {"kms_s3_key_arn": key}})()  # type: ignore[assignment]
    proof.account_root = "arn:aws:iam::123456789012:root"
    carrier = iam_proof.Carrier(
        "key-policy", key, "", "aws_kms_key.s3", document, "", policy.apply, lambda: policy.deployed
    )
    (statement,) = [g for _, g in iam_proof.enumerate_grants([carrier], lambda sid, address: "kms.tf:1")]

    outcomes, _ = proof.run(("upload",))
    assert outcomes["upload"].ok
    (result,) = proof.prove(carrier, statement)

    assert result.status == "proven"
    assert result.scenario == "upload"
    assert "AWS answered" in result.denial
    assert policy.deployed == document


def test_a_grant_no_aws_scenario_exercises_is_not_shown_and_not_taken_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = {"Statement": [{"Sid": "Alarms", "Effect": "Allow", "Action": ["sns:Publish"]}]}
    policy = FakePolicy(document)
    proof = fake_aws_proof(monkeypatch, policy, needed="x:Y", denied="x:Z")
    applied: list[dict] = []
    carrier = iam_proof.Carrier(
        "topic-policy", "arn:aws:sns:eu-central-1:123456789012:alerts", "", "a", document, "",
        applied.append, None,
    )  # fmt: skip
    grant = Grant(
        "topic-policy", carrier.holder, "", 0, "Alarms", "sns:Publish",
        ("cloudwatch.amazonaws.com",), "{}", "aws_sns_topic_policy.alerts", "sns.tf:1",
    )  # fmt: skip

    (result,) = proof.prove(carrier, [grant])

    assert result.status == "not shown"
    assert "no scenario of the pipeline exercises this principal on AWS" in result.reason
    assert applied == [], "nothing taken away when nothing could show it"


# --- the report ------------------------------------------------------------------------------------


def results() -> list[Result]:
    found = iam_proof.grants_of(
        {
            "Statement": [
                {"Sid": "Write", "Effect": "Allow", "Action": ["dynamodb:PutItem", "kms:Decrypt", "xray:Put"]}
            ]
        },
        kind="role-policy",
        holder="writer-role",
        policy="p",
        address="aws_iam_role_policy.writer",
        locate=lambda sid, address: "iam.tf:9",
        identity=ROLE,
    )
    return [
        Result(found[0], "proven", scenario="upload", denial="broke with it taken away: upload: FAILED"),
        Result(
            found[1],
            "proven",
            scenario="reconcile",
            denial="reconcile: AWS answered: User: u is not authorized",
        ),
        Result(found[2], "not shown", reason="taking it away broke nothing"),
    ]


def test_the_report_compares_with_ministacks_and_the_status_needs_a_clean_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ministack = tmp_path / "iam-proof.json"
    ministack.write_text(
        json.dumps(
            {
                "grants": [
                    {"kind": "role-policy", "sid": "Write", "action": "dynamodb:PutItem", "status": "proven"},
                    {"kind": "role-policy", "sid": "Write", "action": "kms:Decrypt", "status": "justified"},
                    {"kind": "role-policy", "sid": "Write", "action": "xray:Put", "status": "proven"},
                ]
            }
        )
    )
    found = results()

    lines = aws.compared(found, ministack)

    assert lines == [
        "shown on AWS, justified on MiniStack: role-policy writer-role Write kms:Decrypt (iam.tf:9)",
        "shown on MiniStack, not on AWS: role-policy writer-role Write xray:Put (iam.tf:9)",
    ]
    assert aws.compared(found, tmp_path / "none.json")[0].startswith("no none.json to compare with")
    report = tmp_path / "iam-proof-aws.json"
    assert aws.finish(found, True, True, report, {"run_id": "ab12"}) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "2 of 3 grants shown on AWS (1 by a denial AWS answered, 1 by a scenario that broke), 1 not shown"
    )
    written = json.loads(report.read_text())
    assert [g["status"] for g in written["grants"]] == ["proven", "proven", "not shown"]
    assert written["run_id"] == "ab12"
    assert aws.finish(found, False, True, report, {}) == 1, "a broken baseline or a failed restore fails it"
    assert aws.finish(found, True, False, report, {}) == 1, "something left in the account fails it"
    assert aws.finish([], True, True, report, {}) == 1, "no grant found is a failure"


# --- the stops before anything is created ----------------------------------------------------------


def run_proof(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit.iam_proof.aws", *args],
        cwd=toolchain.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_credentials_it_stops_with_one_sentence_and_creates_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k in {"AWS_DEFAULT_REGION"}}
    env |= {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    result = run_proof("--yes", "--run-id", "nocreds", env=env)

    assert result.returncode == 2
    assert result.stderr.startswith("make iam-proof-aws: no AWS credentials were found in the standard chain")
    assert result.stderr.count("\n") == 1, result.stderr
    assert not (toolchain.ROOT / "build" / "tf" / "iam-proof-nocreds").exists()
