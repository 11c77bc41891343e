"""The trigger -> state machine -> writer input, declared once.

The trigger starts one execution per accepted object with an :class:`ExecutionInput` as its input.
The state machine's ``WriteMetadata`` task passes that input whole to the writer as ``file``,
beside the execution's id (``state_machine.asl.json``: ``"file.$": "$"``,
``"execution_id.$": "$$.Execution.Id"``), and its ``NotifyFailure`` state reads some of the same
fields. The writer validates what it receives with :func:`parse_write_request`; an input that
breaks the contract raises :class:`InvalidInputError`, which the state machine never retries.

Imported as ``from lambda_common.contract import ...``; standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final, TypedDict

from lambda_common.key_validation import InvalidKeyError, validate_key


class ExecutionInput(TypedDict):
    """One accepted object: the execution's input; every field is always present, null when S3
    did not say."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: str
    event_name: str


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


@dataclass(frozen=True)
class WriteRequest:
    """A validated writer event: the object's fields and the execution that carries them."""

    bucket: str
    key: str
    size: int | None
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_time: str
    event_name: str
    execution_id: str


# --- field rules: one per ExecutionInput field ---------------------------------------------------


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

FIELD_RULES: Final[Mapping[str, FieldRule]] = MappingProxyType(
    {
        "bucket": _non_empty_text,
        "key": _object_key,
        "size": _optional_size,
        "etag": _optional_text,
        "version_id": _optional_text,
        "sequencer": _optional_text,
        "event_time": _timestamp,
        "event_name": _non_empty_text,
    }
)
"""How the writer checks each :class:`ExecutionInput` field (same names, same order); a rule
returns a problem in plain words, or None. A missing field counts as null."""


# --- the writer's side -------------------------------------------------------------------------


def execution_input_problems(file: Mapping[str, object]) -> list[str]:
    """Every way ``file`` breaks the contract, in field order; empty when it is valid."""
    problems = (rule(f"file.{name}", file.get(name)) for name, rule in FIELD_RULES.items())
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
    return WriteRequest(
        bucket=file["bucket"],
        key=file["key"],
        size=file.get("size"),
        etag=file.get("etag"),
        version_id=file.get("version_id"),
        sequencer=file.get("sequencer"),
        event_time=file["event_time"],
        event_name=file["event_name"],
        execution_id=event["execution_id"],
    )
