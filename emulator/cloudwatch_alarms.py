"""CloudWatch metric alarms on SQS queues, evaluated as CloudWatch would (moto only stores alarms).

moto 5.2.5 keeps every alarm in ``OK`` forever (only ``SetAlarmState`` changes it) and never runs an
alarm action, so a stack's "the dead-letter queue is not empty" alarm could never reach its SNS topic.
Here:

* :class:`AlarmEvaluator` (started and stopped with the :class:`~emulator.server.Emulator`, every
  ``alarm_interval`` seconds, or now through ``POST /_emulator/alarms/evaluate``) evaluates every
  metric alarm in namespace ``AWS/SQS`` whose ``QueueName`` dimension names an existing queue. The
  metric's value is read from moto's queue at that moment: **the instantaneous value stands for the
  period's statistic** (Maximum, Sum, Average, ...) and for every one of the ``EvaluationPeriods``
  (the emulator keeps no metric history). On a state change it updates the alarm in moto
  (``StateValue``, ``StateReason``, ``StateReasonData``, ``StateUpdatedTimestamp``) and publishes
  CloudWatch's notification to the SNS topics among the new state's actions, in-process through
  moto's SNS backend, so SNS -> SQS/Lambda subscriptions receive it. Other actions (Auto Scaling,
  EC2, Lambda, Systems Manager) are logged and not run.
* The patches of :data:`PATCHES` start a new alarm in ``INSUFFICIENT_DATA`` and keep the state of an
  alarm updated by ``PutMetricAlarm`` (CloudWatch does both; moto restarts it in ``OK``), and make
  ``SetAlarmState`` run the new state's actions, as CloudWatch does.

Alarms of other namespaces (``AWS/Lambda``, ``AWS/States``, custom metrics), metric-math and
anomaly-detection alarms are not evaluated: the emulator emits no such metrics, and their state stays
whatever it is. Metrics: ``ApproximateNumberOfMessagesVisible``, ``...NotVisible``, ``...Delayed`` and
``ApproximateAgeOfOldestMessage`` (whole seconds of the oldest non-deleted, non-delayed message; as in
SQS, a message received three times or more no longer counts while a younger one exists).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import operator
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from emulator.patch import Patch

LOG = logging.getLogger("emulator.alarms")
SQS_NAMESPACE = "AWS/SQS"
DEFAULT_INTERVAL = 5.0
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
# comparison operator -> (breaching test, the words CloudWatch uses in StateReason)
COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (operator.gt, "greater than"),
    "GreaterThanOrEqualToThreshold": (operator.ge, "greater than or equal to"),
    "LessThanThreshold": (operator.lt, "less than"),
    "LessThanOrEqualToThreshold": (operator.le, "less than or equal to"),
}
_STATISTIC_NAMES = {"SampleCount": "SAMPLE_COUNT"}
# CloudWatch's notifications still name the EU regions as before the 2023 renaming ("EU (Ireland)")
_LEGACY_REGION_NAMES = {
    "eu-west-1": "EU (Ireland)",
    "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)",
    "eu-central-1": "EU (Frankfurt)",
    "eu-north-1": "EU (Stockholm)",
    "eu-south-1": "EU (Milan)",
}
# SQS stops counting a message for the age metric once it was received this often (it is "moved to
# the back of the queue"), unless no other message is left
_AGE_RECEIVE_LIMIT = 3

# Alarm state is read and written by the evaluator thread, PutMetricAlarm and SetAlarmState requests
_STATE_LOCK = threading.RLock()


# ---------------------------------------------------------------------------- SQS metrics


def _queue_metric(queue: Any, metric_name: str, now_ms: float) -> float | None:
    """The metric's value now, from moto's queue; ``None`` for a metric the emulator does not compute."""
    messages = list(queue._messages)  # a snapshot: request threads append and replace the list
    if metric_name == "ApproximateNumberOfMessagesVisible":
        return float(sum(1 for m in messages if m.visible and not m.delayed))
    if metric_name == "ApproximateNumberOfMessagesNotVisible":
        return float(sum(1 for m in messages if not m.visible))
    if metric_name == "ApproximateNumberOfMessagesDelayed":
        return float(sum(1 for m in messages if m.delayed))
    if metric_name == "ApproximateAgeOfOldestMessage":
        waiting = [m for m in messages if m.sent_timestamp is not None and not m.delayed]
        counted = [m for m in waiting if m.approximate_receive_count < _AGE_RECEIVE_LIMIT] or waiting
        if not counted:
            return 0.0
        oldest = min(m.sent_timestamp for m in counted)
        return float(max(0, int((now_ms - oldest) // 1000)))
    return None


def _alarm_queue(account_id: str, region: str, alarm: Any) -> tuple[Any, str | None]:
    """The queue the alarm watches, or ``(None, why it is not evaluated)``."""
    from moto.sqs.models import sqs_backends

    if alarm.rule is not None or alarm.metric_data_queries:
        return None, "composite and metric-math alarms are not evaluated"
    if alarm.namespace != SQS_NAMESPACE:
        return None, f"namespace {alarm.namespace}: the emulator emits no such metrics"
    if alarm.comparison_operator not in COMPARISONS or alarm.threshold is None:
        return None, f"comparison operator {alarm.comparison_operator} is not evaluated"
    names = [d.value for d in alarm.dimensions if d.name == "QueueName"]
    if len(names) != 1 or len(alarm.dimensions) != 1:
        return None, "an AWS/SQS metric has exactly one dimension, QueueName"
    backend = (sqs_backends.get(account_id) or {}).get(region)
    queue = backend.queues.get(names[0]) if backend is not None else None
    if queue is None:
        return None, f"queue {names[0]} does not exist"
    return queue, None


# ---------------------------------------------------------------------------- state and messages


def _timestamp(moment: dt.datetime) -> str:
    """CloudWatch's notation: ``2024-05-14T10:32:08.409+0000`` (moto keeps naive UTC datetimes)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _decide(alarm: Any, value: float, now: dt.datetime) -> tuple[str, str, str]:
    """The state the value puts the alarm in, with CloudWatch's StateReason and StateReasonData."""
    breaching, words = COMPARISONS[alarm.comparison_operator]
    threshold = float(alarm.threshold)
    period = int(alarm.period or 60)
    start = dt.datetime.fromtimestamp(
        (now.replace(tzinfo=dt.UTC).timestamp() // period) * period, dt.UTC
    ).replace(tzinfo=None)
    crossed = breaching(value, threshold)
    reason = (
        f"Threshold Crossed: 1 datapoint [{value!r} ({start.strftime('%d/%m/%y %H:%M:%S')})] was"
        f"{'' if crossed else ' not'} {words} the threshold ({threshold!r})."
    )
    reason_data = {
        "version": "1.0",
        "queryDate": _timestamp(now),
        "startDate": _timestamp(start),
        "statistic": alarm.statistic or alarm.extended_statistic,
        "period": period,
        "recentDatapoints": [value],
        "threshold": threshold,
        "evaluatedDatapoints": [{"timestamp": _timestamp(start), "sampleCount": 1.0, "value": value}],
    }
    return ("ALARM" if crossed else "OK"), reason, json.dumps(reason_data, separators=(",", ":"))


def region_display_name(region: str) -> str:
    """The region as CloudWatch names it in notifications (``EU (Frankfurt)``)."""
    if region in _LEGACY_REGION_NAMES:
        return _LEGACY_REGION_NAMES[region]
    import botocore.session

    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        described = partition.get("regions", {}).get(region)
        if described and described.get("description"):
            return str(described["description"])
    return region


def _trigger(alarm: Any) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "MetricName": alarm.metric_name,
        "Namespace": alarm.namespace,
        "StatisticType": "ExtendedStatistic" if alarm.extended_statistic else "Statistic",
    }
    if alarm.extended_statistic:
        trigger["ExtendedStatistic"] = alarm.extended_statistic
    else:
        statistic = str(alarm.statistic or "")
        trigger["Statistic"] = _STATISTIC_NAMES.get(statistic, statistic.upper())
    trigger.update(
        {
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": int(alarm.period or 0),
            "EvaluationPeriods": int(alarm.evaluation_periods or 0),
            "ComparisonOperator": alarm.comparison_operator,
            "Threshold": float(alarm.threshold) if alarm.threshold is not None else None,
            "TreatMissingData": alarm.treat_missing_data or "",
            "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
        }
    )
    if alarm.datapoints_to_alarm:
        trigger["DatapointsToAlarm"] = int(alarm.datapoints_to_alarm)
    return trigger


