"""Step Functions API actions the hashicorp/aws provider needs and moto 5.2.5 lacks.

moto dispatches an AWS-JSON request by its ``X-Amz-Target`` (``AWSStepFunctions.<Action>``): the action
name is converted to snake case and looked up as a method of ``StepFunctionResponse``
(``BaseResponse.call_action``); a missing method is a ``NotImplementedError`` -> HTTP 500, which the
provider retries for minutes. Added here:

* ``ValidateStateMachineDefinition`` (provider 5.67+ calls it at plan time): parsed with moto's ASL
  parser and static analysers, ``{"result": "OK"|"FAIL", "diagnostics": [...], "truncated": false}``.
* ``ListStateMachineVersions`` (called after create/read): the versions moto keeps for ``publish``.
* ``DescribeStateMachine`` additionally returns ``revisionId`` (AWS always does; moto omits it).

Execution fixes: service integrations (``lambda:invoke``, ``sns:publish``) call back into the
emulator's own endpoint (moto builds ``http://localhost:$MOTO_PORT``), and ``StartExecution``
without a ``name`` gets a UUID (moto names such an execution ``None``, so a second one fails with
``ExecutionAlreadyExists``).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from types import SimpleNamespace
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions.responses import StepFunctionResponse

from emulator.context import active
from emulator.patch import Patch


def validate_definition(definition: str, machine_type: str = "STANDARD") -> dict[str, Any]:
    """Validate an ASL definition the way ``ValidateStateMachineDefinition`` reports it."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException
    from moto.stepfunctions.parser.asl.static_analyser.express_static_analyser import (
        ExpressStaticAnalyser,
    )
    from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

    analyser = ExpressStaticAnalyser() if machine_type == "EXPRESS" else StaticAnalyser()
    try:
        analyser.analyse(definition)
    except ASLParserException as exc:
        message = repr(exc)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a FAIL diagnostic for the caller
        message = f"Error={type(exc).__name__} Args={list(exc.args)}"
    else:
        return {"result": "OK", "diagnostics": [], "truncated": False}
    return {
        "result": "FAIL",
        "diagnostics": [{"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": message}],
        "truncated": False,
    }


def _validate_state_machine_definition(self: StepFunctionResponse) -> ActionResult:
    definition = self._get_param("definition") or ""
    machine_type = self._get_param("type") or "STANDARD"
    return ActionResult(validate_definition(definition, machine_type))


def _list_state_machine_versions(self: StepFunctionResponse) -> ActionResult:
    arn = self._get_param("stateMachineArn")
    state_machine = self.stepfunction_backend.describe_state_machine(arn)
    versions = sorted(
        getattr(state_machine, "versions", {}).items(), key=lambda item: int(item[0]), reverse=True
    )
    return ActionResult(
        {
            "stateMachineVersions": [
                {"stateMachineVersionArn": version.arn, "creationDate": version.creation_date}
                for _, version in versions
            ]
        }
    )


def _revision_id(state_machine: Any) -> str:
    basis = f"{state_machine.arn}|{state_machine.definition}|{state_machine.roleArn}"
    digest = hashlib.sha256(basis.encode("utf-8")).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _describe_state_machine(original: Any) -> Any:
    def describe(self: StepFunctionResponse, state_machine_arn: str) -> ActionResult:
        result = original(self, state_machine_arn)
        body = getattr(result, "result", None)
        if isinstance(body, dict):
            state_machine = self.stepfunction_backend.describe_state_machine(state_machine_arn)
            body.setdefault("revisionId", _revision_id(state_machine))
        return result

    return describe


def _boto3_for_integrations(real_boto3: Any) -> Any:
    """A ``boto3`` stand-in whose clients call the emulator, created once per service and region.

    moto builds a new client for every task of every execution; creating one costs tens of
    milliseconds of CPU, which dominated a burst of executions. The clients are thread-safe.
    """
    cache: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def client(*args: Any, **kwargs: Any) -> Any:
        kwargs["endpoint_url"] = active().endpoint_url
        service = str(kwargs.get("service_name") or (args[0] if args else ""))
        key = (service, str(kwargs.get("region_name")), kwargs["endpoint_url"])
        with lock:
            if key not in cache:
                cache[key] = real_boto3.client(*args, **kwargs)
            return cache[key]

    return SimpleNamespace(client=client)


def _start_execution(original: Any) -> Any:
    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    return start_execution


_MISSING = "moto 5.2.5 lacks this action (HTTP 500), and hashicorp/aws 5.67+ retries it for minutes"

PATCHES = [
    Patch(
        "moto.stepfunctions.responses.StepFunctionResponse.validate_state_machine_definition",
        _MISSING,
        lambda _none: _validate_state_machine_definition,
        "add",
    ),
    Patch(
        "moto.stepfunctions.responses.StepFunctionResponse.list_state_machine_versions",
        _MISSING,
        lambda _none: _list_state_machine_versions,
        "add",
    ),
    Patch(
        "moto.stepfunctions.responses.StepFunctionResponse._describe_state_machine",
        "moto omits revisionId, which AWS always returns",
        _describe_state_machine,
    ),
    Patch(
        "moto.stepfunctions.parser.asl.utils.boto_client.boto3",
        "moto's service integrations call http://localhost:$MOTO_PORT; the emulator binds 127.0.0.1"
        " on its own port",
        _boto3_for_integrations,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution",
        "moto names an execution started without a name 'None', so the next one already exists",
        _start_execution,
    ),
]
