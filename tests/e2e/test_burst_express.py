"""The burst proof at scaled quotas in the EXPRESS workflow profile.

The same burst as test_burst.py (every notification delivered twice, one write in ten failing at
first, StartExecution throttled to 20 at once and 5 a second) with 120 files, on a deployment of
its own with ``workflow_type = "EXPRESS"``. Express execution names are not idempotent, so a
notification delivered twice in different batches starts two executions; the writer's conditional
put keeps one row per file. Executions are observed in the state machine's log group, the only
place AWS shows an Express workflow's executions. A module of its own: one embedded emulator per
process, and a module-scoped stack lives until its module ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.test_burst import BURST_VARIABLES, BurstStack, burst, deployed_burst_stack

pytestmark = pytest.mark.e2e

EXPRESS_FILES = 120
# Seven writer attempts must fit in an Express execution's 5 minutes (terraform's precondition):
# 7 x (10 + 10) s + 63 s of backoff + 10 s = 213 s; the writer answers in milliseconds here.
EXPRESS_VARIABLES = {**BURST_VARIABLES, "workflow_type": "EXPRESS", "writer_lambda_timeout": 10}


@pytest.fixture(scope="module")
def express_burst_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurstStack]:
    yield from deployed_burst_stack(tmp_path_factory, "burst-express", EXPRESS_VARIABLES)


def test_an_express_burst_with_duplicates_and_faults_becomes_one_row_per_file_without_an_operator(
    express_burst_stack: BurstStack, record_property: Callable[[str, object], None]
) -> None:
    """EXPRESS: names are not idempotent, so a notification delivered twice in different batches
    starts two executions; the writer's conditional put keeps one row per file."""
    stack, pipeline = express_burst_stack, express_burst_stack.pipeline
    assert pipeline.express

    counted = burst(stack, EXPRESS_FILES, "express")

    assert counted["received"] >= 2 * EXPRESS_FILES, "every notification was delivered (and received) twice"
    assert counted["write_faults"] >= EXPRESS_FILES * 0.05, "about one write in ten failed at first"
    assert counted["throttled"] > 0, "StartExecution was throttled: the quota was the bottleneck"
    rows = stack.rows_by_key("express/")
    assert sorted(rows) == [f"express/{i:04d}.csv" for i in range(EXPRESS_FILES)], "every file has a row"
    assert set(rows.values()) == {1}, "no file has two"
    executions = pipeline.executions()
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    assert len(executions) >= EXPRESS_FILES
    assert pipeline.alerts(wait_seconds=2) == [], "no alert of any kind: nothing needed a human"
    assert pipeline.dead_letters() == []
    audit = stack.reconcile()
    assert (audit.missing, audit.in_flight, audit.ingested) == (0, 0, EXPRESS_FILES)
    record_property("executions_per_file", round(len(executions) / EXPRESS_FILES, 2))
    record_property("throttled_starts", counted["throttled"])
