"""Act: start the state machine for an accepted key, under its object version's deterministic
execution name (``lambda_common/naming.py``) with the contract's input (``lambda_common/contract.py``).

A throttled start is waited out and tried again while the invocation has time; a start that still
fails is a duplicate when another delivery started the execution (``STANDARD`` only), else failed.
Two messages of one invocation for one execution name call StartExecution once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from aws_lambda_powertools import Logger
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError

from lambda_common.contract import UploadRecord
from lambda_common.naming import WorkflowType, execution_arn
from trigger.run import Clock, Run, StartResult

THROTTLING_ERROR_CODES: Final = frozenset({"ThrottlingException", "KmsThrottlingException"})
"""StartExecution's "slow down" answers, waited out and tried again (a throttle is not a fault).
``ThrottlingException`` is Step Functions' API rate limit: the one code of botocore's throttling
list (``botocore.retries.standard.ThrottlingErrorDetector``) that Step Functions sends (the others
are other services': ``Throttling`` of Query APIs, ``SlowDown`` of S3, ``RequestLimitExceeded``
of EC2, ``ProvisionedThroughputExceededException`` of DynamoDB...). ``KmsThrottlingException`` is
StartExecution's modeled error for KMS throttling the state machine's customer managed key
(``step_functions.tf``); botocore neither lists nor retries it. ``ExecutionLimitExceeded`` (too
many open executions) is no rate: waiting seconds does not clear it, so it is not here."""

THROTTLE_WAIT_BASE_SECONDS: Final = 0.25
"""The cap of the first wait after a throttled start; each further wait's cap doubles. A quarter of
a second is about one token of a throttled bucket at a slow refill (the system benchmark's 5 a
second: one every 0.2 s; Step Functions' own refill, 150-300 a second, is far faster), so the first
retry comes as soon as a token is likely back; doubling spreads the retries of the concurrent
batches (``trigger_maximum_concurrency``) that compete for the same tokens."""

THROTTLE_WAIT_CAP_SECONDS: Final = 2.0
"""The longest wait after a throttled start. A token is never more than a fraction of a second away
at the refill rates above, so longer waits would only leave the quota idle (the very tail these
waits remove); 2 s still keeps a dozen tries within a 30 s invocation's margin-bounded time, and
full jitter (each wait uniform between 0 and its cap) keeps the batches from retrying in step."""


def error_code(err: ClientError | BotoCoreError) -> str:
    """AWS's error code, or the class of a client-side error (``ReadTimeoutError``...)."""
    if isinstance(err, ClientError):
        return str(err.response.get("Error", {}).get("Code", "Unknown"))
    return type(err).__name__


def start_execution(sfn: BaseClient, state_machine_arn: str, name: str, payload: UploadRecord) -> bool:
    """Start one execution; return False when it already exists (a duplicate notification)."""
    try:
        sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=payload.execution_input_json()
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ExecutionAlreadyExists":
            return False
        raise
    return True


def throttle_wait_ms(wait: int, fraction: float) -> int:
    """Milliseconds of wait number ``wait`` (1-based) of a throttled start: full jitter, ``fraction``
    (in [0, 1)) of ``min(cap, base * 2 ** (wait - 1))`` (:data:`THROTTLE_WAIT_BASE_SECONDS`,
    :data:`THROTTLE_WAIT_CAP_SECONDS`). The exponent is bounded, so no run of waits overflows."""
    cap = min(THROTTLE_WAIT_CAP_SECONDS, THROTTLE_WAIT_BASE_SECONDS * 2 ** min(wait - 1, 32))
    return int(fraction * cap * 1000)


def start_execution_through_throttles(
    sfn: BaseClient,
    state_machine_arn: str,
    name: str,
    payload: UploadRecord,
    clock: Clock,
    margin_ms: int,
    waits: list[int],
) -> bool:
    """:func:`start_execution`, started again under the same name while it is throttled and the
    invocation has time.

    A start still refused with one of :data:`THROTTLING_ERROR_CODES` after botocore's attempts waits
    :func:`throttle_wait_ms` and tries again, as long as at least ``margin_ms`` remains after the
    wait; otherwise, and on any other error, the last error raises. Every wait made is appended to
    ``waits`` (milliseconds), whatever the outcome. The time left is the clock's, never more than
    what was left at the first throttle less the waits since, so a clock that stands still (a test
    double) still runs out as the waits add up.
    """
    first_left_ms: int | None = None
    while True:
        try:
            return start_execution(sfn, state_machine_arn, name, payload)
        except ClientError as err:
            if error_code(err) not in THROTTLING_ERROR_CODES:
                raise
            reported_ms = clock.remaining_ms()
            first_left_ms = reported_ms if first_left_ms is None else first_left_ms
            left_ms = min(reported_ms, first_left_ms - sum(waits))
            wait_ms = throttle_wait_ms(len(waits) + 1, clock.jitter())
            if left_ms - wait_ms < margin_ms:
                raise
        # throttled, and there is time: wait, then start the same name again
        waits.append(wait_ms)
        clock.sleep(wait_ms / 1000)


def _wait_fields(waits: Sequence[int]) -> dict[str, int]:
    return {"attempts": len(waits) + 1, "waited_ms": sum(waits)}


def execution_exists(sfn: BaseClient, state_machine_arn: str, name: str, logger: Logger) -> bool:
    """Whether execution ``name`` exists: another delivery of the same event may have started it.

    S3 delivers an event at least once; when this delivery's StartExecution keeps failing (e.g.
    throttled beyond botocore's retries) while another delivery already started the execution, the
    object is being ingested and this delivery is a duplicate, not a failure to retry.
    """
    try:
        sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))
    except (ClientError, BotoCoreError) as err:
        code = error_code(err)
        if code != "ExecutionDoesNotExist":
            logger.warning("DescribeExecution failed", extra={"execution_name": name, "error_code": code})
        return False
    return True


