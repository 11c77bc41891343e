"""lambda_common.naming: the execution names the trigger and the reconcile tool share, re-drives included."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import ModuleType

import pytest

from devkit.lambda_harness import forget_isolated_modules, import_shared

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
BUCKET = "uploads-bucket"


@pytest.fixture
def naming(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``lambda_common.naming``, freshly imported as the handlers import it."""
    yield import_shared(monkeypatch, "naming")
    forget_isolated_modules()


def test_names_are_pinned_because_running_executions_carry_them(naming: ModuleType) -> None:
    # Changing the scheme between two deploys would let a redelivery start a second execution.
    assert (
        naming.execution_name("bucket", "incoming/report.csv", "version-1", "seq")
        == "report_csv-98cc7249b0dc4facab4caab9070e5b6086c955fe"
    )
    assert (
        naming.execution_name("bucket", "incoming/report.csv", None, "0055AED6DCD90281E5")
        == "report_csv-02925c0320a3927e5333e5ebb2a47da7fb5ad9e9"
    )
    assert (
        naming.execution_name("bucket", "incoming/report.csv", "version-1", attempt=2)
        == "report_csv-98cc7249b0dc4facab4caab9070e5b6086c955fe-r2"
    )


def test_redrive_names_are_deterministic_distinct_and_keep_the_objects_digest(naming: ModuleType) -> None:
    names = [naming.execution_name(BUCKET, "report.csv", "v1", attempt=n) for n in range(4)]

    assert names == [naming.execution_name(BUCKET, "report.csv", "v1", attempt=n) for n in range(4)]
    assert len(set(names)) == 4
    assert names[1] == f"{names[0]}-r1"
    assert {naming.parse_execution_name(name).digest for name in names} == {
        naming.object_digest(BUCKET, "report.csv", "v1")
    }
    assert [naming.parse_execution_name(name).attempt for name in names] == [0, 1, 2, 3]


@pytest.mark.parametrize("attempt", [0, 1, 9, 10, 999])
@pytest.mark.parametrize(
    "key",
    [
        pytest.param("report.csv", id="short"),
        pytest.param("x" * 1024, id="1024-ascii-bytes"),
        pytest.param("déjà vu/✓ 😀.txt", id="unicode"),
        pytest.param("---___", id="only-separators"),
    ],
)
def test_redrive_names_fit_step_functions_rules(naming: ModuleType, key: str, attempt: int) -> None:
    name = naming.execution_name("b" * 63, key, "v" * 1024, attempt=attempt)

    assert NAME_PATTERN.fullmatch(name)
    assert naming.parse_execution_name(name) == naming.NameParts(
        digest=naming.object_digest("b" * 63, key, "v" * 1024), attempt=attempt
    )


@pytest.mark.parametrize("attempt", [-1, 1000])
def test_an_attempt_out_of_range_is_refused(naming: ModuleType, attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt must be between 0 and 999"):
        naming.execution_name(BUCKET, "report.csv", "v1", attempt=attempt)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("manual-run", id="no-digest"),
        pytest.param("report-" + "0" * 39, id="short-digest"),
        pytest.param("report-" + "A" * 40, id="upper-case-hex"),
        pytest.param("report-" + "0" * 40 + "-r0", id="attempt-zero-suffix"),
        pytest.param("report-" + "0" * 40 + "-x1", id="other-suffix"),
    ],
)
def test_names_made_elsewhere_are_not_mistaken_for_an_objects(naming: ModuleType, name: str) -> None:
    assert naming.parse_execution_name(name) is None


def test_a_readable_part_that_is_all_hex_does_not_confuse_parsing(naming: ModuleType) -> None:
    key = "f" * 40 + "-r1"
    name = naming.execution_name(BUCKET, key, "v1", attempt=3)

    assert naming.parse_execution_name(name) == naming.NameParts(
        digest=naming.object_digest(BUCKET, key, "v1"), attempt=3
    )


def test_execution_arn_is_built_from_the_state_machine_arn(naming: ModuleType) -> None:
    machine = "arn:aws:states:eu-central-1:123456789012:stateMachine:file-ingestion-dev-ingestion"
    assert (
        naming.execution_arn(machine, "report_csv-abc")
        == "arn:aws:states:eu-central-1:123456789012:execution:file-ingestion-dev-ingestion:report_csv-abc"
    )
    with pytest.raises(ValueError, match="not a state machine ARN"):
        naming.execution_arn("arn:aws:lambda:eu-central-1:123456789012:function:f", "x")
