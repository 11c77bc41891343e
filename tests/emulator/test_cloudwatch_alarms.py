"""CloudWatch alarms on SQS metrics: evaluated by the emulator, notifications through SNS -> SQS.

The module's emulator evaluates every 0.3 s. Tests wait for notifications by polling the subscriber
queue (with timeouts); "no further notification" is checked after the evaluator has run several more
times, never by timing.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from emulator_helpers import REGION, assert_nothing_left, child_pids, make_queue

from emulator import AdminClient, Emulator
from emulator.__main__ import main as cli_main
from emulator.cloudwatch_alarms import AlarmEvaluator, region_display_name

pytestmark = pytest.mark.emulator
INTERVAL = 0.3
ACCOUNT = "123456789012"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """This module's own emulator: alarms evaluated every INTERVAL seconds."""
    threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}
    children_before = child_pids()
    log_path = tmp_path_factory.mktemp("alarms") / "emulator.log"
    emu = Emulator(port=0, log_path=log_path, alarm_interval=INTERVAL)
    emu.start()
    port = emu.port
    try:
        yield emu
    finally:
        emu.stop()
    # no evaluator thread (nor anything else) is left after stop
    assert_nothing_left(threads_before, children_before, port)


@pytest.fixture
def alerts(aws_client: Callable[[str], Any], request: pytest.FixtureRequest) -> tuple[str, str]:
    """An SNS topic subscribed by an SQS queue: (topic ARN, subscriber queue URL)."""
    name = f"alerts-{request.node.name[:40].replace('[', '-').strip(']')}"
    topic_arn = aws_client("sns").create_topic(Name=name)["TopicArn"]
    url, arn = make_queue(aws_client("sqs"), f"{name}-inbox")
    aws_client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return topic_arn, url


def put_alarm(
    aws_client: Callable[[str], Any],
    name: str,
    queue_name: str,
    topic_arn: str,
    metric: str = "ApproximateNumberOfMessagesVisible",
    threshold: float = 0,
    description: str = "messages reached the dead-letter queue",
) -> None:
    aws_client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        AlarmDescription=description,
        Namespace="AWS/SQS",
        MetricName=metric,
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic_arn],
        OKActions=[topic_arn],
    )