def alarm_message(alarm: Any, account_id: str, old_state: str) -> dict[str, Any]:
    """The JSON CloudWatch publishes to an alarm's SNS topics on a state change."""
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _timestamp(alarm.configuration_updated_timestamp),
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _timestamp(alarm.state_updated_timestamp),
        "Region": region_display_name(alarm.region_name),
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
        "OKActions": list(alarm.ok_actions),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions),
        "Trigger": _trigger(alarm),
    }


def notify(alarm: Any, account_id: str, old_state: str) -> list[str]:
    """Run the actions of the alarm's (new) state: publish to its SNS topics; the topics published to.

    Called outside :data:`_STATE_LOCK`: an SNS -> Lambda subscription runs the function right here,
    and that function may well call CloudWatch.
    """
    from moto.core.exceptions import ServiceException
    from moto.sns.models import sns_backends
    from werkzeug.exceptions import HTTPException  # moto's older errors (JsonRESTError) are these

    if not alarm.actions_enabled:
        return []
    actions = {
        "ALARM": alarm.alarm_actions or [],
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }.get(alarm.state_value, [])
    message = json.dumps(alarm_message(alarm, account_id, old_state), separators=(",", ":"))
    subject = f'{alarm.state_value}: "{alarm.name}" in {region_display_name(alarm.region_name)}'[:100]
    published: list[str] = []
    for arn in actions:
        parts = arn.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            LOG.info("alarm %s: action %s is not run by the emulator (only SNS topics)", alarm.name, arn)
            continue
        try:
            sns_backends[parts[4]][parts[3]].publish(message, arn=arn, subject=subject)
        except (ServiceException, HTTPException, ValueError):
            LOG.warning("alarm %s: could not publish to %s", alarm.name, arn, exc_info=True)
            continue
        published.append(arn)
    LOG.info("alarm %s: %s -> %s, notified %s", alarm.name, old_state, alarm.state_value, published)
    return published


