"""Drive a deployed pipeline from outside, as a user would: upload, then observe.

Shared by ``make demo``, the end-to-end tests and ``make iam-proof``, on any backend (the
embedded emulator, MiniStack, real AWS): it speaks only AWS APIs. Alerts are observed through an
SQS queue subscribed to the alert topic (with the queue policy AWS requires for that); executions
are found by the key in their input, since their names are the trigger's business.

Failures are made through IAM, which works wherever IAM is enforced (MiniStack with
``AUTH=true``, AWS): :meth:`Pipeline.denied` attaches an explicit Deny of one action to the role of
one function and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config

T = TypeVar("T")
REGION = "eu-central-1"
FINAL_STATES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class TimedOut(AssertionError):
    """What was waited for did not happen in time; the message says what."""


TIMEOUT_SCALE = float(os.environ.get("E2E_TIMEOUT_SCALE", "1") or 1)
"""Every wait's timeout is multiplied by this: ``make e2e-aws`` sets it for AWS's real latencies (an
S3 notification can take up to a minute there, an IAM change seconds)."""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.25) -> T:
    """Call probe until it returns something truthy; raise TimedOut naming `what` otherwise."""
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def delete_every_version(s3: Any, bucket: str) -> int:
    """Delete every object version and delete marker of ``bucket``; returns how many."""
    deleted = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        objects = [
            {"Key": entry["Key"], "VersionId": entry["VersionId"]}
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(objects), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True})
        deleted += len(objects)
    return deleted


@dataclass
class Alert:
    subject: str
    message: str

    def json(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.message)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None


@dataclass
class Pipeline:
    """Clients for one deployed stack plus a queue that receives its alerts."""

    endpoint: str | None  # None: real AWS (make e2e-aws)
    outputs: dict[str, str]
    region: str = REGION
    ca_bundle: Path | None = None  # an endpoint with its own certificate (MiniStack's TLS)
    # The emulators' root key; an IAM user's to act as one; None: the standard credential chain.
    credentials: tuple[str, str] | None = ("test", "test")
    clients: dict[str, Any] = field(default_factory=dict)
    alert_queue_url: str = ""
    # Seconds IAM takes to apply a policy change (0 on the emulators; AWS: seconds, not atomic).
    iam_settle: float = 0.0

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.credentials[0] if self.credentials else None,
                aws_secret_access_key=self.credentials[1] if self.credentials else None,
                verify=str(self.ca_bundle) if self.ca_bundle else None,
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120),
            )
        return self.clients[service]

    def as_user(self, credentials: tuple[str, str]) -> Pipeline:
        """The same stack, with clients that act as the IAM user holding `credentials`."""
        return Pipeline(
            self.endpoint,
            self.outputs,
            self.region,
            self.ca_bundle,
            credentials=credentials,
            iam_settle=self.iam_settle,
        )

    # --- setup ---------------------------------------------------------------------------------
    def subscribe_alerts(
        self, queue_name: str = "pipeline-alerts-observer", tags: dict[str, str] | None = None
    ) -> str:
        sqs = self.client("sqs")
        self.alert_queue_url = sqs.create_queue(QueueName=queue_name, tags=tags or {})["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.alert_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        topic_arn = self.outputs["sns_topic_arn"]
        # SNS delivers to a queue only if the queue's policy lets the topic send (as on AWS).
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AlertTopicDelivers",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=self.alert_queue_url, Attributes={"Policy": json.dumps(policy)})
        self.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return self.alert_queue_url

    # --- acting --------------------------------------------------------------------------------
    def upload(self, key: str, body: bytes = b"hello\n") -> None:
        """PutObject with SSE-KMS and the bucket's own key named by its ARN.

        One of the forms the bucket policy lets through (the key ARN or key id; or no SSE header,
        and default encryption applies the key). ``aws:kms`` without a key id would mean the
        AWS-managed ``aws/s3`` key on AWS, which the policy refuses.
        """
        self.client("s3").put_object(
            Bucket=self.outputs["s3_bucket_name"],
            Key=key,
            Body=body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=self.outputs["kms_s3_key_arn"],
        )

    def empty_bucket(self) -> int:
        """Delete every object version and delete marker of the upload bucket; returns how many."""
        return delete_every_version(self.client("s3"), self.outputs["s3_bucket_name"])

    def role_of(self, function_output: str) -> str:
        """The execution role name of the function named by an output (e.g. writer_lambda_name)."""
        config = self.client("lambda").get_function_configuration(FunctionName=self.outputs[function_output])
        return str(config["Role"]).rsplit("/", 1)[-1]

    @contextlib.contextmanager
    def denied(self, function_output: str, action: str, resource: str = "*") -> Iterator[str]:
        """An explicit Deny of `action` on the function's role while the block runs (IAM, not faults).

        Works wherever IAM is enforced (MiniStack with AUTH=true, AWS; IAM changes can take a few
        seconds to apply there). Yields the role name; the inline policy is removed afterwards.
        """
        iam = self.client("iam")
        role = self.role_of(function_output)
        name = f"devkit-deny-{action.replace(':', '-')}-{uuid.uuid4().hex[:6]}"
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "DevkitDeny", "Effect": "Deny", "Action": action, "Resource": resource}],
        }
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
        time.sleep(self.iam_settle)
        try:
            yield role
        finally:
            iam.delete_role_policy(RoleName=role, PolicyName=name)
            time.sleep(self.iam_settle)

    def run_schedule_soon(self, rule: str) -> Callable[[], None]:
        """Make the schedule rule due within a minute (rate(1 minute)); returns the undo.

        AWS (and MiniStack) then run the rule's targets as the schedule would, through the deployed
        rule, target and permission. The returned function puts the rule's own schedule back.
        """
        events = self.client("events")
        original = events.describe_rule(Name=rule)
        keep = {k: original[k] for k in ("Description", "State", "RoleArn") if original.get(k)}
        events.put_rule(Name=rule, ScheduleExpression="rate(1 minute)", **keep)

        def restore() -> None:
            events.put_rule(Name=rule, ScheduleExpression=original["ScheduleExpression"], **keep)

        return restore

    def invoke_monitor(self) -> dict[str, Any]:
        response = self.client("lambda").invoke(
            FunctionName=self.outputs["lambda_security_monitor_function_name"],
            InvocationType="RequestResponse",
        )
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise AssertionError(f"the security monitor failed: {payload}")
        return payload

    # --- observing -----------------------------------------------------------------------------
    @property
    def express(self) -> bool:
        """An EXPRESS workflow (output workflow_type): its executions exist only in its log group."""
        return self.outputs.get("workflow_type", "STANDARD") == "EXPRESS"

    def execution_log(self) -> dict[str, list[dict[str, Any]]]:
        """The state machine's log group as AWS writes it, history events by execution ARN.

        For an EXPRESS workflow this is all there is (ListExecutions/DescribeExecution refuse it);
        the stack must log at level ALL with include_execution_data to show inputs and outputs.
        """
        logs = self.client("logs")
        by_execution: dict[str, list[dict[str, Any]]] = {}
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=self.outputs["state_machine_log_group_name"]
        )
        for page in pages:
            for event in page["events"]:
                try:
                    record = json.loads(event["message"])
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict) and record.get("execution_arn"):
                    by_execution.setdefault(str(record["execution_arn"]), []).append(record)
        for records in by_execution.values():
            records.sort(key=lambda record: int(record.get("id") or 0))
        return by_execution

    @staticmethod
    def _logged_execution(execution_arn: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        """What DescribeExecution would say, rebuilt from an execution's log records."""
        final = {
            "ExecutionSucceeded": "SUCCEEDED",
            "ExecutionFailed": "FAILED",
            "ExecutionTimedOut": "TIMED_OUT",
            "ExecutionAborted": "ABORTED",
        }
        # arn:<partition>:states:<region>:<account>:express:<state machine>:<name>:<id>
        parts = execution_arn.split(":")
        execution: dict[str, Any] = {
            "executionArn": execution_arn,
            "name": parts[7] if len(parts) > 7 else "",
            "status": "RUNNING",
        }
        for record in records:
            details = record.get("details") or {}
            if record["type"] == "ExecutionStarted":
                execution["startDate"] = datetime.fromtimestamp(int(record["event_timestamp"]) / 1000, UTC)
                if "input" in details:
                    execution["input"] = details["input"]
            elif record["type"] in final:
                execution["status"] = final[record["type"]]
                if "output" in details:
                    execution["output"] = details["output"]
        return execution

    def executions(self) -> list[dict[str, Any]]:
        if self.express:
            return [self._logged_execution(arn, records) for arn, records in self.execution_log().items()]
        sfn = self.client("stepfunctions")
        found: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.outputs["step_function_arn"]
        ):
            found.extend(page["executions"])
        return found

    def describe(self, execution_arn: str) -> dict[str, Any]:
        if self.express:
            return self._logged_execution(execution_arn, self.execution_log().get(execution_arn, []))
        return self.client("stepfunctions").describe_execution(executionArn=execution_arn)

    def executions_for(self, key: str, *, prefix: bool = False) -> list[dict[str, Any]]:
        """Described executions whose input key is `key` (or starts with it, with prefix=True)."""
        listed = self.executions()
        described = listed if self.express else [self.describe(e["executionArn"]) for e in listed]
        found = []
        for execution in described:
            record_key = str(json.loads(execution.get("input") or "{}").get("key", ""))
            if record_key == key or (prefix and record_key.startswith(key)):
                found.append(execution)
        return found

    def wait_for_final_execution(self, key: str, timeout: float = 90.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            done = [d for d in self.executions_for(key) if d["status"] in FINAL_STATES]
            return done[0] if done else None

        return wait_for(f"a finished execution for {key!r}", probe, timeout)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's history events (EXPRESS: its log records, ``details`` holding what the
        API's ``<type>EventDetails`` would)."""
        if self.express:
            return self.execution_log().get(execution_arn, [])
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def writer_attempts(self, execution_arn: str) -> int:
        """How many times the state machine called the writer (Lambda tasks) in this execution."""
        return sum(
            1
            for e in self.history(execution_arn)
            if e["type"] == "LambdaFunctionScheduled"
            or (
                e["type"] == "TaskScheduled"
                and (e.get("taskScheduledEventDetails") or e.get("details") or {}).get("resourceType")
                == "lambda"
            )
        )

    def rows_for(self, key: str) -> list[dict[str, Any]]:
        dynamodb = self.client("dynamodb")
        response = dynamodb.query(
            TableName=self.outputs["dynamodb_table_name"],
            KeyConditionExpression="Filename = :f",
            ExpressionAttributeValues={":f": {"S": key}},
            ConsistentRead=True,
        )
        return response["Items"]

    def row_count(self) -> int:
        dynamodb = self.client("dynamodb")
        count = 0
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=self.outputs["dynamodb_table_name"], Select="COUNT"
        ):
            count += page["Count"]
        return count

    def queue_depth(self, output: str = "upload_queue_url") -> dict[str, int]:
        """Messages of a pipeline queue: ``visible``, ``in_flight`` (received, not yet deleted), ``delayed``."""
        names = {
            "visible": "ApproximateNumberOfMessages",
            "in_flight": "ApproximateNumberOfMessagesNotVisible",
            "delayed": "ApproximateNumberOfMessagesDelayed",
        }
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs[output], AttributeNames=list(names.values())
        )["Attributes"]
        return {label: int(attributes.get(name, 0)) for label, name in names.items()}

    def wait_for_queue_drained(self, timeout: float = 120.0) -> None:
        """Until the upload queue holds nothing: every notification consumed (or dead-lettered)."""
        wait_for(
            "the upload queue to drain",
            lambda: not any(self.queue_depth().values()),
            timeout=timeout,
            interval=0.5,
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """The S3 events in the dead-letter queue, left there (received with visibility 0)."""
        sqs, url = self.client("sqs"), self.outputs["dead_letter_queue_url"]
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(10):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages or all(m["MessageId"] in seen for m in messages):
                break
            seen.update({m["MessageId"]: json.loads(m["Body"]) for m in messages})
        return list(seen.values())

    def redrive_dead_letters(self) -> str:
        """What README's one command does: move the dead-letter queue back into the upload queue."""
        response = self.client("sqs").start_message_move_task(SourceArn=self.outputs["dead_letter_queue_arn"])
        return str(response["TaskHandle"])

    def alerts(self, wait_seconds: int = 1) -> list[Alert]:
        """Every alert delivered since the last call (the queue is drained)."""
        sqs = self.client("sqs")
        found: list[Alert] = []
        while True:
            response = sqs.receive_message(
                QueueUrl=self.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            messages = response.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append(Alert(envelope.get("Subject") or "", envelope.get("Message") or ""))
                sqs.delete_message(QueueUrl=self.alert_queue_url, ReceiptHandle=message["ReceiptHandle"])

    def wait_for_alerts(
        self, predicate: Callable[[Alert], bool], count: int = 1, timeout: float = 60.0
    ) -> list[Alert]:
        """Drain alerts until `count` of them satisfy predicate; returns every alert drained."""
        seen: list[Alert] = []

        def probe() -> list[Alert] | None:
            seen.extend(self.alerts())
            return seen if sum(map(predicate, seen)) >= count else None

        return wait_for(f"{count} matching alert(s)", probe, timeout, interval=0.1)
