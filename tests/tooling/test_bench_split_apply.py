"""The split/inline apply figure of `make bench` (benchmarks/split_apply.py, issue #15): the inline
variant has the split resources' settings and nothing else changes; the medians, the ratio and its
upper-bound goal are reported as measured. No terraform runs here (the variant's `terraform validate`
and apply are what `python -m benchmarks.system --only-split-apply` does)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import pytest

from benchmarks import goals, split_apply, system

ROOT = Path(__file__).resolve().parents[2]
S3_TF = (ROOT / "s3.tf").read_text()
SPLIT_TYPES = tuple(split_apply.INLINE_BLOCK)


def resources(text: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {key: split_apply.fields(body) for key, body in split_apply.parsed_resources(text).items()}


def bodies(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """python-hcl2 blocks without their markers, recursively."""
    return [
        {
            key: bodies(value) if split_apply._is_blocks(value) else value
            for key, value in split_apply.fields(block).items()
        }
        for block in blocks
    ]


@pytest.fixture(scope="module")
def variant() -> dict[tuple[str, str], dict[str, Any]]:
    return resources(split_apply.inline_variant(S3_TF))


def test_the_variant_has_no_split_resource_and_parses(variant: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert [key for key in variant if key[0] in SPLIT_TYPES] == []
    assert {key for key in resources(S3_TF) if key[0] in SPLIT_TYPES} == {
        (type_name, "uploads") for type_name in SPLIT_TYPES
    }, "s3.tf has the three split resources the variant folds"


def test_the_variant_leaves_every_other_resource_as_it_is(
    variant: dict[tuple[str, str], dict[str, Any]],
) -> None:
    original = resources(S3_TF)
    kept = {key: body for key, body in original.items() if key[0] not in SPLIT_TYPES}
    assert set(variant) == set(kept)
    assert {k: v for k, v in variant.items() if k != ("aws_s3_bucket", "uploads")} == {
        k: v for k, v in kept.items() if k != ("aws_s3_bucket", "uploads")
    }
    bucket = variant[("aws_s3_bucket", "uploads")]
    assert {
        k: v
        for k, v in bucket.items()
        if k not in {"versioning", "server_side_encryption_configuration", "lifecycle_rule"}
    } == kept[("aws_s3_bucket", "uploads")]
    assert hcl2.loads(split_apply.inline_variant(S3_TF))["data"] == hcl2.loads(S3_TF)["data"]


def test_versioning_and_encryption_are_inline_with_the_same_settings(
    variant: dict[tuple[str, str], dict[str, Any]],
) -> None:
    bucket = variant[("aws_s3_bucket", "uploads")]
    split = resources(S3_TF)

    assert bodies(bucket["versioning"]) == [{"enabled": True}]
    assert bodies(split[("aws_s3_bucket_versioning", "uploads")]["versioning_configuration"]) == [
        {"status": '"Enabled"'}
    ]
    [encryption] = bodies(bucket["server_side_encryption_configuration"])
    assert encryption == {
        "rule": [
            {
                "apply_server_side_encryption_by_default": [
                    {"sse_algorithm": '"aws:kms"', "kms_master_key_id": "${aws_kms_key.s3.arn}"}
                ],
                "bucket_key_enabled": True,
            }
        ]
    }
    assert encryption["rule"] == bodies(
        split[("aws_s3_bucket_server_side_encryption_configuration", "uploads")]["rule"]
    )


def test_the_lifecycle_rules_are_inline_with_the_same_settings(
    variant: dict[tuple[str, str], dict[str, Any]],
) -> None:
    assert bodies(variant[("aws_s3_bucket", "uploads")]["lifecycle_rule"]) == [
        {
            "id": '"expire-objects"',
            "enabled": True,
            "abort_incomplete_multipart_upload_days": 7,
            "expiration": [{"days": "${var.object_expiration_days}"}],
            "noncurrent_version_expiration": [{"days": "${var.noncurrent_version_expiration_days}"}],
        },
        {
            "id": '"remove-expired-delete-markers"',
            "enabled": True,
            "expiration": [{"expired_object_delete_marker": True}],
        },
    ]


def test_references_to_a_split_resource_become_references_to_the_bucket() -> None:
    text = split_apply.inline_variant(S3_TF)
    assert "aws_s3_bucket_versioning" not in text
    assert "aws_s3_bucket_lifecycle_configuration" not in text
    other = 'resource "aws_sqs_queue" "q" {\n  depends_on = [aws_s3_bucket_versioning.uploads]\n}\n'
    assert split_apply.variant_files({"s3.tf": S3_TF, "other.tf": other, "same.tf": "locals {}\n"}) == {
        "s3.tf": text,
        "other.tf": other.replace("aws_s3_bucket_versioning.uploads", "aws_s3_bucket.uploads"),
    }


@pytest.mark.parametrize(
    ("replace", "by", "refused"),
    [
        (
            "filter {}\n\n    expiration {\n      days",
            'filter {\n      prefix = "in/"\n    }\n\n    expiration {\n      days',
            "only an empty filter",
        ),
        (
            "abort_incomplete_multipart_upload {",
            'transition {\n      days = 30\n      storage_class = "GLACIER"\n    }\n\n    abort_incomplete_multipart_upload {',
            "transition",
        ),
        (
            'status = "Enabled"\n  }\n}',
            'status = "Enabled"\n    mfa_delete = "Disabled"\n  }\n}',
            "mfa_delete",
        ),
        (
            "depends_on = [aws_s3_bucket_versioning.uploads]",
            "depends_on = [aws_kms_key.s3]",
            "aws_kms_key.s3",
        ),
    ],
)
def test_a_setting_without_an_inline_form_here_is_refused(replace: str, by: str, refused: str) -> None:
    assert S3_TF.count(replace) == 1
    with pytest.raises(split_apply.VariantError, match=refused):
        split_apply.inline_variant(S3_TF.replace(replace, by))


def test_block_end_skips_braces_in_strings_interpolations_and_comments() -> None:
    text = 'x {\n  a = "}${ {"b" = "}"}["b"] }"  # }\n  // }\n  /* } */\n  b {}\n}\ntail'
    assert text[split_apply.block_end(text, 2) :] == "\ntail"
    with pytest.raises(split_apply.VariantError, match="no closing brace"):
        split_apply.block_end("x { y {", 2)


def test_the_variant_is_written_beside_the_links_never_through_them(tmp_path: Path) -> None:
    root, staged = tmp_path / "root", tmp_path / "staged"
    root.mkdir()
    staged.mkdir()
    (root / "s3.tf").write_text("original\n")
    (staged / "s3.tf").symlink_to(root / "s3.tf")

    split_apply.write_variant(staged, {"s3.tf": "variant\n"})

    assert (root / "s3.tf").read_text() == "original\n"
    assert not (staged / "s3.tf").is_symlink()
    assert (staged / "s3.tf").read_text() == "variant\n"


def hook(kind: str, address: str, at: str) -> str:
    return json.dumps(
        {
            "@timestamp": f"2026-12-07T03:30:{at}Z",
            "type": kind,
            "hook": {"resource": {"addr": address}, "action": "create"},
        }
    )


STDOUT = "\n".join(
    [
        '{"@timestamp": "2026-12-07T03:30:00.100000Z", "type": "version"}',
        hook("apply_start", "data.aws_iam_policy_document.kms_s3", "01.000000"),
        hook("apply_complete", "data.aws_iam_policy_document.kms_s3", "01.000000"),
        hook("apply_start", "aws_kms_key.s3", "02.000000"),
        hook("apply_start", "aws_kms_key.sqs", "02.000000"),
        hook("apply_complete", "aws_kms_key.s3", "08.000000"),
        hook("apply_start", "aws_s3_bucket.uploads", "08.200000"),
        hook("apply_complete", "aws_kms_key.sqs", "14.000000"),
        hook("apply_start", "aws_sqs_queue.uploads", "14.300000"),
        hook("apply_start", 'aws_cloudwatch_metric_alarm.queue["age"]', "14.300000"),
        hook("apply_complete", "aws_s3_bucket.uploads", "20.000000"),
        hook("apply_complete", 'aws_cloudwatch_metric_alarm.queue["age"]', "39.500000"),
        hook("apply_complete", "aws_sqs_queue.uploads", "39.500000"),
        hook("apply_start", "aws_s3_bucket_notification.uploads", "39.500000"),
        hook("apply_complete", "aws_s3_bucket_notification.uploads", "39.500000"),
        "not json",
    ]
)
STATE = {
    "resources": [
        {"mode": "data", "type": "aws_iam_policy_document", "name": "kms_s3", "instances": [{}]},
        {
            "mode": "managed",
            "type": "aws_kms_key",
            "name": "s3",
            "instances": [{"dependencies": ["data.aws_iam_policy_document.kms_s3"]}],
        },
        {"mode": "managed", "type": "aws_kms_key", "name": "sqs", "instances": [{}]},
        {
            "mode": "managed",
            "type": "aws_s3_bucket",
            "name": "uploads",
            "instances": [{"dependencies": ["aws_kms_key.s3", "data.aws_iam_policy_document.kms_s3"]}],
        },
        {
            "mode": "managed",
            "type": "aws_sqs_queue",
            "name": "uploads",
            "instances": [{"dependencies": ["aws_kms_key.sqs"]}],
        },
        {
            "mode": "managed",
            "type": "aws_cloudwatch_metric_alarm",
            "name": "queue",
            "instances": [{"index_key": "age", "dependencies": ["aws_sqs_queue.uploads"]}],
        },
        {
            "mode": "managed",
            "type": "aws_s3_bucket_notification",
            "name": "uploads",
            "instances": [
                {
                    "dependencies": [
                        "aws_kms_key.s3",
                        "aws_kms_key.sqs",
                        "aws_s3_bucket.uploads",
                        "aws_sqs_queue.uploads",
                    ]
                }
            ],
        },
    ]
}


def test_the_timeline_of_an_apply() -> None:
    timeline = split_apply.apply_timeline(STDOUT, split_apply._epoch("2026-12-07T03:30:00Z"))

    assert [(e["resource"], e["start"], e["end"], e["seconds"]) for e in timeline] == [
        ("data.aws_iam_policy_document.kms_s3", 1.0, 1.0, 0.0),
        ("aws_kms_key.s3", 2.0, 8.0, 6.0),
        ("aws_kms_key.sqs", 2.0, 14.0, 12.0),
        ("aws_s3_bucket.uploads", 8.2, 20.0, 11.8),
        ('aws_cloudwatch_metric_alarm.queue["age"]', 14.3, 39.5, 25.2),
        ("aws_sqs_queue.uploads", 14.3, 39.5, 25.2),
        ("aws_s3_bucket_notification.uploads", 39.5, 39.5, 0.0),
    ]


def test_the_chain_that_ended_the_apply_follows_the_recorded_dependencies() -> None:
    timeline = split_apply.apply_timeline(STDOUT, split_apply._epoch("2026-12-07T03:30:00Z"))
    dependencies = split_apply.state_dependencies(STATE)

    assert dependencies["aws_cloudwatch_metric_alarm.queue"] == {"aws_sqs_queue.uploads"}
    assert "data.aws_iam_policy_document.kms_s3" not in dependencies
    # The notification ended last (with the alarm and the queue, but it started after them); of
    # what it needs, the queue ended last, and the queue waited for the SQS key, which waited for
    # nothing: the bucket (ended at 20 s) was not on the way.
    assert [e["resource"] for e in split_apply.critical_path(timeline, dependencies)] == [
        "aws_kms_key.sqs",
        "aws_sqs_queue.uploads",
        "aws_s3_bucket_notification.uploads",
    ]
    assert split_apply.critical_path([], dependencies) == []


def run(variant: str, seconds: float) -> dict[str, Any]:
    return {"variant": variant, "apply_seconds": seconds, "critical_path": []}


def test_the_applies_interleave_and_the_ratio_is_of_the_medians() -> None:
    assert split_apply.interleaved(3) == ["split", "inline"] * 3
    runs = [
        run("split", 97.0),
        run("inline", 94.0),
        run("split", 99.5),
        run("inline", 60.0),
        run("split", 96.1),
        run("inline", 95.2),
    ]

    assert split_apply.summarise(runs) == {
        "apply_seconds_split": 97.0,
        "apply_seconds_inline": 94.0,
        "apply_split_over_inline": 1.032,
    }


@pytest.mark.parametrize(
    ("ratio", "met", "text"),
    [
        (1.032, True, "goal <= 1.1: met"),
        (1.1, True, "goal <= 1.1: met"),
        (1.79, False, "goal <= 1.1: NOT met"),
        (None, None, "goal <= 1.1: not measured"),
    ],
)
def test_the_ratio_has_an_upper_bound_goal(ratio: float | None, met: bool | None, text: str) -> None:
    reported = goals.goal("apply_split_over_inline", ratio)

    assert reported == {"at_most": 1.1, "met": met}
    assert goals.goal_text(reported) == text


def test_the_lower_bound_goals_are_reported_as_before() -> None:
    assert goals.goal("quota_utilisation", 0.962) == {"at_least": 0.9, "met": True}
    assert goals.goal("burst_files_per_s_warm", 20.0) == {"at_least": 25.0, "met": False}
    assert goals.goal_text(goals.goal("burst_files_per_s_warm", 27.2)) == "goal >= 25: met"


def test_the_table_of_a_split_apply_run_alone() -> None:
    runs = [run("split", 97.0), run("inline", 94.0)]
    runs[0]["critical_path"] = [{"resource": "aws_sqs_queue.uploads", "start": 14.3, "end": 39.5}]
    measured = {"provider": "5.100.0", "runs_per_variant": 1, **split_apply.summarise(runs), "runs": runs}
    figures = {
        "provider": "5.100.0",
        "apply_split_over_inline": measured["apply_split_over_inline"],
        "goals": {"apply_split_over_inline": goals.goal("apply_split_over_inline", 1.032)},
        "split_apply": measured,
        "load_average_at_start": [0.1, 0.2, 0.3],
        "load_average_at_end": [1.0, 0.5, 0.4],
    }

    lines = system.table(figures).splitlines()

    assert (
        lines[1]
        == "  hashicorp/aws 5.100.0; load average [0.1, 0.2, 0.3] at the start, [1.0, 0.5, 0.4] at the end"
    )
    assert lines[3:] == [
        "    split   97 s, median 97 s",
        "    inline  94 s, median 94 s",
        "    apply_split_over_inline 1.032  (goal <= 1.1: met)",
        "    ended by (split, last run): aws_sqs_queue.uploads 14.3-39.5 s",
        "    ended by (inline, last run): no timeline",
    ]