def notifications(sqs: Any, url: str, expected: int, timeout: float = 15) -> list[dict[str, Any]]:
    """Up to ``expected`` SNS envelopes from the subscriber queue, each with its parsed message."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in batch.get("Messages", []):
            envelope = json.loads(message["Body"])
            envelope["Alarm"] = json.loads(envelope["Message"])
            found.append(envelope)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def evaluated_more(emulator: Emulator, rounds: int = 3, timeout: float = 15) -> None:
    """Wait until the background evaluator has run ``rounds`` more times."""
    target = emulator.alarm_status()["evaluations"] + rounds
    deadline = time.monotonic() + timeout
    while emulator.alarm_status()["evaluations"] < target:
        assert time.monotonic() < deadline, "the alarm evaluator does not run"
        time.sleep(0.05)


def describe(aws_client: Callable[[str], Any], name: str) -> dict[str, Any]:
    [alarm] = aws_client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(alarm)


def test_a_message_in_the_dead_letter_queue_raises_one_alarm_and_its_removal_an_ok(
    emulator: Emulator, aws_client: Callable[[str], Any], alerts: tuple[str, str]
) -> None:
    topic_arn, inbox = alerts
    sqs = aws_client("sqs")
    dlq_url, _ = make_queue(sqs, "alarms-uploads-dlq")
    put_alarm(aws_client, "alarms-uploads-dlq-not-empty", "alarms-uploads-dlq", topic_arn)

    # a healthy new alarm: INSUFFICIENT_DATA -> OK, notified to ok_actions (as CloudWatch does); no ALARM
    [first] = notifications(sqs, inbox, 1)
    assert (first["Alarm"]["OldStateValue"], first["Alarm"]["NewStateValue"]) == ("INSUFFICIENT_DATA", "OK")
    assert first["Subject"] == 'OK: "alarms-uploads-dlq-not-empty" in US East (N. Virginia)'

    sqs.send_message(QueueUrl=dlq_url, MessageBody="poison")
    [alarm] = notifications(sqs, inbox, 1)
    assert alarm["Subject"] == 'ALARM: "alarms-uploads-dlq-not-empty" in US East (N. Virginia)'
    message = alarm["Alarm"]
    described = describe(aws_client, "alarms-uploads-dlq-not-empty")
    assert message["AlarmName"] == "alarms-uploads-dlq-not-empty"
    assert message["AlarmDescription"] == "messages reached the dead-letter queue"
    assert message["AWSAccountId"] == ACCOUNT
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 datapoint [1.0 (")
    assert message["NewStateReason"].endswith("] was greater than the threshold (0.0).")
    assert TIMESTAMP.match(message["StateChangeTime"]), message["StateChangeTime"]
    assert message["Region"] == "US East (N. Virginia)"
    assert message["AlarmArn"] == described["AlarmArn"]
    assert message["Trigger"] == message["Trigger"] | {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Namespace": "AWS/SQS",
        "StatisticType": "Statistic",
        "Statistic": "MAXIMUM",
        "Dimensions": [{"value": "alarms-uploads-dlq", "name": "QueueName"}],
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 0.0,
        "TreatMissingData": "notBreaching",
    }
    assert described["StateValue"] == "ALARM"
    assert described["StateReason"] == message["NewStateReason"]
    assert json.loads(described["StateReasonData"])["recentDatapoints"] == [1.0]

    # still breaching: no second notification, however often it is evaluated
    assert [t for t in emulator.evaluate_alarms() if t["alarm"] == "alarms-uploads-dlq-not-empty"] == []
    evaluated_more(emulator)
    assert notifications(sqs, inbox, 1, timeout=1) == []

    # re-drive (receive and delete): back to OK, notified to ok_actions
    [received] = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=received["ReceiptHandle"])
    [ok] = notifications(sqs, inbox, 1)
    assert (ok["Alarm"]["OldStateValue"], ok["Alarm"]["NewStateValue"]) == ("ALARM", "OK")
    assert ok["Alarm"]["NewStateReason"].endswith("] was not greater than the threshold (0.0).")
    assert describe(aws_client, "alarms-uploads-dlq-not-empty")["StateValue"] == "OK"


def test_the_age_alarm_fires_once_the_oldest_message_is_older_than_the_threshold(
    emulator: Emulator, aws_client: Callable[[str], Any], alerts: tuple[str, str]
) -> None:
    topic_arn, inbox = alerts
    sqs = aws_client("sqs")
    queue_url, _ = make_queue(sqs, "alarms-age-uploads")
    put_alarm(
        aws_client,
        "alarms-age-falling-behind",
        "alarms-age-uploads",
        topic_arn,
        metric="ApproximateAgeOfOldestMessage",
        threshold=1,
        description="the oldest upload waits too long",
    )
    assert [n["Alarm"]["NewStateValue"] for n in notifications(sqs, inbox, 1)] == ["OK"]

    sqs.send_message(QueueUrl=queue_url, MessageBody="waiting")
    [alarm] = notifications(sqs, inbox, 1)
    assert alarm["Alarm"]["NewStateValue"] == "ALARM"
    assert alarm["Alarm"]["Trigger"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    age = float(re.search(r"\[([\d.]+) \(", alarm["Alarm"]["NewStateReason"]).group(1))
    assert age > 1

    sqs.purge_queue(QueueUrl=queue_url)
    [ok] = notifications(sqs, inbox, 1)
    assert ok["Alarm"]["NewStateValue"] == "OK"


def test_a_burst_below_the_age_threshold_raises_no_alarm(
    emulator: Emulator, aws_client: Callable[[str], Any], alerts: tuple[str, str]
) -> None:
    topic_arn, inbox = alerts
    sqs = aws_client("sqs")
    queue_url, _ = make_queue(sqs, "alarms-burst-uploads")
    put_alarm(
        aws_client,
        "alarms-burst-falling-behind",
        "alarms-burst-uploads",
        topic_arn,
        metric="ApproximateAgeOfOldestMessage",
        threshold=300,
    )
    for batch in range(3):
        entries = [{"Id": str(i), "MessageBody": f"upload-{batch}-{i}"} for i in range(10)]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    evaluated_more(emulator)
    assert [t for t in emulator.evaluate_alarms() if t["alarm"] == "alarms-burst-falling-behind"] == []
    states = [n["Alarm"]["NewStateValue"] for n in notifications(sqs, inbox, 2, timeout=2)]
    assert states == ["OK"]
    assert describe(aws_client, "alarms-burst-falling-behind")["StateValue"] == "OK"


def test_alarms_the_emulator_has_no_metrics_for_are_left_alone(
    emulator: Emulator, aws_client: Callable[[str], Any], alerts: tuple[str, str]
) -> None:
    topic_arn, inbox = alerts
    aws_client("cloudwatch").put_metric_alarm(
        AlarmName="alarms-lambda-errors",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "trigger"}],
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic_arn],
        OKActions=[topic_arn],
    )
    put_alarm(aws_client, "alarms-no-such-queue", "alarms-never-created", topic_arn)
    evaluated_more(emulator)
    assert not any(t["alarm"].startswith("alarms-lambda") for t in emulator.evaluate_alarms())
    for name in ("alarms-lambda-errors", "alarms-no-such-queue"):
        described = describe(aws_client, name)
        assert described["StateValue"] == "INSUFFICIENT_DATA"  # CloudWatch's initial state
        assert described["StateReason"] == "Unchecked: Initial alarm creation"
    status = {a["alarm"]: a for a in emulator.alarm_status()["alarms"]}
    assert status["alarms-lambda-errors"]["evaluated"] is False
    assert "AWS/Lambda" in status["alarms-lambda-errors"]["skipped"]
    assert "does not exist" in status["alarms-no-such-queue"]["skipped"]
    assert notifications(aws_client("sqs"), inbox, 1, timeout=1) == []


def test_set_alarm_state_changes_the_state_and_runs_its_actions(
    emulator: Emulator, aws_client: Callable[[str], Any], alerts: tuple[str, str]
) -> None:
    topic_arn, inbox = alerts
    cloudwatch = aws_client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="alarms-states-failed",
        Namespace="AWS/States",
        MetricName="ExecutionsFailed",
        Dimensions=[{"Name": "StateMachineArn", "Value": "arn:aws:states:us-east-1:123456789012:x"}],
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[topic_arn],
    )
    cloudwatch.set_alarm_state(AlarmName="alarms-states-failed", StateValue="ALARM", StateReason="testing")
    described = describe(aws_client, "alarms-states-failed")
    assert (described["StateValue"], described["StateReason"]) == ("ALARM", "testing")
    [alarm] = notifications(aws_client("sqs"), inbox, 1)
    assert alarm["Alarm"]["NewStateReason"] == "testing"
    assert alarm["Alarm"]["OldStateValue"] == "INSUFFICIENT_DATA"
    # an update by PutMetricAlarm keeps the state (moto would restart it)
    cloudwatch.put_metric_alarm(
        AlarmName="alarms-states-failed",
        AlarmDescription="updated",
        Namespace="AWS/States",
        MetricName="ExecutionsFailed",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    described = describe(aws_client, "alarms-states-failed")
    assert (described["StateValue"], described["AlarmDescription"]) == ("ALARM", "updated")


def test_the_admin_api_and_the_cli_evaluate_now(
    emulator: Emulator,
    aws_client: Callable[[str], Any],
    alerts: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic_arn, inbox = alerts
    make_queue(aws_client("sqs"), "alarms-admin-dlq")
    client = AdminClient(emulator.endpoint_url)
    assert client.health()["alarm_interval"] == INTERVAL
    emulator.alarm_evaluator.stop()  # only the admin call evaluates, so it reports the transition
    try:
        assert not any(t.name == "emulator-alarms" for t in threading.enumerate())
        put_alarm(aws_client, "alarms-admin-dlq-not-empty", "alarms-admin-dlq", topic_arn)
        transitions = [t for t in client.evaluate_alarms() if t["alarm"] == "alarms-admin-dlq-not-empty"]
        assert [(t["old_state"], t["new_state"], t["value"], t["notified"]) for t in transitions] == [
            ("INSUFFICIENT_DATA", "OK", 0.0, [topic_arn])
        ]
        assert transitions[0]["queue"] == "alarms-admin-dlq"
        assert cli_main(["alarms", "--evaluate", "--endpoint-url", emulator.endpoint_url]) == 0
        assert json.loads(capsys.readouterr().out) == {"transitions": []}
    finally:
        emulator.alarm_evaluator.start()
    assert any(t.name == "emulator-alarms" for t in threading.enumerate())
    assert cli_main(["alarms", "--endpoint-url", emulator.endpoint_url]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["interval"] == INTERVAL
    assert status["running"] is True
    [mine] = [a for a in status["alarms"] if a["alarm"] == "alarms-admin-dlq-not-empty"]
    assert mine | {"state": "OK", "evaluated": True, "value": 0.0} == mine
    assert [n["Alarm"]["NewStateValue"] for n in notifications(aws_client("sqs"), inbox, 1)] == ["OK"]


def evaluator_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "emulator-alarms"}


def test_an_evaluator_leaves_no_thread_behind() -> None:
    """Without an emulator: start/stop joins the thread; interval 0 starts none."""
    before = evaluator_threads()  # the module emulator's, if it runs
    evaluator = AlarmEvaluator(interval=3600)
    evaluator.start()
    assert evaluator.running
    evaluator.stop()
    assert not evaluator.running
    on_demand = AlarmEvaluator(interval=0)
    on_demand.start()
    assert not on_demand.running
    assert evaluator_threads() == before
    with pytest.raises(ValueError, match="alarm_interval"):
        AlarmEvaluator(interval=-1)


def test_regions_are_named_as_cloudwatch_names_them() -> None:
    assert region_display_name("eu-central-1") == "EU (Frankfurt)"
    assert region_display_name(REGION) == "US East (N. Virginia)"
    assert region_display_name("ap-southeast-2") == "Asia Pacific (Sydney)"
