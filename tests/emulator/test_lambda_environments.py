"""Warm execution environments: reused like Lambda's, started up to the function's concurrency.

The probe function reports its process id and a module-level counter, and logs through Powertools
(whose ``cold_start`` field is how users see reuse), so each test observes what a handler would.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import zip_bytes

from emulator import Emulator
from emulator.lambda_runtime import RuntimeSettings

pytestmark = pytest.mark.emulator

PROBE = """
import os
import time

from aws_lambda_powertools import Logger

logger = Logger(service="env-probe")
INVOCATIONS = 0
CODE = "v1"


@logger.inject_lambda_context
def handler(event, context):
    global INVOCATIONS
    INVOCATIONS += 1
    logger.info("probe")
    action = event.get("action")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(2)
    return {
        "pid": os.getpid(),
        "invocations": INVOCATIONS,
        "greeting": os.environ.get("GREETING"),
        "code": CODE,
    }
"""


DEFAULT_PER_FUNCTION = 8  # the cap emulator/README.md documents


@pytest.fixture(scope="module")
def probe(make_function: Callable[..., str]) -> str:
    return make_function(
        "env-probe", {"index.py": PROBE}, Timeout=2, Environment={"Variables": {"GREETING": "v1"}}
    )


@pytest.fixture
def lam(aws_client: Callable[[str], Any], emulator: Emulator, probe: str) -> Iterator[Any]:
    """The Lambda client, with the probe's environments stopped and settings restored afterwards."""
    yield aws_client("lambda")
    emulator.configure_lambda(warm=True, idle_timeout=120.0, max_per_function=DEFAULT_PER_FUNCTION)
    aws_client("lambda").delete_function_concurrency(FunctionName="env-probe")
    assert emulator.runner is not None
    emulator.runner.pool.stop_idle()


def call(lam: Any, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    response = lam.invoke(
        FunctionName="env-probe", Payload=json.dumps(payload or {}).encode(), LogType="Tail"
    )
    return json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


def cold_start_flags(log: str) -> list[bool]:
    return [
        json.loads(line)["cold_start"]
        for line in log.splitlines()
        if line.startswith("{") and "cold_start" in line
    ]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_environment_is_reused_with_its_module_state(lam: Any) -> None:
    first, first_log = call(lam)
    second, second_log = call(lam)

    assert second["pid"] == first["pid"]
    assert (first["invocations"], second["invocations"]) == (1, 2)
    assert cold_start_flags(first_log) == [True]
    assert cold_start_flags(second_log) == [False]
    assert "Init Duration" in first_log
    assert "Init Duration" not in second_log


def test_concurrent_invocations_get_environments_of_their_own(lam: Any, emulator: Emulator) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _i: call(lam, {"action": "sleep", "seconds": 0.8})[0], range(4)))
    pids = {r["pid"] for r in results}
    assert len(pids) == 4
    stats = emulator.lambda_stats()
    assert stats["idle_environments"] >= 4
    assert set(stats["pids"]) >= pids
    again = {call(lam)[0]["pid"] for _ in range(4)}  # sequential calls reuse the idle ones
    assert again <= pids


def test_one_function_gets_at_most_its_cap_of_environments_and_more_invocations_wait(
    lam: Any, emulator: Emulator
) -> None:
    assert RuntimeSettings.__dataclass_fields__["max_per_function"].default == DEFAULT_PER_FUNCTION
    assert emulator.lambda_stats()["max_per_function"] == DEFAULT_PER_FUNCTION
    emulator.configure_lambda(max_per_function=2)  # 3 invocations stand for the 9th beyond 8
    assert emulator.lambda_stats()["max_per_function"] == 2

    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _i: call(lam, {"action": "sleep", "seconds": 1.0})[0], range(3)))
    elapsed = time.monotonic() - started

    assert len({r["pid"] for r in results}) == 2, "the third waited for an environment, not a new one"
    assert sorted(r["invocations"] for r in results) == [1, 1, 2]  # ...and ran warm in one of them
    assert elapsed >= 2.0, "two rounds of a 1 s invocation"


