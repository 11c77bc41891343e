"""One S3 notification record, the records of one event, one queue message: parse, validate, act.

A rejected record (malformed, of another origin, or with an invalid key) starts nothing and is
listed in the outcome for the alert; a record that is not ObjectCreated, S3's ``s3:TestEvent`` and
a folder marker are ignored and counted; an invalid queue message is an outcome too (it is deleted
after the alert). A queue message whose start failed, or that came too late, raises: Powertools
reports it failed and it comes back after its visibility timeout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from lambda_common.key_validation import InvalidKeyError, decode_s3_key, is_folder_marker, validate_key
from lambda_common.naming import execution_name
from trigger.events import (
    S3_TEST_EVENT,
    InvalidMessageError,
    MalformedRecordError,
    is_object_created,
    origin_problems,
    parse_body,
    parse_record,
    s3_event_records,
)
from trigger.run import (
    DeadlineDeferredError,
    FailedStart,
    InvalidMessage,
    MessageFailedError,
    Outcome,
    Rejection,
    Run,
)
from trigger.start import start_once


def _reject(logger: Logger, outcome: Outcome, rejection: Rejection) -> None:
    logger.warning(
        "Rejected S3 object key",
        extra={
            "bucket": rejection.bucket,
            "key": rejection.key,
            "reason": rejection.reason,
            "event_time": rejection.event_time,
        },
    )
    outcome.rejected.append(rejection)


def _decoded_for_display(raw_key: str) -> str:
    try:
        return decode_s3_key(raw_key)
    except InvalidKeyError:
        return raw_key


def process_record(record: Mapping[str, Any], run: Run, outcome: Outcome) -> None:
    config, logger = run.config, run.logger
    try:
        event = parse_record(record)
    except MalformedRecordError as err:
        _reject(logger, outcome, Rejection(err.bucket, err.key, err.reason, err.event_time))
        return
    problems = origin_problems(record, event.bucket, config)
    if problems:
        reason = "; ".join(problems)
        _reject(
            logger,
            outcome,
            Rejection(event.bucket, _decoded_for_display(event.raw_key), reason, event.event_time),
        )
        return
    try:
        key = validate_key(decode_s3_key(event.raw_key))
    except InvalidKeyError as err:
        _reject(logger, outcome, Rejection(event.bucket, err.key, err.reason, event.event_time))
        return
    if is_folder_marker(key, event.size):
        logger.info("Ignoring folder marker", extra={"bucket": event.bucket, "key": key})
        outcome.folder_markers += 1
        return

    name = execution_name(event.bucket, key, event.version_id, event.sequencer)
    log_fields = {"bucket": event.bucket, "key": key, "execution_name": name}
    result = start_once(run, name, event.with_key(key), log_fields)
    if result.status == "failed":
        outcome.failed.append(FailedStart(key=key, execution_name=name, error_code=result.error_code or ""))
        return
    outcome.executions.append(name)
    (outcome.started if result.status == "started" else outcome.duplicates).append(name)


def process_records(records: list[object] | None, run: Run) -> Outcome:
    """Handle the records of one S3 event notification (None: an ``s3:TestEvent``)."""
    outcome, logger = Outcome(), run.logger
    if records is None:
        logger.info(f"Ignoring S3's {S3_TEST_EVENT}")
        outcome.ignored += 1
        return outcome
    for record in records:
        if not is_object_created(record):
            event_name = record.get("eventName") if isinstance(record, Mapping) else None
            logger.info(
                "Ignoring record that is not an ObjectCreated event", extra={"event_name": event_name}
            )
            outcome.ignored += 1
            continue
        process_record(record, run, outcome)
    return outcome


def process_body(message_id: str, body: object, run: Run) -> Outcome:
    """Handle one queue message's body; an invalid body is an outcome (deleted after the alert)."""
    try:
        records = s3_event_records(parse_body(body))
    except InvalidMessageError as err:
        run.logger.warning("Invalid message: not an S3 event notification", extra={"reason": err.reason})
        shown = body if isinstance(body, str) else json.dumps(body, default=repr)
        return Outcome(invalid=[InvalidMessage(message_id=message_id, reason=err.reason, body=shown)])
    return process_records(records, run)


def handle_message(record: SQSRecord, run: Run) -> Outcome:
    """Powertools' record handler: raising reports the message failed (it comes back)."""
    message_id, logger = record.message_id, run.logger
    with logger.append_context_keys(message_id=message_id):
        remaining = run.clock.remaining_ms()
        if remaining < run.config.deadline_margin_ms:
            run.deferred.append(message_id)
            raise DeadlineDeferredError(remaining, run.config.deadline_margin_ms)
        try:
            outcome = process_body(message_id, record.get("body"), run)
        except Exception:
            logger.exception("Unexpected error; the message comes back after its visibility timeout")
            raise
        run.outcomes[message_id] = outcome
        if outcome.failed:
            raise MessageFailedError(outcome.failed)
        return outcome