def attempt_start(run: Run, name: str, payload: UploadRecord, log_fields: Mapping[str, str]) -> StartResult:
    """StartExecution (botocore retries inside; throttles waited out while the invocation has time);
    if it failed, DescribeExecution (STANDARD only: an EXPRESS execution cannot be described, and a
    start that failed there is failed)."""
    sfn, config, logger = run.sfn, run.config, run.logger
    waits: list[int] = []
    try:
        started = start_execution_through_throttles(
            sfn, config.state_machine_arn, name, payload, run.clock, config.deadline_margin_ms, waits
        )
    except (ClientError, BotoCoreError) as err:  # throttled out of time, timed out...
        code = error_code(err)
        if config.workflow_type is WorkflowType.STANDARD and execution_exists(
            sfn, config.state_machine_arn, name, logger
        ):
            logger.info(
                "StartExecution failed, but another delivery started the execution; duplicate",
                extra={**log_fields, "error_code": code, **_wait_fields(waits)},
            )
            return StartResult("duplicate")
        logger.error(
            "StartExecution failed",
            extra={**log_fields, "error_code": code, "error": str(err), **_wait_fields(waits)},
        )
        return StartResult("failed", code)
    finally:
        run.throttle_waits += len(waits)
    if waits:
        logger.info(
            "StartExecution answered after throttle waits", extra={**log_fields, **_wait_fields(waits)}
        )
    if started:
        logger.info("Started execution", extra=log_fields)
        return StartResult("started")
    logger.info("Execution already exists; duplicate notification", extra=log_fields)
    return StartResult("duplicate")


def start_once(run: Run, name: str, payload: UploadRecord, log_fields: Mapping[str, str]) -> StartResult:
    """The result of execution ``name``: started now, or the earlier attempt of this invocation
    (another message carrying the same object version is a duplicate, or fails with it)."""
    earlier = run.attempted.get(name)
    if earlier is None:
        result = attempt_start(run, name, payload, log_fields)
        run.attempted[name] = result
        return result
    if earlier.status == "failed":
        run.logger.warning(
            "An earlier notification of this batch failed to start the execution; this one fails with it",
            extra={**log_fields, "error_code": earlier.error_code},
        )
        return earlier
    run.logger.info(
        "An earlier notification of this batch started the execution; duplicate", extra=log_fields
    )
    return StartResult("duplicate")
