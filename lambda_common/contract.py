"""The trigger -> state machine -> writer input, declared once.

The upload record, :class:`UploadRecord`, is the one declaration of the contract's fields (name,
JSON name, type, required or optional, validation); everything below is derived from it.

The trigger starts one execution per accepted object with :meth:`UploadRecord.execution_input` as
its input (reconcile's re-drive too).
The state machine's ``WriteMetadata`` task passes that input whole to the writer as ``file``,
beside the execution's id (``state_machine.asl.json``: ``"file.$": "$"``,
``"execution_id.$": "$$.Execution.Id"``), and its ``NotifyFailure`` state reads some of the same
fields. The writer validates what it receives with :func:`parse_write_request`; an input that
breaks the contract raises :class:`InvalidInputError`, which the state machine never retries.

Imported as ``from lambda_common.contract import ...``; standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, TypedDict

from lambda_common.key_validation import InvalidKeyError, validate_key

ExecutionInput = dict[str, Any]
"""The execution input as JSON-ready data: :meth:`UploadRecord.execution_input`'s answer, the
writer's ``file``. Its fields are :data:`FIELD_NAMES`, in that order, every one always present."""


class WriterEvent(TypedDict):
    """The writer's event, as the state machine builds it."""

    file: ExecutionInput
    execution_id: str


class InvalidInputError(ValueError):
    """The writer's input breaks this contract; retrying cannot help.

    The class name is part of the contract: Lambda reports it as the errorType and the state
    machine's first retrier lists it with MaxAttempts 0.
    """

    def __init__(self, problems: list[str], *, key: str | None = None) -> None:
        self.problems = problems
        self.key = key
        self.reason = "; ".join(problems)
        about = f" for key {key!r}" if key is not None else ""
        super().__init__(f"invalid writer input{about}: {self.reason}")


# --- field rules: the validations the field table names ------------------------------------------


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _non_empty_text(name: str, value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{name} must be a non-empty string (got {type_name(value)})"
    return None


def _optional_text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        return f"{name} must be a string or null (got {type_name(value)})"
    return None


def _object_key(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be a string (got {type_name(value)})"
    try:
        validate_key(value)
    except InvalidKeyError as err:
        return f"{name} is not acceptable: {err.reason}"
    return None


def _timestamp(name: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{name} must be an ISO 8601 string (got {type_name(value)})"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return f"{name} {value[:64]!r} is not an ISO 8601 timestamp"
    return None


def _optional_size(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{name} must be an integer >= 0 or null (got {type_name(value)})"
    if value < 0:
        return f"{name} must be an integer >= 0 or null (got {value})"
    return None


FieldRule = Callable[[str, object], str | None]
"""A field's validation: given the field's name as reported (``file.<json name>``) and its value,
a problem in plain words, or None."""


def _field(rule: FieldRule, *, required: bool, json_name: str | None = None) -> Any:
    """One row of the upload record's field table (see :class:`UploadRecord`)."""
    return field(metadata={"rule": rule, "required": required, "json_name": json_name})


# --- the upload record: the one declaration ------------------------------------------------------


@dataclass(frozen=True)
class UploadRecord:
    """One accepted upload, as the trigger starts an execution with it and the writer receives it.

    This class is the contract's single field table: each field's attribute name, Python type,
    JSON name in the execution input (the attribute name unless ``json_name`` says otherwise),
    whether S3 always says it (``required``; an optional field is present and null when S3 did
    not say) and its validation rule. The execution input's fields and their order, the writer's
    parsing and its error messages are all derived from it; nothing else lists these fields.
    """

    bucket: str = _field(_non_empty_text, required=True)
    key: str = _field(_object_key, required=True)
    size: int | None = _field(_optional_size, required=False)
    etag: str | None = _field(_optional_text, required=False)
    version_id: str | None = _field(_optional_text, required=False)
    sequencer: str | None = _field(_optional_text, required=False)
    event_time: str = _field(_timestamp, required=True)
    event_name: str = _field(_non_empty_text, required=True)

    def execution_input(self) -> ExecutionInput:
        """The execution's input: every field under its JSON name, in declaration order."""
        return {spec.json_name: getattr(self, spec.attribute) for spec in UPLOAD_FIELDS}

    def execution_input_json(self) -> str:
        """:meth:`execution_input` as StartExecution's ``input`` string (non-ASCII kept as is)."""
        return json.dumps(self.execution_input(), ensure_ascii=False)

    def with_key(self, key: str) -> UploadRecord:
        """The same upload under ``key``, as the contract's own type (the trigger reads a
        notification into a record whose key is still encoded, then decodes it)."""
        values = {spec.attribute: getattr(self, spec.attribute) for spec in UPLOAD_FIELDS}
        return UploadRecord(**{**values, "key": key})

    @classmethod
    def from_execution_input(cls, file: Mapping[str, object]) -> UploadRecord:
        """An already validated execution input (:func:`execution_input_problems` found nothing)
        as a record; a missing optional field is null."""
        return cls(**_attributes(file))


@dataclass(frozen=True)
class UploadField:
    """One field of :class:`UploadRecord`, read back from its declaration."""

    attribute: str
    json_name: str
    type: str
    required: bool
    rule: FieldRule


UPLOAD_FIELDS: Final[tuple[UploadField, ...]] = tuple(
    UploadField(
        attribute=f.name,
        json_name=f.metadata["json_name"] or f.name,
        type=str(f.type),
        required=f.metadata["required"],
        rule=f.metadata["rule"],
    )
    for f in fields(UploadRecord)
)
"""The field table, in declaration order (the execution input's key order)."""

FIELD_NAMES: Final[tuple[str, ...]] = tuple(spec.json_name for spec in UPLOAD_FIELDS)
"""The execution input's JSON field names, in order."""


def _attributes(file: Mapping[str, object]) -> dict[str, Any]:
    """An execution input's values by attribute name; a missing field is null."""
    return {spec.attribute: file.get(spec.json_name) for spec in UPLOAD_FIELDS}


FIELD_RULES: Final[Mapping[str, FieldRule]] = MappingProxyType(
    {spec.json_name: spec.rule for spec in UPLOAD_FIELDS}
)
"""How the writer checks each execution input field (same names, same order); a rule returns a
problem in plain words, or None. A missing field counts as null."""


@dataclass(frozen=True)
class WriteRequest(UploadRecord):
    """A validated writer event: the upload record and the execution that carries it."""

    execution_id: str


# --- the writer's side -------------------------------------------------------------------------


def execution_input_problems(file: Mapping[str, object]) -> list[str]:
    """Every way ``file`` breaks the contract, in field order; empty when it is valid."""
    problems = (spec.rule(f"file.{spec.json_name}", file.get(spec.json_name)) for spec in UPLOAD_FIELDS)
    return [problem for problem in problems if problem is not None]


def parse_write_request(event: object) -> WriteRequest:
    """Validate the writer's event; raise :class:`InvalidInputError` listing every problem found."""
    if not isinstance(event, Mapping):
        raise InvalidInputError([f"the event must be a JSON object (got {type_name(event)})"])
    file = event.get("file")
    if not isinstance(file, Mapping):
        raise InvalidInputError([f"'file' must be a JSON object (got {type_name(file)})"])
    problems = execution_input_problems(file)
    execution_problem = _non_empty_text("execution_id", event.get("execution_id"))
    if execution_problem is not None:
        problems.append(execution_problem)
    if problems:
        key = file.get("key")
        raise InvalidInputError(problems, key=key if isinstance(key, str) else None)
    return WriteRequest(**_attributes(file), execution_id=event["execution_id"])
