"""Deterministic Step Functions execution names for S3 object versions, declared once.

The trigger starts one execution per object version under :func:`execution_name`; the reconcile
tool (``scripts/reconcile.py``) computes the same name from a bucket listing, so the two can never
start the same object twice: Step Functions refuses a second execution of a name for 90 days after
the first one closed (``ExecutionAlreadyExists``).

A name is ``<readable>-<digest>``: the key's file name made safe (at most 39 characters), then 40
hex characters of a SHA-256 digest of the object's identity, so at most 80 characters of
``[A-Za-z0-9_-]``, as Step Functions requires. The identity is:

- ``[bucket, key, version_id]`` when S3 gave the object a version id: a version id names exactly
  one object version (the upload bucket is versioned), so every notification of that version
  (S3 is at-least-once; a redelivery may even carry another sequencer) and a listing of the bucket
  (ListObjectVersions shows version ids, never sequencers) map to the same name;
- ``[bucket, key, null, sequencer]`` otherwise (versioning never enabled, or the ``"null"`` version
  S3 gives writes while versioning is off or suspended, reused by the next such write): the
  notification's sequencer is then what tells two writes of one key apart.

A re-drive of an object whose execution ended FAILED, TIMED_OUT or ABORTED needs a name of its own:
attempt ``n >= 1`` is ``<readable>-<digest>-r<n>`` (the readable part shortened to stay within 80
characters), the same digest, so :func:`parse_execution_name` tells which object any of them is for.

Imported as ``from lambda_common.naming import ...``; standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class WorkflowType(StrEnum):
    """The state machine's type (Terraform's ``workflow_type``, the trigger's ``WORKFLOW_TYPE``,
    DescribeStateMachine's ``type``): whether these names guard anything."""

    STANDARD = "STANDARD"
    """Execution names are kept for 90 days (a second start is ``ExecutionAlreadyExists``), and
    DescribeExecution answers."""
    EXPRESS = "EXPRESS"
    """At-least-once, no execution names kept (the same name starts another execution), no
    ListExecutions or DescribeExecution."""


MAX_EXECUTION_NAME_LENGTH: Final = 80
"""Step Functions' limit on an execution name (1-80 characters of ``[A-Za-z0-9_-]``)."""

DIGEST_HEX_CHARS: Final = 40
READABLE_NAME_CHARS: Final = MAX_EXECUTION_NAME_LENGTH - DIGEST_HEX_CHARS - 1
MAX_ATTEMPT: Final = 999
"""The highest re-drive attempt a name can carry (``-r999``)."""
NULL_VERSION_ID: Final = "null"
"""The version id S3 reports for a write made while versioning was off or suspended."""

_UNSAFE_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]+")
_NAME_TAIL: Final = re.compile(
    rf"-(?P<digest>[0-9a-f]{{{DIGEST_HEX_CHARS}}})(?:-r(?P<attempt>[1-9][0-9]*))?\Z"
)


@dataclass(frozen=True)
class NameParts:
    """What an execution name says: which object (``digest``), and which attempt (0: the first)."""

    digest: str
    attempt: int


def has_version_id(version_id: str | None) -> bool:
    """True when ``version_id`` names one object version (not absent, empty or ``"null"``)."""
    return bool(version_id) and version_id != NULL_VERSION_ID


def object_digest(bucket: str, key: str, version_id: str | None, sequencer: str | None = None) -> str:
    """40 hex characters of SHA-256 over the object version's identity (see the module docstring).

    ``sequencer`` counts only when there is no version id.
    """
    if has_version_id(version_id):
        identity: list[str | None] = [bucket, key, version_id]
    else:
        identity = [bucket, key, None, sequencer]
    return hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()[:DIGEST_HEX_CHARS]


def readable_part(key: str, max_chars: int = READABLE_NAME_CHARS) -> str:
    """The key's file name with every run of unsafe characters made ``_``, at most ``max_chars``."""
    file_name = key.rstrip("/").rsplit("/", 1)[-1]
    return _UNSAFE_NAME_CHARS.sub("_", file_name).strip("_-")[:max_chars] or "object"


def execution_name(
    bucket: str, key: str, version_id: str | None, sequencer: str | None = None, *, attempt: int = 0
) -> str:
    """The execution name of one object version: attempt 0 is the trigger's, ``n >= 1`` the n-th re-drive's.

    The same inputs always give the same name, and any object version another one; at most 80
    characters of ``[A-Za-z0-9_-]``.
    """
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be between 0 and {MAX_ATTEMPT}, got {attempt}")
    digest = object_digest(bucket, key, version_id, sequencer)
    suffix = f"-r{attempt}" if attempt else ""
    readable = readable_part(key, READABLE_NAME_CHARS - len(suffix))
    return f"{readable}-{digest}{suffix}"


def parse_execution_name(name: str) -> NameParts | None:
    """The digest and attempt of a name made by :func:`execution_name`; None for any other name."""
    match = _NAME_TAIL.search(name)
    if match is None:
        return None
    attempt = match.group("attempt")
    return NameParts(digest=match.group("digest"), attempt=int(attempt) if attempt else 0)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of execution ``name`` of a state machine (``...:stateMachine:M`` -> ``...:execution:M:name``)."""
    prefix, marker, machine = state_machine_arn.rpartition(":stateMachine:")
    if not marker or not machine:
        raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
    return f"{prefix}:execution:{machine}:{name}"