# ---------------------------------------------------------------------------- the evaluator


@dataclass(frozen=True)
class Transition:
    """One alarm state change made by an evaluation (what the admin API returns)."""

    alarm: str
    alarm_arn: str
    account_id: str
    region: str
    metric: str
    queue: str
    value: float
    old_state: str
    new_state: str
    reason: str
    notified: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notified"] = list(self.notified)
        return data


def _iter_alarms() -> Iterator[tuple[str, str, Any]]:
    """(account, region, alarm) of every metric alarm moto holds; snapshots, since requests add some."""
    from moto.cloudwatch.models import cloudwatch_backends

    for account_id, regions in list(cloudwatch_backends.items()):
        for region, backend in list(regions.items()):
            for alarm in list(backend.alarms.values()):
                yield account_id, region, alarm


def _evaluate_one(
    account_id: str, region: str, alarm: Any, now_ms: float
) -> tuple[dict[str, Any], str | None]:
    """Evaluate one alarm: its status line, and its old state if the evaluation changed it."""
    status: dict[str, Any] = {
        "alarm": alarm.name,
        "account_id": account_id,
        "region": region,
        "namespace": alarm.namespace,
        "metric": alarm.metric_name,
    }
    with _STATE_LOCK:
        queue, skipped = _alarm_queue(account_id, region, alarm)
        value = _queue_metric(queue, alarm.metric_name, now_ms) if queue is not None else None
        if queue is not None and value is None:
            skipped = f"metric {alarm.metric_name} is not computed by the emulator"
        if value is None:
            return {**status, "state": alarm.state_value, "evaluated": False, "skipped": skipped}, None
        new_state, reason, reason_data = _decide(alarm, value, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        old_state = alarm.state_value
        if new_state != old_state:
            alarm.update_state(reason, reason_data, new_state)
    status.update({"state": new_state, "evaluated": True, "value": value, "queue": queue.name})
    return status, (old_state if new_state != old_state else None)


class AlarmEvaluator:
    """Evaluates the SQS alarms every ``interval`` seconds on a thread of its own (0: only on demand).

    :meth:`evaluate` is serialized, so the background thread and an admin request never report or
    notify the same transition twice.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            raise ValueError("'alarm_interval' must be a number of seconds >= 0 (0: only on demand)")
        self.interval = float(interval)
        self.evaluations = 0
        self.last: list[dict[str, Any]] = []
        self._evaluate_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None or self.interval == 0:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="emulator-alarms", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; an evaluation under way (and its notifications) finishes first."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                LOG.warning("the alarm evaluator did not stop within %.0f s", timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.evaluate()
            except Exception:  # the next round may succeed; never silent, never the end of the thread
                LOG.exception("alarm evaluation failed")

    def evaluate(self) -> list[Transition]:
        """Evaluate every alarm now; the state changes made (their notifications are sent)."""
        with self._evaluate_lock:
            now_ms = time.time() * 1000
            statuses: list[dict[str, Any]] = []
            transitions: list[Transition] = []
            for account_id, region, alarm in _iter_alarms():
                try:
                    status, old_state = _evaluate_one(account_id, region, alarm, now_ms)
                    statuses.append(status)
                    # notified at once: an error of a later alarm cannot lose this notification
                    notified = notify(alarm, account_id, old_state) if old_state is not None else []
                except Exception:  # one odd alarm (or subscriber) must not stop the others' evaluation
                    LOG.exception("alarm %s: evaluation failed", alarm.name)
                    continue
                if old_state is None:
                    continue
                transitions.append(
                    Transition(
                        *(alarm.name, alarm.alarm_arn, account_id, region, alarm.metric_name),
                        *(status["queue"], status["value"], old_state, status["state"]),
                        *(alarm.state_reason, tuple(notified)),
                    )
                )
            self.evaluations += 1
            self.last = statuses
            return transitions

    def describe(self) -> dict[str, Any]:
        """Settings and every alarm's last evaluation (``GET /_emulator/alarms``)."""
        return {
            "interval": self.interval,
            "running": self.running,
            "evaluations": self.evaluations,
            "alarms": list(self.last),
        }


# ---------------------------------------------------------------------------- patches


def _put_metric_alarm(original: Callable[..., Any]) -> Callable[..., Any]:
    def put_metric_alarm(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name", args[0] if args else None)
        with _STATE_LOCK:
            previous = self.alarms.get(name)
            alarm = original(self, *args, **kwargs)
            if previous is not None and previous is not alarm:
                alarm.state_value = previous.state_value
                alarm.state_reason = previous.state_reason
                alarm.state_reason_data = previous.state_reason_data
                alarm.state_updated_timestamp = previous.state_updated_timestamp
                alarm.history = previous.history
            else:
                alarm.state_value = "INSUFFICIENT_DATA"
        return alarm

    return put_metric_alarm


def _set_alarm_state(original: Callable[..., Any]) -> Callable[..., Any]:
    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        with _STATE_LOCK:
            alarm = self.alarms.get(alarm_name)
            old_state = alarm.state_value if alarm is not None else None
            original(self, alarm_name, reason, reason_data, state_value)
        if alarm is not None and old_state is not None and old_state != state_value:
            notify(alarm, self.account_id, old_state)

    return set_alarm_state


PATCHES = [
    Patch(
        "moto.cloudwatch.models.CloudWatchBackend.put_metric_alarm",
        "moto starts every alarm in OK and restarts an updated one there; CloudWatch starts a new alarm"
        " in INSUFFICIENT_DATA and keeps the state of an alarm that PutMetricAlarm updates",
        _put_metric_alarm,
    ),
    Patch(
        "moto.cloudwatch.models.CloudWatchBackend.set_alarm_state",
        "moto changes the state and runs no action; CloudWatch runs the new state's actions (publishes"
        " the alarm notification to its SNS topics) when SetAlarmState changes the state",
        _set_alarm_state,
    ),
]