def test_reserved_concurrency_throttles_like_lambda(lam: Any, emulator: Emulator) -> None:
    import boto3
    from botocore.config import Config

    no_retries = boto3.client(
        "lambda",
        endpoint_url=emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),  # botocore retries a 429 by itself
    )
    lam.put_function_concurrency(FunctionName="env-probe", ReservedConcurrentExecutions=1)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(call, lam, {"action": "sleep", "seconds": 1.0})
        time.sleep(0.3)
        with pytest.raises(ClientError) as throttled:
            call(no_retries)
        assert slow.result()[0]["pid"]
    error = throttled.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert emulator.lambda_stats()["throttled"] >= 1


def test_queued_events_beyond_reserved_concurrency_wait_instead_of_failing(
    lam: Any, emulator: Emulator
) -> None:
    lam.put_function_concurrency(FunctionName="env-probe", ReservedConcurrentExecutions=1)
    payload = json.dumps({"action": "sleep", "seconds": 0.3}).encode()
    for _ in range(3):
        assert (
            lam.invoke(FunctionName="env-probe", InvocationType="Event", Payload=payload)["StatusCode"] == 202
        )
    assert emulator.wait_for_async_invocations(30)
    outcomes = [c for c in emulator.lambda_stats()["async_completed"] if c["function"] == "env-probe"][-3:]
    assert [c["condition"] for c in outcomes] == ["Success"] * 3
    assert sum(c["throttles"] for c in outcomes) >= 1  # throttled attempts were queued again, not failed


def test_a_configuration_update_retires_the_old_environments(lam: Any) -> None:
    before, _ = call(lam)
    lam.update_function_configuration(FunctionName="env-probe", Environment={"Variables": {"GREETING": "v2"}})
    after, log = call(lam)
    lam.update_function_configuration(FunctionName="env-probe", Environment={"Variables": {"GREETING": "v1"}})

    assert after["greeting"] == "v2"
    assert after["pid"] != before["pid"]
    assert cold_start_flags(log) == [True]
    assert not alive(before["pid"])


def test_timed_out_and_crashed_environments_are_discarded(lam: Any, emulator: Emulator) -> None:
    warm, _ = call(lam)
    timed_out, _ = call(lam, {"action": "sleep", "seconds": 5})
    assert timed_out["errorType"] == "Sandbox.Timedout"
    after_timeout, _ = call(lam)
    assert after_timeout["pid"] != warm["pid"]
    assert not alive(warm["pid"])

    crashed, _ = call(lam, {"action": "exit"})  # in the environment after_timeout ran in
    assert crashed["errorType"] == "Runtime.ExitError"
    after_crash, _ = call(lam)
    assert after_crash["pid"] != after_timeout["pid"]
    assert not alive(after_timeout["pid"])
    assert after_timeout["pid"] not in emulator.lambda_stats()["pids"]


def test_a_code_update_retires_the_old_environment(lam: Any, emulator: Emulator) -> None:
    before, _ = call(lam)
    assert before["code"] == "v1"
    lam.update_function_code(
        FunctionName="env-probe", ZipFile=zip_bytes({"index.py": PROBE.replace('CODE = "v1"', 'CODE = "v2"')})
    )
    try:
        after, log = call(lam)
    finally:
        lam.update_function_code(FunctionName="env-probe", ZipFile=zip_bytes({"index.py": PROBE}))

    assert after["code"] == "v2"
    assert after["pid"] != before["pid"]
    assert after["invocations"] == 1
    assert cold_start_flags(log) == [True]
    assert not alive(before["pid"])
    assert before["pid"] not in emulator.lambda_stats()["pids"]


def test_idle_environments_are_reaped(lam: Any, emulator: Emulator) -> None:
    pid = call(lam)[0]["pid"]
    emulator.configure_lambda(idle_timeout=0.5)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid)
    assert pid not in emulator.lambda_stats()["pids"]


def test_the_cold_switch_runs_a_process_per_invocation(lam: Any, emulator: Emulator) -> None:
    emulator.configure_lambda(warm=False)
    results = [call(lam) for _ in range(3)]
    assert len({r[0]["pid"] for r in results}) == 3
    assert all(cold_start_flags(log) == [True] for _, log in results)
    assert emulator.lambda_stats()["idle_environments"] == 0
    assert not any(alive(r[0]["pid"]) for r in results)
