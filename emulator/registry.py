"""The one list of every change the emulator makes to moto.

Each :class:`Patch` names the attribute it replaces or adds (``target``, a dotted path into moto),
says why (the moto behaviour that differs from AWS) and builds its replacement from the original,
which it keeps. :func:`install` applies them all when an Emulator starts; :func:`uninstall` puts
every original back when it stops, so moto is untouched while no emulator runs in the process (an
in-process ``mock_aws`` test sees plain moto). A moto upgrade means reviewing :func:`patches`:
a target that no longer exists fails :func:`install` with the patch's name instead of silently
doing nothing.

The registry is also the list of every other moto touch-point (:data:`USES`: names imported from
moto, private state of moto's objects read or called, attributes the emulator stores on them) and
says which moto all of it was written against (:data:`MOTO_VERSION`). :func:`problems` checks both
lists against the installed moto without installing anything; ``tests/emulator/test_registry.py``
fails when moto's version differs, when a target moved, or when a touch-point is not listed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.patch import Patch, PatchTargetError, Use

__all__ = [
    "MOTO_VERSION",
    "USES",
    "Patch",
    "PatchTargetError",
    "Use",
    "describe",
    "install",
    "installed",
    "patches",
    "problems",
    "resolve",
    "uninstall",
]

LOG = logging.getLogger("emulator")

# The moto every Patch and Use was written against (the pin in requirements-dev.txt). Another moto
# means reviewing both lists (README "The patch registry"), then changing this and the pin together.
MOTO_VERSION = "5.2.5"

_SQS_SOURCES = ("cloudwatch_alarms", "s3_notifications", "sqs_event_sources", "sqs_move_tasks")

# Every place the emulator reaches into moto other than a Patch. Public attributes of moto's model
# objects (``queue.name``, ``fn.version``, ...) are not listed: the behaviour tests cover them.
USES: tuple[Use, ...] = (
    # moto itself and its server
    Use("moto.__version__", "import", ("server",), "reported by GET /_emulator/health"),
    Use("moto.moto_api._internal.models.moto_api_backend", "import", ("server",), "resets moto's state"),
    Use("moto.moto_server.werkzeug_app.DomainDispatcherApplication", "import", ("server",), "the app"),
    Use("moto.moto_server.werkzeug_app.create_backend_app", "import", ("server",), "the app's backends"),
    Use("moto.moto_server.werkzeug_app.MotoRequestHandler", "import", ("http_server",), "request handler"),
    Use("moto.core.responses.ActionResult", "import", ("paging", "sqs_move_tasks", "stepfunctions_api")),
    Use("moto.core.responses.TYPE_RESPONSE", "import", ("lambda_api",)),
    Use("moto.utilities.utils.get_partition", "import", ("paging",)),
    # backends: state read or written in-process
    Use("moto.awslambda.models.lambda_backends", "import", ("sqs_event_sources",)),
    Use(
        "moto.awslambda.utils.get_backend",
        "import",
        ("events", "lambda_runtime", "s3_notifications", "sqs_event_sources"),
    ),
    Use("moto.cloudwatch.models.cloudwatch_backends", "import", ("cloudwatch_alarms",)),
    Use("moto.events.models.events_backends", "import", ("events",)),
    Use("moto.kms.models.kms_backends", "import", ("s3_encryption",)),
    Use("moto.logs.models.logs_backends", "import", ("stepfunctions_logging",)),
    Use("moto.sns.models.sns_backends", "import", ("cloudwatch_alarms",)),
    Use("moto.sqs.models.sqs_backends", "import", _SQS_SOURCES),
    Use(
        "moto.stepfunctions.parser.models.stepfunctions_parser_backends",
        "import",
        ("server", "stepfunctions_api"),
    ),
    # exceptions raised or caught as moto's own
    Use("moto.awslambda.exceptions.LambdaClientError", "import", ("lambda_invoke",)),
    Use("moto.core.exceptions.AWSError", "import", ("stepfunctions_api",)),
    Use("moto.core.exceptions.JsonRESTError", "import", ("s3_notifications",)),
    Use("moto.core.exceptions.ServiceException", "import", ("cloudwatch_alarms", "s3_notifications")),
    Use("moto.events.exceptions.ResourceNotFoundException", "import", ("admin",)),
    Use("moto.kms.exceptions.ValidationException", "import", ("paging",)),
    Use("moto.logs.exceptions.LogsClientError", "import", ("lambda_runtime", "stepfunctions_logging")),
    Use("moto.s3.exceptions.S3AccessDeniedError", "import", ("s3_policy",)),
    Use("moto.s3.exceptions.S3ClientError", "import", ("paging", "s3_encryption")),
    Use("moto.sqs.exceptions.QueueDoesNotExist", "import", ("sqs_event_sources", "sqs_move_tasks")),
    Use("moto.sqs.exceptions.ReceiptHandleIsInvalid", "import", ("sqs_event_sources", "sqs_move_tasks")),
    Use("moto.sqs.exceptions.SQSException", "import", ("sqs_move_tasks",)),
    Use("moto.stepfunctions.exceptions.InvalidArn", "import", ("stepfunctions_api",)),
    Use("moto.stepfunctions.exceptions.InvalidToken", "import", ("paging",)),
    Use("moto.stepfunctions.parser.api.InvalidExecutionInput", "import", ("stepfunctions_api",)),
    Use(
        "moto.stepfunctions.parser.asl.parse.asl_parser.ASLParserException", "import", ("stepfunctions_api",)
    ),
    # classes and helpers built, subclassed or checked against
    Use("moto.awslambda.models.EventInvokeConfig", "import", ("lambda_invoke",)),
    Use(
        "moto.awslambda.models.LambdaFunction",
        "import",
        ("lambda_api", "lambda_async", "lambda_invoke", "lambda_runtime"),
    ),
    Use("moto.awslambda.responses.LambdaResponse", "import", ("lambda_api",)),
    Use("moto.events.models.EventTemplateParser", "import", ("events",)),
    Use(
        "moto.core.resource_tagging.TaggedResource", "import", ("events",), "tagged rules for the tagging API"
    ),
    Use("moto.iam.access_control.PermissionResult", "import", ("s3_policy",)),
    Use("moto.kms.utils.RESERVED_ALIASES", "import", ("paging",)),
    Use("moto.sqs.responses.SQSResponse", "import", ("sqs_move_tasks",)),
    Use("moto.stepfunctions.responses.StepFunctionResponse", "import", ("stepfunctions_api",)),
    Use("moto.stepfunctions.parser.asl.component.component.Component", "import", ("performance",)),
    Use("moto.stepfunctions.parser.asl.component.eval_component.EvalComponent", "import", ("performance",)),
    Use(
        "moto.stepfunctions.parser.asl.eval.event.logging.CloudWatchLoggingConfiguration",
        "import",
        ("stepfunctions_logging",),
    ),
    Use(
        "moto.stepfunctions.parser.asl.eval.event.logging.CloudWatchLoggingSession",
        "import",
        ("stepfunctions_logging",),
    ),
    Use("moto.stepfunctions.parser.asl.eval.event.logging.HistoryLog", "import", ("stepfunctions_logging",)),
    Use(
        "moto.stepfunctions.parser.asl.eval.event.logging.VALIDATION_LOG_STREAM_NAME",
        "import",
        ("stepfunctions_logging",),
    ),
    Use(
        "moto.stepfunctions.parser.asl.static_analyser.express_static_analyser.ExpressStaticAnalyser",
        "import",
        ("stepfunctions_api",),
    ),
    Use(
        "moto.stepfunctions.parser.asl.static_analyser.static_analyser.StaticAnalyser",
        "import",
        ("stepfunctions_api",),
    ),
    Use("moto.stepfunctions.parser.asl.utils.encoding.to_json_str", "import", ("stepfunctions_logging",)),
    Use("moto.stepfunctions.parser.backend.execution.Execution", "import", ("stepfunctions_api",)),
    # private state of moto's objects, read or called
    Use(
        "moto.sqs.models.Queue._messages",
        "private",
        ("cloudwatch_alarms", "sqs_event_sources"),
        "a queue's messages: alarm metrics, duplicate deliveries, drained queues",
    ),
    Use(
        "moto.sqs.models.Queue._messages_lock",
        "private",
        ("sqs_event_sources",),
        "the lock SendMessage/DeleteMessage take (the patched ones too)",
    ),
    Use(
        "moto.awslambda.models.LambdaBackend._event_source_mappings",
        "private",
        ("sqs_event_sources",),
        "the SQS mappings the pollers serve",
    ),
    Use(
        "moto.stepfunctions.models.StateMachine._handle_name_input_idempotency",
        "private",
        ("stepfunctions_api",),
        "moto's idempotency of Standard executions, kept by the patched StartExecution",
    ),
    Use(
        "moto.core.responses.BaseResponse._get_param",
        "private",
        ("paging", "sqs_move_tasks", "stepfunctions_api"),
        "request parameters in added and replaced actions",
    ),
    Use(
        "moto.s3.responses.S3Response._authenticate_and_authorize_s3_action",
        "private",
        ("paging",),
        "ListBuckets authorization, as moto's own handler does it",
    ),
    Use(
        "moto.kms.responses.KmsResponse._validate_key_id",
        "private",
        ("paging",),
        "ListAliases' KeyId validation, as moto's own handler does it",
    ),
    Use(
        "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._evaluation_details",
        "private",
        ("performance",),
        "the definition to parse once",
    ),
    Use(
        "moto.stepfunctions.parser.asl.component.component.Component.__dict__",
        "private",
        ("performance",),
        "every attribute of a parsed program (vars()), to draw its heap keys once",
    ),
    # attributes the emulator keeps on moto's objects (moto must not define them)
    Use(
        "moto.awslambda.models.LambdaFunction._emulator_dead_letter",
        "stores",
        ("lambda_api", "lambda_async"),
        "DeadLetterConfig, which moto drops",
    ),
    Use(
        "moto.awslambda.models.LambdaFunction._emulator_logging",
        "stores",
        ("lambda_api", "lambda_runtime"),
        "LoggingConfig, which moto drops",
    ),
    Use(
        "moto.awslambda.models.LambdaFunction._emulator_runtime_management",
        "stores",
        ("lambda_api",),
        "PutRuntimeManagementConfig",
    ),
    Use(
        "moto.awslambda.models.LambdaFunction._emulator_recursive_loop",
        "stores",
        ("lambda_api",),
        "PutFunctionRecursionConfig",
    ),
    Use(
        "moto.sqs.models.Message._emulator_origin_arn",
        "stores",
        ("sqs_event_sources", "sqs_move_tasks"),
        "the queue a message was first sent to (redrives)",
    ),
    Use(
        "moto.events.models.Rule._triggered",
        "stores",
        ("events",),
        "a rule copy fired on demand (its schedule matches)",
    ),
)

_MISSING: Any = object()


def resolve(path: str) -> Any:
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            try:
                obj = getattr(obj, name)
            except AttributeError as exc:
                raise PatchTargetError(f"{path}: {exc}") from exc
        return obj
    raise PatchTargetError(f"{path}: no importable module")


@dataclass
class _Applied:
    patch: Patch
    owner: Any
    # the owner's own attribute (its __dict__ entry), or _MISSING; for entries: each key's prior
    # value (or _MISSING), so that uninstall puts back what was there
    saved: Any


def _apply(patch: Patch) -> _Applied:
    owner = resolve(patch.owner_path)
    name = patch.attribute
    if patch.kind == "entries":
        mapping = getattr(owner, name)
        entries: Mapping[Any, Any] = patch.build(mapping)
        prior = {key: mapping.get(key, _MISSING) for key in entries}
        mapping.update(entries)
        return _Applied(patch, mapping, prior)
    own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
    problem = _target_problem(patch, owner)
    if problem is not None:
        raise PatchTargetError(problem)
    exists = hasattr(owner, name)
    original = getattr(owner, name) if exists else None
    replacement = patch.build(original)
    setattr(owner, name, replacement)
    return _Applied(patch, owner, own)


def _revert(applied: _Applied) -> None:
    patch = applied.patch
    if patch.kind == "entries":
        for key, prior in applied.saved.items():
            if prior is _MISSING:
                applied.owner.pop(key, None)
            else:
                applied.owner[key] = prior
        return
    if applied.saved is _MISSING:
        delattr(applied.owner, patch.attribute)
    else:
        setattr(applied.owner, patch.attribute, applied.saved)


def _target_problem(patch: Patch, owner: Any) -> str | None:
    name = patch.attribute
    if patch.kind == "entries":
        if isinstance(getattr(owner, name, None), dict):
            return None
        return f"{patch.target} is no longer a dict (patch from {patch.module}): review it"
    exists = hasattr(owner, name)
    if patch.kind == "replace" and not exists:
        return f"{patch.target} does not exist (patch from {patch.module}): review it"
    if patch.kind == "add" and exists:
        return f"{patch.target} already exists in moto (patch from {patch.module})"
    return None


def _defines(owner: Any, name: str) -> bool:
    """Whether a moto class has ``name``: as a class attribute or assigned/read as ``self.<name>``."""
    if hasattr(owner, name):
        return True
    try:
        sources = [
            inspect.getsource(cls) for cls in inspect.getmro(owner) if cls.__module__.startswith("moto")
        ]
    except (OSError, TypeError):
        return False
    return any(f"self.{name}" in source for source in sources)


def _use_problem(use: Use) -> str | None:
    where = ", ".join(f"emulator.{module}" for module in use.modules)
    try:
        owner = resolve(use.owner_path)
        if use.kind == "import":
            resolve(use.target)
            return None
    except PatchTargetError as exc:
        return f"{use.target} ({use.kind}, used by {where}): {exc}: review it"
    if use.kind == "private" and not _defines(owner, use.attribute):
        return f"{use.target}: moto no longer defines it (read by {where}): review it"
    if use.kind == "stores" and _defines(owner, use.attribute):
        return f"{use.target}: moto now defines it too (the emulator stores it, {where}): rename or review it"
    return None


def problems() -> list[str]:
    """What no longer matches the installed moto: patch targets and touch-points (nothing installed)."""
    found: list[str] = []
    for patch in patches():
        try:
            problem = _target_problem(patch, resolve(patch.owner_path))
        except PatchTargetError as exc:
            problem = f"{patch.target} (patch from {patch.module}): {exc}: review it"
        found.extend([problem] if problem else [])
    found.extend(problem for use in USES if (problem := _use_problem(use)) is not None)
    return found


def installed_moto_version() -> str:
    return importlib.metadata.version("moto")


def patches() -> list[Patch]:
    """Every patch, in installation order (imported lazily: moto is heavy)."""
    from emulator import (
        cloudwatch_alarms,
        events,
        lambda_api,
        lambda_invoke,
        moto_config,
        paging,
        performance,
        s3_encryption,
        s3_listing,
        s3_notifications,
        s3_policy,
        sqs_attributes,
        sqs_event_sources,
        sqs_move_tasks,
        stepfunctions_api,
    )

    found: list[Patch] = []
    for module in (
        moto_config,
        lambda_invoke,
        lambda_api,
        s3_encryption,
        s3_notifications,
        s3_policy,
        s3_listing,
        sqs_attributes,
        sqs_event_sources,
        sqs_move_tasks,
        paging,
        stepfunctions_api,
        events,
        cloudwatch_alarms,
        performance,
    ):
        for patch in module.PATCHES:
            found.append(Patch(patch.target, patch.why, patch.build, patch.kind, module.__name__))
    return found


_LOCK = threading.Lock()
_APPLIED: list[_Applied] = []


def install() -> list[Patch]:
    """Apply every patch; all or nothing (a failure reverts what was applied)."""
    with _LOCK:
        if _APPLIED:
            raise RuntimeError("the emulator's patches are already installed")
        if (version := installed_moto_version()) != MOTO_VERSION:
            LOG.warning(
                "moto %s is installed; the patches were written against moto %s", version, MOTO_VERSION
            )
        try:
            for patch in patches():
                _APPLIED.append(_apply(patch))
        except BaseException:
            _uninstall_locked()
            raise
        return [applied.patch for applied in _APPLIED]


def _uninstall_locked() -> None:
    while _APPLIED:
        _revert(_APPLIED.pop())


def uninstall() -> None:
    """Put every original back (idempotent)."""
    with _LOCK:
        _uninstall_locked()


def installed() -> bool:
    return bool(_APPLIED)


def describe() -> list[dict[str, str]]:
    """The registry as data (``GET /_emulator/patches``, the README table)."""
    return [{"target": p.target, "kind": p.kind, "module": p.module, "why": p.why} for p in patches()]
