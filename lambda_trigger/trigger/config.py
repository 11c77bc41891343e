"""Configuration: the function's environment, read and validated once at load, and the settings of
its clients.

A setting that cannot be used is a :class:`ConfigurationError` at load, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from botocore.config import Config

from lambda_common.errors import ConfigurationError
from lambda_common.naming import WorkflowType

DEFAULT_DEADLINE_MARGIN_MS: Final = 5_000
"""Below this many milliseconds left in the invocation, a message is not attempted (it comes back
after its visibility timeout), and a throttled start makes no wait that would leave less. Set
``DEADLINE_MARGIN_MS`` to change it. It covers one throttled StartExecution call (botocore's backoff
between the 4 attempts is up to 1 + 2 + 4 s, half that on average, plus a DescribeExecution call)
and the batch's alert; keep it well below the function's timeout (30 s)."""

SFN_CLIENT_CONFIG: Final = Config(
    retries={"mode": "adaptive", "total_max_attempts": 4}, connect_timeout=2, read_timeout=3
)
"""Adaptive mode paces StartExecution calls client-side and slows down on ThrottlingException; few
attempts and short timeouts keep a throttled or hung call from eating the invocation (a start still
throttled after them is waited out by the trigger while the invocation has time,
:func:`trigger.start.start_execution_through_throttles`; any other failure comes back from the
queue). StartExecution answers in tens of milliseconds."""

SNS_CLIENT_CONFIG: Final = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=2, read_timeout=5
)


def parse_workflow_type(value: str | None) -> WorkflowType:
    """``WORKFLOW_TYPE`` as a :class:`WorkflowType`; unset or empty is ``STANDARD`` (older
    deployments set nothing). Raise :class:`ConfigurationError` for any other value."""
    if not value:
        return WorkflowType.STANDARD
    try:
        return WorkflowType(value)
    except ValueError:
        allowed = " or ".join(kind.value for kind in WorkflowType)
        raise ConfigurationError(
            f"WORKFLOW_TYPE must be {allowed} (unset: STANDARD), got {value!r}"
        ) from None


@dataclass(frozen=True)
class TriggerConfig:
    state_machine_arn: str
    alert_topic_arn: str
    upload_bucket: str
    """The one bucket whose notifications start executions; a record for any other is rejected."""
    region: str
    """The stack's region (Lambda's ``AWS_REGION``), where the upload bucket is: a record whose
    ``awsRegion`` is another (or missing) is rejected."""
    deadline_margin_ms: int = DEFAULT_DEADLINE_MARGIN_MS
    workflow_type: WorkflowType = WorkflowType.STANDARD
    """EXPRESS: a failed start is not looked up with DescribeExecution."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TriggerConfig:
        required = ("STATE_MACHINE_ARN", "ALERT_TOPIC_ARN", "UPLOAD_BUCKET", "AWS_REGION")
        missing = [name for name in required if not environ.get(name)]
        if missing:
            raise ConfigurationError(f"environment variable(s) not set: {', '.join(missing)}")
        margin = environ.get("DEADLINE_MARGIN_MS") or str(DEFAULT_DEADLINE_MARGIN_MS)
        if not margin.isascii() or not margin.isdigit():
            raise ConfigurationError(
                f"DEADLINE_MARGIN_MS must be a whole number of milliseconds >= 0, got {margin!r}"
            )
        return cls(
            state_machine_arn=environ["STATE_MACHINE_ARN"],
            alert_topic_arn=environ["ALERT_TOPIC_ARN"],
            upload_bucket=environ["UPLOAD_BUCKET"],
            region=environ["AWS_REGION"],
            deadline_margin_ms=int(margin),
            workflow_type=parse_workflow_type(environ.get("WORKFLOW_TYPE")),
        )
