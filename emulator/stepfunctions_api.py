"""Step Functions: API actions the hashicorp/aws provider needs and moto 5.2.5 lacks, EXPRESS state
machines and execution logs as AWS has them.

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

EXPRESS state machines (moto stores ``type`` but hard-codes ``sm_type = "STANDARD"`` and runs every
execution as a Standard one):

* ``StateMachineInstance.__init__``: ``sm_type`` follows ``type``, so an EXPRESS machine's (and its
  versions') executions run with ``execution_type`` EXPRESS in moto's interpreter.
* ``StartExecution`` on an EXPRESS machine returns AWS's express execution ARN
  ``arn:<partition>:states:<region>:<account>:express:<machine name>:<execution name>:<uuid>``
  (IAM Service Authorization Reference, resource type ``express``:
  ``arn:${Partition}:states:${Region}:${Account}:express:${StateMachineName}:${ExecutionId}:${ExpressId}``)
  and is not idempotent ("StartExecution isn't idempotent for EXPRESS workflows", StartExecution API
  reference): the same name, even with the same input, starts another execution, each of which runs
  to completion (Express is at-least-once; exactly-once is the caller's business). Standard keeps
  moto's behaviour: the same name and input while it runs returns that execution, otherwise
  ``ExecutionAlreadyExists``.
* ``ListExecutions`` of an EXPRESS machine: HTTP 400 ``StateMachineTypeNotSupported`` "This operation
  is not supported by this type of state machine" (botocore's model lists the error for
  ListExecutions; the message as AWS answers it, recorded in LocalStack's AWS-validated snapshot
  ``tests/aws/services/stepfunctions/v2/test_sfn_api_express.snapshot.json``).
* ``DescribeExecution``, ``GetExecutionHistory``, ``StopExecution`` of an express execution ARN: HTTP
  400 ``InvalidArn`` "Invalid Arn: 'Resource type not valid in this context: express'". The API
  reference only says these actions do not support EXPRESS executions (DescribeExecution: "unless a
  Map Run dispatched them"; that exception is not modelled) and lists no dedicated error; the code
  and message are what AWS answered in that same snapshot. What AWS answers for an express ARN that
  names no execution is not recorded: the emulator checks the ARN's resource type before any
  lookup, so such an ARN gets the same InvalidArn.
* The executions stay in their machine's ``executions``, so ``SendTask*`` finds their callbacks and
  :func:`running_executions` counts them with the Standard ones (the emulator's ``wait_until_idle``
  counts neither type today).

Execution logging (both types; see :mod:`emulator.stepfunctions_logging`): moto passes no logging
session, so ``loggingConfiguration`` wrote nothing. Each execution now writes its history events,
filtered by ``level``, without input/output unless ``includeExecutionData``, in AWS's record format
to the destination log group; CreateStateMachine/UpdateStateMachine with logging write AWS's
validation stream into the group.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import threading
import uuid
from types import SimpleNamespace
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import InvalidArn
from moto.stepfunctions.responses import StepFunctionResponse

from emulator import stepfunctions_logging
from emulator.context import active
from emulator.patch import Patch

EXPRESS = "EXPRESS"


class StateMachineTypeNotSupported(AWSError):
    TYPE = "StateMachineTypeNotSupported"
    STATUS = 400


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


def _state_machine_init(original: Any) -> Any:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.sm_type = self.type  # moto: always "STANDARD", whatever the machine's type

    return init


def express_execution_arn(backend: Any, machine_name: str, execution_name: str) -> str:
    """AWS's ARN of an express execution: a UUID after the name, so names need not be unique."""
    return (
        f"arn:{backend.partition}:states:{backend.region_name}:{backend.account_id}:express:"
        f"{machine_name}:{execution_name}:{uuid.uuid4()}"
    )


def _execution_input(execution_input: Any) -> str:
    from moto.stepfunctions.parser.api import InvalidExecutionInput

    if execution_input is None:
        return "{}"
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise InvalidExecutionInput(str(exc)) from exc
    return str(execution_input)


def _snapshot(state_machine: Any) -> Any:
    # moto's snapshot of the definition for one execution: without the executions (live worker
    # threads and locks) and sharing the backend (https://github.com/getmoto/moto/issues/10077)
    memo: dict[int, Any] = {id(state_machine.executions): []}
    backend = getattr(state_machine, "backend", None)  # a version has none
    if backend is not None:
        memo[id(backend)] = backend
    return copy.deepcopy(state_machine, memo)


