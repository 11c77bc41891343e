"""The cost-only patches change nothing observable: executions sharing a parsed definition stay independent."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from emulator_helpers import wait_for_execution

from emulator.performance import PATCHES, cacheable, freeze_heap_keys

pytestmark = pytest.mark.emulator

FLAKY = """
def handler(event, context):
    if event.get("fail"):
        raise ConnectionError("temporary failure")
    return {"ok": event["n"]}
"""


def machine(states: dict[str, Any]) -> str:
    return json.dumps({"StartAt": next(iter(states)), "States": states})


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ({"A": {"Type": "Pass", "End": True}}, True),
        ({"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}}, True),
        ({"A": {"Type": "Parallel", "Branches": [], "End": True}}, False),
        ({"A": {"Type": "Map", "ItemProcessor": {"StartAt": "B", "States": {}}, "End": True}}, False),
        (
            {
                "A": {
                    "Type": "Parallel",
                    "Branches": [{"StartAt": "M", "States": {"M": {"Type": "Map", "End": True}}}],
                    "End": True,
                }
            },
            False,
        ),
    ],
)
def test_only_definitions_without_stateful_states_are_cached(states: dict[str, Any], expected: bool) -> None:
    assert cacheable(machine(states)) is expected
    assert cacheable("not json") is False


RETRYING_TASK = {
    "Call": {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload.$": "$"},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}],
        "Next": "Done",
    },
    "Done": {"Type": "Pass", "End": True},
}


def _heap_keys_drawn(program: Any) -> dict[str, bool]:
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    from emulator.performance import _components

    return {
        f"{type(c).__name__}@{id(c)}": c.__dict__.get("_EvalComponent__heap_key") is not None
        for c in _components(program, set())
        if isinstance(c, EvalComponent)
    }


def test_a_shared_program_has_every_heap_key_drawn_before_any_execution_uses_it() -> None:
    """moto draws heap keys lazily; two first executions racing on one would lose a retry count."""
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = machine(RETRYING_TASK)
    fresh = AmazonStateLanguageParser.parse(definition)[0]
    assert not any(_heap_keys_drawn(fresh).values()), "moto now draws heap keys eagerly: revisit the patch"
    assert freeze_heap_keys(fresh) == len(_heap_keys_drawn(fresh)) > 10
    assert all(_heap_keys_drawn(fresh).values())

    (entrypoint_patch,) = [p for p in PATCHES if p.target.endswith("_get_evaluation_entrypoint")]
    get_entrypoint = entrypoint_patch.build(lambda self: AmazonStateLanguageParser.parse(definition)[0])
    worker = SimpleNamespace(
        _evaluation_details=SimpleNamespace(state_machine_details=SimpleNamespace(definition=definition))
    )
    shared = get_entrypoint(worker)
    assert get_entrypoint(worker) is shared
    kinds = {name.split("@")[0] for name in _heap_keys_drawn(shared)}
    assert {"MaxAttemptsDecl", "BackoffRateDecl"} <= kinds
    assert all(_heap_keys_drawn(shared).values())


def test_concurrent_executions_of_one_definition_keep_their_own_retries(
    aws_client: Callable[[str], Any], make_function: Callable[..., str], lambda_role: str
) -> None:
    function_arn = make_function("perf-flaky", {"index.py": FLAKY}, Timeout=10)
    definition = machine(
        {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 2,
                        "BackoffRate": 1.0,
                    }
                ],
                "End": True,
            }
        }
    )
    sfn = aws_client("stepfunctions")
    arn = sfn.create_state_machine(name="perf-shared", definition=definition, roleArn=lambda_role)[
        "stateMachineArn"
    ]
    inputs = [{"n": n, "fail": n % 2 == 1} for n in range(6)]

    def run(payload: dict[str, Any]) -> dict[str, Any]:
        started = sfn.start_execution(
            stateMachineArn=arn, name=f"run-{payload['n']}", input=json.dumps(payload)
        )
        return wait_for_execution(sfn, started["executionArn"], timeout=120)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(run, inputs))

    for payload, result in zip(inputs, results, strict=True):
        history = sfn.get_execution_history(executionArn=result["executionArn"], maxResults=1000)["events"]
        attempts = sum(1 for e in history if e["type"] == "TaskScheduled")
        if payload["fail"]:
            assert (result["status"], attempts) == ("FAILED", 3), payload
        else:
            assert (result["status"], attempts) == ("SUCCEEDED", 1), payload
            assert json.loads(result["output"])["Payload"] == {"ok": payload["n"]}
