"""The sandbox run's pure parts: run ids and variables, the sweeper's reading of ARNs and ages, the
cost estimate and README's figures it is taken from. The run itself is tests/e2e/test_sandbox.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from devkit import cost, sandbox, sweep
from devkit.sweep import Leftover

README = (sandbox.ROOT / "README.md").read_text()
MOMENT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arn", "kind", "name"),
    [
        ("arn:aws:s3:::ingest-ab12-e2e-uploads", "s3:bucket", "ingest-ab12-e2e-uploads"),
        ("arn:aws:sqs:eu-central-1:123456789012:ingest-ab12-e2e-queue", "sqs:queue", "ingest-ab12-e2e-queue"),
        ("arn:aws:sns:eu-central-1:123456789012:ingest-ab12-alerts", "sns:topic", "ingest-ab12-alerts"),
        ("arn:aws:lambda:eu-central-1:123456789012:function:ingest-ab12-trigger", "lambda:function", "ingest-ab12-trigger"),
        ("arn:aws:lambda:eu-central-1:123456789012:event-source-mapping:0b1c-4d", "lambda:event-source-mapping", "0b1c-4d"),
        ("arn:aws:states:eu-central-1:123456789012:stateMachine:ingest-ab12-sm", "states:stateMachine", "ingest-ab12-sm"),
        ("arn:aws:cloudwatch:eu-central-1:123456789012:alarm:ingest-ab12-dlq:not-empty", "cloudwatch:alarm", "ingest-ab12-dlq:not-empty"),
        ("arn:aws:dynamodb:eu-central-1:123456789012:table/ingest-ab12-files", "dynamodb:table", "ingest-ab12-files"),
        ("arn:aws:logs:eu-central-1:123456789012:log-group:/aws/lambda/ingest-ab12-writer:*", "logs:log-group", "/aws/lambda/ingest-ab12-writer"),
        ("arn:aws:logs:eu-central-1:123456789012:log-group:/aws/vendedlogs/states/x", "logs:log-group", "/aws/vendedlogs/states/x"),
        ("arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab", "kms:key", "1234abcd-12ab"),
        ("arn:aws:iam::123456789012:role/ingest-ab12-e2e-trigger", "iam:role", "ingest-ab12-e2e-trigger"),
        ("arn:aws:iam::123456789012:user/ingest-ab12-proof-keys", "iam:user", "ingest-ab12-proof-keys"),
        ("arn:aws:events:eu-central-1:123456789012:rule/ingest-ab12-scan", "events:rule", "ingest-ab12-scan"),
    ],
)  # fmt: skip
def test_a_leftover_is_read_as_the_delete_call_needs_it(arn: str, kind: str, name: str) -> None:
    leftover = Leftover(arn, "ab12", MOMENT)

    assert (leftover.kind, leftover.name) == (kind, name)
    assert kind in sweep.DELETERS


def test_every_deletable_kind_has_its_place_in_the_order_and_keys_go_last() -> None:
    assert set(sweep.DELETERS) == set(sweep.ORDER)
    assert sweep.ORDER.index("lambda:function") < sweep.ORDER.index("iam:role") < sweep.ORDER.index("kms:key")
    assert sweep.ORDER.index("iam:user") < sweep.ORDER.index("kms:key")
    assert sweep.ORDER.index("events:rule") < sweep.ORDER.index("lambda:function")


def test_a_kind_without_a_deleter_is_reported_not_deleted() -> None:
    odd = Leftover("arn:aws:ec2:eu-central-1:123456789012:vpc/vpc-1", "ab12", MOMENT)

    result = sweep.delete(lambda service: pytest.fail(f"no client is needed, asked for {service}"), [odd])

    assert result.deleted == []
    assert result.failed == [(odd, "no deleter for ec2:vpc: delete it by hand")]


@pytest.mark.parametrize(
    ("text", "age"), [("90m", timedelta(minutes=90)), ("24h", timedelta(hours=24)), ("2d", timedelta(days=2))]
)
def test_ages_are_minutes_hours_or_days(text: str, age: timedelta) -> None:
    assert sweep.parse_age(text) == age


@pytest.mark.parametrize("text", ["yesterday", "24", "1w", "-3h", ""])
def test_anything_else_is_not_an_age(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration such as 90m, 24h or 2d"):
        sweep.parse_age(text)


def test_a_sweep_takes_one_run_or_the_runs_older_than_the_age() -> None:
    old = Leftover("arn:aws:s3:::a", "old1", MOMENT - timedelta(hours=30))
    new = Leftover("arn:aws:s3:::b", "new1", MOMENT - timedelta(hours=1))
    unknown_start = Leftover("arn:aws:s3:::c", "odd1", None)
    day = timedelta(hours=24)

    assert [x.run_id for x in (old, new, unknown_start) if sweep.wanted(x, "new1", None, MOMENT)] == ["new1"]
    assert [x.run_id for x in (old, new, unknown_start) if sweep.wanted(x, None, day, MOMENT)] == [
        "old1",
        "odd1",
    ]
    assert not sweep.wanted(old, None, None, MOMENT), "neither a run nor an age: nothing"


@pytest.mark.parametrize("run_id", ["a", "gh12345678901", "ab12cd34"])
def test_a_run_id_names_a_valid_project(run_id: str) -> None:
    variables = sandbox.variables(sandbox.check_run_id(run_id), MOMENT)

    # variables.tf: project_name is 2-20 characters of [a-z0-9-], starting with a letter
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,19}", str(variables["project_name"]))
    assert variables["tags"] == {sweep.RUN_TAG: run_id, sweep.STARTED_TAG: "2026-12-07T12:00:00+00:00"}
    assert variables["dynamodb_deletion_protection"] is False
    assert variables["s3_force_destroy"] is True


@pytest.mark.parametrize("run_id", ["", "Upper", "with-dash", "fourteen141414"])
def test_a_run_id_that_cannot_name_resources_is_refused(run_id: str) -> None:
    with pytest.raises(sandbox.SandboxError, match="must be 1-13 lowercase letters or digits"):
        sandbox.check_run_id(run_id)


def test_every_variable_a_run_sets_is_declared() -> None:
    declared = set(re.findall(r'^variable "(\w+)"', (sandbox.ROOT / "variables.tf").read_text(), re.M))

    assert set(sandbox.variables("ab12", MOMENT)) <= declared


def test_the_cost_of_a_run_is_its_files_and_the_fixed_costs_by_the_hour() -> None:
    hour_of_fixed = (6 * 1.00 + 10 * 0.10 + 19 * 0.30) / 730

    assert cost.estimate(cost.Usage(files=0, executions=0), 0.2) == pytest.approx(hour_of_fixed)
    assert cost.estimate(cost.Usage(files=1_000_000, executions=1_000_000), 1.0) == pytest.approx(
        35 + hour_of_fixed
    )
    assert cost.estimate(cost.Usage(files=0, executions=0), 3.0) == pytest.approx(3 * hour_of_fixed)
    assert "about $0.02 (60 file(s) ingested" in cost.summary(cost.Usage(files=60, executions=64), 0.5)


def test_the_figures_are_the_readme_cost_models() -> None:
    assert "**about $35 (up to $45 with X-Ray tracing every file)**" in README
    fixed = " ".join(README[README.index("Monthly fixed costs beside") :].split()[:60])
    assert "six customer-managed KMS keys ($1 each), ten CloudWatch alarms ($0.10 each)" in fixed
    assert "up to 19 CloudWatch custom metrics from Powertools ($0.30 each" in fixed
    assert cost.PER_MILLION_FILES_STANDARD == 35.0
    assert cost.MONTHLY_FIXED["KMS keys"] == 6.0
    assert cost.MONTHLY_FIXED["CloudWatch alarms"] == pytest.approx(1.0)
    assert cost.MONTHLY_FIXED["custom metrics"] == pytest.approx(5.7)


def test_the_sandbox_workflows_run_id_is_one_the_run_accepts() -> None:
    """aws-sandbox.yml passes ``gh<GitHub run id>`` to both targets; run ids have 11 digits today
    (and grow), so the widest that fits is checked, with room for one more digit refused loudly."""
    workflow = (sandbox.ROOT / ".github" / "workflows" / "aws-sandbox.yml").read_text()
    forms = set(re.findall(r"RUN_ID: (.+)", workflow))

    assert forms == {"gh${{ github.run_id }}"}
    assert sandbox.check_run_id("gh" + "9" * 11) == "gh99999999999"
    with pytest.raises(sandbox.SandboxError):
        sandbox.check_run_id("gh" + "9" * 12)


def test_the_widest_run_id_still_names_a_valid_bucket_in_every_region() -> None:
    """s3.tf names the bucket <project>-<environment>-uploads-<account>-<region>: 63 characters at most."""
    assert (
        '"${local.name_prefix}-uploads-${local.account_id}-${var.aws_region}"'
        in (sandbox.ROOT / "s3.tf").read_text()
    )
    variables = sandbox.variables("gh" + "9" * 11, MOMENT)
    longest_region = "ap-southeast-5"  # 14 characters, as long as any region name today

    bucket = f"{variables['project_name']}-{variables['environment']}-uploads-{'1' * 12}-{longest_region}"

    assert len(bucket) <= 63, bucket