def _start_execution(_original: Any) -> Any:
    """moto's ``StepFunctionsParserBackend.start_execution``, with a name when none is given, the
    express ARN and no idempotency for EXPRESS machines, and a CloudWatch logging session."""

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        trace_header: Any = None,
    ) -> Any:
        from moto.stepfunctions.parser.backend.execution import Execution

        state_machine = self.describe_state_machine(state_machine_arn)
        name = name or str(uuid.uuid4())
        express = state_machine.type == EXPRESS
        if not express:
            existing = state_machine._handle_name_input_idempotency(name, execution_input)
            if existing is not None:
                return existing
        clone = _snapshot(state_machine)
        input_data = _execution_input(execution_input)
        if express:
            arn = express_execution_arn(self, state_machine.name, name)
        else:
            arn = f"arn:{self.partition}:states:{self.region_name}:{self.account_id}:execution:{state_machine.name}:{name}"
        started = datetime.datetime.now(tz=datetime.UTC)
        execution = Execution(
            name=name,
            sm_type=clone.sm_type,
            role_arn=clone.roleArn,
            exec_arn=arn,
            account_id=self.account_id,
            region_name=self.region_name,
            state_machine=clone,
            start_date=started,
            cloud_watch_logging_session=stepfunctions_logging.session_for(state_machine, arn, started),
            input_data=input_data,
            trace_header=trace_header,
            activity_store={},
        )
        state_machine.executions.append(execution)
        execution.start()
        return execution

    return start_execution


def _is_express_arn(execution_arn: Any) -> bool:
    parts = str(execution_arn or "").split(":")
    return len(parts) > 5 and parts[2] == "states" and parts[5] == "express"


def _reject_express_execution(original: Any) -> Any:
    """DescribeExecution, GetExecutionHistory, StopExecution: not for express executions."""

    def action(self: Any, execution_arn: str, *args: Any, **kwargs: Any) -> Any:
        if _is_express_arn(execution_arn):
            raise InvalidArn("Invalid Arn: 'Resource type not valid in this context: express'")
        return original(self, execution_arn, *args, **kwargs)

    return action


def _list_executions(original: Any) -> Any:
    def list_executions(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        if self.describe_state_machine(state_machine_arn).type == EXPRESS:
            raise StateMachineTypeNotSupported(
                "This operation is not supported by this type of state machine"
            )
        return original(self, state_machine_arn, *args, **kwargs)

    return list_executions


def _writes_validation_stream(original: Any) -> Any:
    """CreateStateMachine/UpdateStateMachine: the empty stream AWS writes to a configured group."""

    def action(self: Any, *args: Any, **kwargs: Any) -> Any:
        state_machine = original(self, *args, **kwargs)
        stepfunctions_logging.write_validation_stream(state_machine)
        return state_machine

    return action


def running_executions() -> int:
    """Executions of every type still RUNNING in any account and region (moto's parser backends);
    those started through a version ARN are kept by the version."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    running = 0
    for regions in list(stepfunctions_parser_backends.values()):
        for backend in list(regions.values()):
            for machine in list(backend.state_machines):
                for instance in [machine, *list(getattr(machine, "versions", {}).values())]:
                    # exec_status is None for the instant between appending an execution and starting it
                    statuses = [getattr(e, "exec_status", None) for e in list(instance.executions)]
                    running += sum(1 for status in statuses if getattr(status, "value", status) == "RUNNING")
    return running


_MISSING = "moto 5.2.5 lacks this action (HTTP 500), and hashicorp/aws 5.67+ retries it for minutes"
_EXPRESS_ARN = (
    "moto serves express executions like Standard ones; AWS answers InvalidArn 'Resource type not valid"
    " in this context: express'"
)
_VALIDATION_STREAM = (
    "moto writes nothing to the log group of a loggingConfiguration; Step Functions writes its empty"
    " log-delivery validation stream there"
)

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
        "moto.stepfunctions.models.StateMachineInstance.__init__",
        "moto hard-codes sm_type 'STANDARD' whatever the type, so EXPRESS machines run as Standard ones",
        _state_machine_init,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution",
        "moto names an execution started without a name 'None' (the next one already exists), gives"
        " EXPRESS executions Standard ARNs and name idempotency (AWS: express:MACHINE:NAME:UUID ARNs,"
        " not idempotent) and starts every execution without CloudWatch logging",
        _start_execution,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.list_executions",
        "moto lists the executions of an EXPRESS machine; AWS answers StateMachineTypeNotSupported",
        _list_executions,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.describe_execution",
        _EXPRESS_ARN,
        _reject_express_execution,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.get_execution_history",
        _EXPRESS_ARN,
        _reject_express_execution,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.stop_execution",
        _EXPRESS_ARN,
        _reject_express_execution,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.create_state_machine",
        _VALIDATION_STREAM,
        _writes_validation_stream,
    ),
    Patch(
        "moto.stepfunctions.parser.models.StepFunctionsParserBackend.update_state_machine",
        _VALIDATION_STREAM,
        _writes_validation_stream,
    ),
]
