"""Step Functions execution logging to CloudWatch Logs, as Step Functions writes it.

Used by :mod:`emulator.stepfunctions_api` (which declares the patches): moto 5.2.5 starts every
execution with ``cloud_watch_logging_session=None``, and the session class it ships
(``moto.stepfunctions.parser.asl.eval.event.logging.CloudWatchLoggingSession``, from LocalStack)
cannot run here: it reads the event's timestamp as a ``datetime`` although moto's event manager has
already turned it into an ISO string, hands moto's ``LogEvent`` a record without ``timestamp`` and
``message``, only catches botocore's ``ClientError`` (moto's in-process backend raises its own
exceptions), omits ``redrive_count`` and names every stream ``states/<state machine ARN>``.

What is reused: moto's level filter (``is_logging_enabled_for``, the table of AWS's "Log levels"
page: ERROR = the failure, abort and timeout events, FATAL = ExecutionFailed/Aborted/TimedOut), its
parsing of the destination's log group ARN (also the ``arn:...:log-group:NAME:*`` form
hashicorp/aws sends) and its event manager, which removes ``input``, ``inputDetails``, ``output``
and ``outputDetails`` from the details unless ``includeExecutionData`` is true.

What a record looks like (AWS, recorded in LocalStack's AWS-validated snapshots
``tests/aws/services/stepfunctions/v2/logs/test_logs.snapshot.json`` and
``test_sfn_api_express.snapshot.json``): one JSON object per history event,
``{"id": "1", "type": "ExecutionStarted", "details": {...}, "previous_event_id": "0",
"event_timestamp": "<epoch milliseconds>", "execution_arn": "...", "redrive_count": "0"}``, all of
them strings but ``details`` (``{}`` when an event has none). The log event's timestamp is the
history event's.

Log streams (AWS documents no naming; as seen in logs published from AWS, e.g.
``states/LoggingAndMaskingWorkflow/2024-04-24-11-50/00000000`` of an Express workflow):
``states/<state machine name>/<YYYY-MM-DD-HH-MM, UTC>/<8 hex digits>``; several executions share a
stream. Here: the minute the execution started and a suffix fixed per state machine, so executions
of one machine started within the same minute share a stream and one execution never spans two.
When logging is configured (CreateStateMachine, UpdateStateMachine), AWS writes an empty stream
``log_stream_created_by_aws_to_validate_log_delivery_subscriptions`` into the group; so does the
emulator. Step Functions never creates the log group: a missing group drops the records (with a
warning in the emulator's log), as CloudWatch delivery is best-effort on AWS.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import threading
from typing import Any

from moto.stepfunctions.parser.asl.eval.event.logging import (
    VALIDATION_LOG_STREAM_NAME,
    CloudWatchLoggingConfiguration,
    CloudWatchLoggingSession,
    HistoryLog,
)
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

LOG = logging.getLogger(__name__)

# Writes into moto's logs backend from every execution thread: one stream's event list and
# sequence token are not thread-safe in moto.
_LOCK = threading.Lock()


def logging_configuration(state_machine: Any) -> CloudWatchLoggingConfiguration | None:
    """The machine's CloudWatch Logs destination and level, or None (level OFF, no destination)."""
    config = getattr(state_machine, "loggingConfiguration", None) or {}
    level = str(config.get("level") or "OFF")
    if level == "OFF":
        return None
    parts = CloudWatchLoggingConfiguration.extract_log_arn_parts_from(logging_configuration=config)
    if parts is None:
        return None
    account_id, region, group_name = parts
    return CloudWatchLoggingConfiguration(
        state_machine_arn=state_machine.arn,
        log_account_id=account_id,
        log_region=region,
        log_group_name=group_name,
        log_level=level,
        include_execution_data=bool(config.get("includeExecutionData", False)),
    )


def log_stream_name(state_machine: Any, started: datetime.datetime) -> str:
    """``states/<name>/<YYYY-MM-DD-HH-MM>/<8 hex>``: the form Step Functions' streams have."""
    source_arn = getattr(state_machine, "source_arn", state_machine.arn)  # a version: its machine's
    suffix = hashlib.sha256(source_arn.encode("utf-8")).hexdigest()[:8]
    minute = started.astimezone(datetime.UTC).strftime("%Y-%m-%d-%H-%M")
    return f"states/{state_machine.name}/{minute}/{suffix}"


def _epoch_millis(timestamp: Any) -> int:
    if isinstance(timestamp, str):  # moto's event manager: "2024-01-01T12:00:00.123Z"
        timestamp = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if isinstance(timestamp, datetime.datetime):
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=datetime.UTC)
        return int(timestamp.timestamp() * 1000)
    return int(datetime.datetime.now(tz=datetime.UTC).timestamp() * 1000)


def history_record(history_log: HistoryLog) -> tuple[int, str]:
    """A history event as Step Functions logs it: (timestamp in ms, the JSON message)."""
    millis = _epoch_millis(history_log.get("event_timestamp"))
    record = {
        "id": str(history_log["id"]),
        "type": str(getattr(history_log["type"], "value", history_log["type"])),
        "details": history_log.get("details") or {},
        "previous_event_id": str(history_log["previous_event_id"]),
        "event_timestamp": str(millis),
        "execution_arn": history_log["execution_arn"],
        "redrive_count": "0",
    }
    return millis, to_json_str(record)


def put_events(
    configuration: CloudWatchLoggingConfiguration, stream: str, events: list[dict[str, Any]]
) -> bool:
    """Write ``events`` (``{"timestamp", "message"}``) to the stream, created on first use; False
    (and a warning) when the log group does not exist."""
    from moto.logs.exceptions import LogsClientError
    from moto.logs.models import logs_backends

    backend = logs_backends[configuration.log_account_id][configuration.log_region]
    group_name = configuration.log_group_name
    try:
        with _LOCK:
            group = backend.groups.get(group_name)
            if group is None:
                LOG.warning("Step Functions log group %s does not exist: records dropped", group_name)
                return False
            if stream not in group.streams:
                backend.create_log_stream(group_name, stream)
            if events:
                backend.put_log_events(group_name, stream, events)
    except (KeyError, ValueError, LogsClientError) as exc:
        LOG.warning("could not write Step Functions logs to %s: %s", group_name, exc)
        return False
    return True


class ExecutionLogSession(CloudWatchLoggingSession):
    """moto's logging session, writing AWS's record format into one stream of the log group."""

    def __init__(
        self, execution_arn: str, configuration: CloudWatchLoggingConfiguration, stream: str
    ) -> None:
        super().__init__(execution_arn=execution_arn, configuration=configuration)
        self.stream = stream

    def publish_history_log(self, history_log: HistoryLog) -> None:
        millis, message = history_record(history_log)
        put_events(self.configuration, self.stream, [{"timestamp": millis, "message": message}])


def session_for(
    state_machine: Any, execution_arn: str, started: datetime.datetime
) -> ExecutionLogSession | None:
    """The logging session of a new execution, or None when the machine does not log."""
    configuration = logging_configuration(state_machine)
    if configuration is None:
        return None
    return ExecutionLogSession(execution_arn, configuration, log_stream_name(state_machine, started))


def write_validation_stream(state_machine: Any) -> None:
    """The empty stream Step Functions creates in the log group when logging is configured."""
    configuration = logging_configuration(state_machine)
    if configuration is not None:
        put_events(configuration, VALIDATION_LOG_STREAM_NAME, [])
