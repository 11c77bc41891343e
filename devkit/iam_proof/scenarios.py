"""The pipeline's scenarios: each a user's action (or a service's, made by the proof:
devkit/iam_proof/acting.py) and what it should lead to, through the AWS APIs only."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from devkit.iam_proof.acting import Acting
from devkit.iam_proof.actor import Acted
from devkit.iam_proof.grants import short
from devkit.iam_proof.policies import Operator
from devkit.ministack import Denial
from devkit.pipeline import FINAL_STATES, Pipeline, TimedOut, wait_for
from scripts.reconcile import Clients, ReconcileError, reconcile

EXEMPTION_TAG = "SecurityScanExemption"


@dataclass
class Outcome:
    ok: bool
    observed: str


class ProofError(RuntimeError):
    """The proof could not put the stack back as it was."""


class Stopped(TimedOut):
    """The proof saw the denial it was looking for: no need to wait for the scenario's end."""


def _never() -> bool:
    return False


@dataclass
class Scenarios:
    """The pipeline's scenarios, each a user's action and what it should lead to (AWS APIs only)."""

    pipeline: Pipeline
    fixtures: dict[str, str] = field(default_factory=dict)
    operators: dict[str, Operator] = field(default_factory=dict)
    stop: Callable[[], bool] = _never  # set by the proof: the denial it looks for has been seen
    admin_keys: list[str] = field(default_factory=list)  # the stack's customer-managed keys
    admin_focus: str = ""  # set by the proof: administer this key only
    key_admin: Any = None  # a KMS client of the key administrator (an IAM user of the proof's own)
    key_admin_arn: str = ""
    trigger_log_group: str = ""
    acting: Acting | None = None  # the services' requests, made by the proof (devkit/iam_proof/acting.py)
    unlogged: list[Denial] = field(default_factory=list)  # denials MiniStack does not log (STS)
    # On AWS (devkit/iam_proof/aws.py): fixtures named and tagged as the run, an account whose own
    # resources the monitor may flag too, and a purge that deletes what is sent in the next 60 s.
    fixture_prefix: str = "proof"
    fixture_tags: dict[str, str] = field(default_factory=dict)
    shared_account: bool = False
    purge_wait: float = 0.0

    def _acted(self, name: str) -> Outcome:
        """One of devkit/iam_proof/acting.py's scenarios: the requests a service makes with a role or
        as itself."""
        if self.acting is None:
            return Outcome(False, "acting is not set up")
        seen: Acted = getattr(self.acting, name)()
        self.unlogged.extend(seen.unlogged)
        return Outcome(seen.ok, seen.describe())

    def as_trigger(self) -> Outcome:
        return self._acted("as_trigger")

    def as_writer(self) -> Outcome:
        return self._acted("as_writer")

    def as_monitor(self) -> Outcome:
        return self._acted("as_monitor")

    def as_state_machine(self) -> Outcome:
        return self._acted("as_state_machine")

    def as_services(self) -> Outcome:
        return self._acted("as_services")

    def as_operator(self) -> Outcome:
        return self._acted("as_operator")

    def _until(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        def stoppable() -> Any:
            if self.stop():
                raise Stopped(f"stopped waiting for {what}: the denial was seen")
            return probe()

        return wait_for(what, stoppable, timeout, interval=0.25)

    def _final_execution(self, key: str, timeout: float) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            done = [e for e in self.pipeline.executions_for(key) if e["status"] in FINAL_STATES]
            return done[0] if done else None

        return self._until(f"a finished execution for {key!r}", probe, timeout)

    def setup(self) -> None:
        """A non-compliant bucket and table for the monitor, and one of each tagged with the
        exemption tag but not declared in security_scan_exemptions (so still non-compliant)."""
        p, run, prefix = self.pipeline, uuid.uuid4().hex[:6], self.fixture_prefix
        s3, dynamodb = p.client("s3"), p.client("dynamodb")
        names = {
            "bucket": f"{prefix}-plain-{run}",
            "exempt_bucket": f"{prefix}-exempt-{run}",
            "table": f"{prefix}-default-key-{run}",
            "exempt_table": f"{prefix}-exempt-{run}",
        }
        exempt = {names["exempt_bucket"], names["exempt_table"]}
        for kind, name in names.items():
            tags = self.fixture_tags | ({EXEMPTION_TAG: "iam proof fixture"} if name in exempt else {})
            tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
            if kind.endswith("bucket"):
                s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": p.region})
                if tag_list:
                    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list})
                continue
            dynamodb.create_table(
                TableName=name,
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=tag_list,
            )
        self.fixtures = names

    def teardown(self) -> None:
        p = self.pipeline
        for kind, name in self.fixtures.items():
            with contextlib.suppress(ClientError):
                if kind.endswith("bucket"):
                    p.client("s3").delete_bucket(Bucket=name)
                else:
                    p.client("dynamodb").delete_table(TableName=name)

    def _alert(self, needle: str, timeout: float) -> list[Any]:
        seen: list[Any] = []

        def probe() -> list[Any] | None:
            seen.extend(a for a in self.pipeline.alerts(wait_seconds=0) if needle in a.message)
            return seen or None

        with contextlib.suppress(TimedOut):
            self._until(f"an alert naming {needle!r}", probe, timeout)
        return seen

    def upload(self) -> Outcome:
        key = f"proof-{uuid.uuid4().hex[:8]}/upload.csv"
        self.pipeline.upload(key)
        try:
            execution = self._final_execution(key, timeout=20)
        except TimedOut as error:
            return Outcome(False, str(error))
        rows = len(self.pipeline.rows_for(key))
        return Outcome(execution["status"] == "SUCCEEDED" and rows == 1, f"{execution['status']}, {rows} row")

    def rejected_key(self) -> Outcome:
        key = f"../proof-{uuid.uuid4().hex[:8]}"
        self.pipeline.upload(key)
        alerts = self._alert(key, timeout=10)
        return Outcome(len(alerts) == 1, f"{len(alerts)} alert naming the key")

    def failed_write(self) -> Outcome:
        key = f"proof-{uuid.uuid4().hex[:8]}-failing/ledger.csv"
        with self.pipeline.denied("writer_lambda_name", "dynamodb:PutItem"):
            self.pipeline.upload(key)
            try:
                execution = self._final_execution(key, timeout=60)
            except TimedOut as error:
                return Outcome(False, str(error))
        attempts = self.pipeline.writer_attempts(execution["executionArn"])
        alerts = self._alert(key, timeout=10)
        ok = execution["status"] == "FAILED" and attempts == 4 and len(alerts) == 1
        return Outcome(ok, f"{execution['status']} after {attempts} writer attempts, {len(alerts)} alert")

    def monitor(self) -> Outcome:
        try:
            report = self.pipeline.invoke_monitor()
        except AssertionError as error:
            return Outcome(False, str(error)[:200])
        flagged = {f["name"]: f["reason"] for f in report.get("non_compliant", [])}
        exempted = {f["name"] for f in report.get("exempted", [])}
        fixtures = self.fixtures
        # Nothing is declared in security_scan_exemptions and a tag exempts nothing: the tagged
        # fixtures stay non-compliant, and only a monitor that read their tags (GetBucketTagging,
        # ListTagsOfResource) names the tag in the finding.
        tag_named = "but not declared in security_scan_exemptions"
        # Where the table's tags cannot be read (MiniStack: WRONG_DENIALS) the monitor must say so.
        unreadable = "could not be read" in flagged.get(fixtures["exempt_table"], "")
        wanted = {fixtures[name] for name in ("bucket", "table", "exempt_bucket", "exempt_table")}
        ours = {self.pipeline.outputs["s3_bucket_name"], self.pipeline.outputs["dynamodb_table_name"]}
        # In an account of its own the fixtures are all there is to flag; in a shared one (AWS) the
        # account's other resources may be flagged too, but never the stack's own.
        shared = self.shared_account
        flagged_right = (
            wanted <= set(flagged) and not ours & set(flagged) if shared else set(flagged) == wanted
        )
        errors_found = [e for e in report.get("errors", []) if not shared or e["name"] in wanted | ours]
        ok = (
            flagged_right
            and tag_named in flagged[fixtures["exempt_bucket"]]
            and (unreadable or tag_named in flagged[fixtures["exempt_table"]])
            and not exempted
            and not errors_found
            and bool(report.get("alert_sent"))
        )
        errors = [f"{f['name']}: {f['reason']}" for f in report.get("errors", [])]
        note = "; the tagged table's tags could not be read" if unreadable else ""
        return Outcome(
            ok, f"non-compliant {sorted(flagged)}, exempted {sorted(exempted)}, errors {errors}{note}"
        )

    def failed_start(self) -> Outcome:
        """StartExecution fails (an explicit Deny on the trigger's role): the trigger asks
        DescribeExecution whether another delivery started the execution, then reports the message
        failed, so the queue keeps it for another receive and nothing is started.

        Not waited for: the message's return after the visibility timeout (minutes) or the
        dead-letter queue. The upload queue is purged instead, so that the message does not come
        back in a later scenario.
        """
        p = self.pipeline
        key = f"proof-{uuid.uuid4().hex[:8]}-start-fails/orders.csv"
        since = int(time.time() * 1000) - 1000
        with p.denied("trigger_lambda_name", "states:StartExecution"):
            try:
                p.upload(key)
                try:
                    self._until(
                        f"the trigger reporting {key!r} failed",
                        lambda: self._trigger_logged("StartExecution failed", key, since),
                        timeout=30,
                    )
                except TimedOut as error:
                    return Outcome(False, str(error))
                time.sleep(1)  # the event source mapping deletes the messages not reported failed
                depth = p.queue_depth("upload_queue_url")
                kept = depth["visible"] + depth["in_flight"]
                executions = len(p.executions_for(key))
            finally:
                self._purge_upload_queue()
        return Outcome(
            kept >= 1 and executions == 0,
            f"reported failed: {kept} message(s) kept in the upload queue, {executions} execution(s)",
        )

    def _trigger_logged(self, message: str, key: str, since: int) -> bool:
        """Whether the trigger logged `message` naming `key` (its log group) since `since` (ms)."""
        if not self.trigger_log_group:
            config = self.pipeline.client("lambda").get_function_configuration(
                FunctionName=self.pipeline.outputs["trigger_lambda_name"]
            )
            self.trigger_log_group = config.get("LoggingConfig", {}).get(
                "LogGroup", f"/aws/lambda/{config['FunctionName']}"
            )
        pages = (
            self.pipeline.client("logs")
            .get_paginator("filter_log_events")
            .paginate(logGroupName=self.trigger_log_group, startTime=since)
        )
        return any(
            message in event["message"] and key in event["message"]
            for page in pages
            for event in page.get("events", [])
        )

    def _purge_upload_queue(self) -> None:
        try:
            self.pipeline.client("sqs").purge_queue(QueueUrl=self.pipeline.outputs["upload_queue_url"])
        except ClientError as error:
            # AWS allows one purge a minute: the message then comes back and is ingested normally.
            if not error.response["Error"]["Code"].endswith("PurgeQueueInProgress"):
                raise
        time.sleep(self.purge_wait)

    def dead_letter_redrive(self) -> Outcome:
        """An operator (the exported policy, on a user of its own) re-drives the dead-letter queue.

        On AWS that is ``aws sqs start-message-move-task``: SQS then reads the dead-letter queue's
        attributes, receives its messages, sends them to the upload queue and deletes them, with
        the caller's permissions (AWS's redrive permissions: GetQueueAttributes, ReceiveMessage and
        DeleteMessage on the source, SendMessage on the destination). MiniStack has no message
        move task, so the operator makes those calls of the move itself. The message is the
        notification of an upload S3 never announced (notifications off, as in :meth:`reconcile`),
        put into the dead-letter queue as SQS would have moved it there; re-driven, it is ingested.
        """
        operator = self.operators.get("reconcile_operator_policy_json")
        if operator is None:
            return Outcome(False, "no reconcile_operator_policy_json output")
        p = self.pipeline
        dead_letters, uploads = p.outputs["dead_letter_queue_url"], p.outputs["upload_queue_url"]
        key = f"proof-{uuid.uuid4().hex[:8]}-dead-letter/file.csv"
        p.client("sqs").send_message(QueueUrl=dead_letters, MessageBody=self._unannounced_upload(key))
        sqs = p.as_user(operator.credentials).client("sqs")
        refused: list[str] = []

        def call(name: str, request: Callable[[], Any]) -> Any:
            try:
                return request()
            except ClientError as error:
                refused.append(f"{name}: {error.response['Error']['Code']}")
                return None

        call(
            "GetQueueAttributes",
            lambda: sqs.get_queue_attributes(
                QueueUrl=dead_letters, AttributeNames=["ApproximateNumberOfMessages"]
            ),
        )
        moved = 0
        for _ in range(10):  # every message of the dead-letter queue, as the move task does
            received = call(
                "ReceiveMessage",
                lambda: sqs.receive_message(QueueUrl=dead_letters, MaxNumberOfMessages=10, WaitTimeSeconds=1),
            )
            messages = (received or {}).get("Messages", [])
            for body, handle in ((m["Body"], m["ReceiptHandle"]) for m in messages):
                sent = call("SendMessage", lambda b=body: sqs.send_message(QueueUrl=uploads, MessageBody=b))
                if sent is not None:  # deleted from the dead-letter queue only once sent on
                    deleted = call(
                        "DeleteMessage",
                        lambda h=handle: sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=h),
                    )
                    moved += deleted is not None
            if not messages:
                break
        try:
            execution = self._final_execution(key, timeout=20)
        except TimedOut as error:
            return Outcome(False, f"{moved} moved, refused: {refused or 'nothing'}; {error}")
        rows = len(p.rows_for(key))
        return Outcome(
            not refused and execution["status"] == "SUCCEEDED" and rows == 1,
            f"{moved} moved, refused: {refused or 'nothing'}; re-driven: {execution['status']}, {rows} row",
        )

    def _unannounced_upload(self, key: str) -> str:
        """Upload `key` with the bucket's notifications off; the S3 notification it would have
        had (the fields the trigger reads), as a queue message's body."""
        p, bucket = self.pipeline, self.pipeline.outputs["s3_bucket_name"]
        s3 = p.client("s3")
        notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
        notifications.pop("ResponseMetadata", None)
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
        try:
            p.upload(key)
        finally:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)
        head = s3.head_object(Bucket=bucket, Key=key)
        s3_object = {
            "key": urllib.parse.quote_plus(key, safe="/"),
            "size": head["ContentLength"],
            "eTag": head["ETag"].strip('"'),
            "sequencer": f"{time.time_ns():016X}",
        }
        if head.get("VersionId"):
            s3_object["versionId"] = head["VersionId"]
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": p.region,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "start-ingestion",
                "bucket": {"name": bucket, "arn": p.outputs["s3_bucket_arn"]},
                "object": s3_object,
            },
        }
        return json.dumps({"Records": [record]})

    def reconcile(self) -> Outcome:
        """An operator (the exported policy, on a user of its own) finds an upload S3 never
        announced and re-drives it with scripts/reconcile.py."""
        operator = self.operators.get("reconcile_operator_policy_json")
        if operator is None:
            return Outcome(False, "no reconcile_operator_policy_json output")
        p, bucket = self.pipeline, self.pipeline.outputs["s3_bucket_name"]
        s3 = p.client("s3")
        notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
        notifications.pop("ResponseMetadata", None)
        key = f"proof-{uuid.uuid4().hex[:8]}-unannounced/file.csv"
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
        try:
            p.upload(key)
        finally:
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notifications)
        as_operator = p.as_user(operator.credentials)
        clients = Clients(
            s3=as_operator.client("s3"),
            dynamodb=as_operator.client("dynamodb"),
            stepfunctions=as_operator.client("stepfunctions"),
        )
        try:
            summary = reconcile(
                clients,
                bucket,
                p.outputs["dynamodb_table_name"],
                p.outputs["step_function_arn"],
                redrive=True,
            )
        except ReconcileError as error:
            return Outcome(False, f"reconcile failed: {error}")
        try:
            execution = self._final_execution(key, timeout=20)
        except TimedOut as error:
            return Outcome(False, f"{summary.line()}; {error}")
        return Outcome(
            execution["status"] == "SUCCEEDED", f"{summary.line()}; re-driven: {execution['status']}"
        )

    def key_administration(self) -> Outcome:
        """A key administrator of the account (an IAM user allowed the administration actions by
        its own policy, as key policies with the account as principal require) administers the
        stack's keys: each call is made whatever happened to the one before it."""
        keys = [self.admin_focus] if self.admin_focus else self.admin_keys
        if self.key_admin is None or not keys:
            return Outcome(False, "no key administrator or no key")
        refused = [f"{short(key)} {what}" for key in keys for what in self._administer(key)]
        return Outcome(not refused, f"{len(keys)} key(s) administered; refused: {refused or 'nothing'}")

    def _administer(self, key: str) -> list[str]:
        root, admin = self.pipeline.client("kms"), self.key_admin
        before = root.describe_key(KeyId=key)["KeyMetadata"]
        rotation = root.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]
        policy = root.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        grantee = self.key_admin_arn
        grant = root.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["DescribeKey"])["GrantId"]
        tag = [{"TagKey": "IamProof", "TagValue": "key administration"}]
        calls: list[tuple[str, Callable[[], Any]]] = [
            ("DescribeKey", lambda: admin.describe_key(KeyId=key)),
            ("GetKeyPolicy", lambda: admin.get_key_policy(KeyId=key, PolicyName="default")),
            ("GetKeyRotationStatus", lambda: admin.get_key_rotation_status(KeyId=key)),
            ("ListKeyPolicies", lambda: admin.list_key_policies(KeyId=key)),
            ("ListResourceTags", lambda: admin.list_resource_tags(KeyId=key)),
            ("ListGrants", lambda: admin.list_grants(KeyId=key)),
            ("TagResource", lambda: admin.tag_resource(KeyId=key, Tags=tag)),
            ("UntagResource", lambda: admin.untag_resource(KeyId=key, TagKeys=["IamProof"])),
            (
                "UpdateKeyDescription",
                lambda: admin.update_key_description(KeyId=key, Description=before["Description"]),
            ),
            ("DisableKeyRotation", lambda: admin.disable_key_rotation(KeyId=key)),
            ("EnableKeyRotation", lambda: admin.enable_key_rotation(KeyId=key)),
            ("DisableKey", lambda: admin.disable_key(KeyId=key)),
            ("EnableKey", lambda: admin.enable_key(KeyId=key)),
            ("ScheduleKeyDeletion", lambda: admin.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)),
            ("CancelKeyDeletion", lambda: admin.cancel_key_deletion(KeyId=key)),
            ("RevokeGrant", lambda: admin.revoke_grant(KeyId=key, GrantId=grant)),
            ("PutKeyPolicy", lambda: admin.put_key_policy(KeyId=key, PolicyName="default", Policy=policy)),
        ]
        refused = []
        try:
            for name, call in calls:
                try:
                    call()
                except ClientError as error:
                    refused.append(f"{name}: {error.response['Error']['Code']}")
        finally:
            self._repair_key(key, before, rotation, grant)
        return refused

    def _repair_key(self, key: str, before: dict[str, Any], rotation: bool, grant: str) -> None:
        """Put the key back as it was (as the account root, whom no key policy stops here)."""
        root = self.pipeline.client("kms")
        repairs: list[Callable[[], Any]] = [
            lambda: root.cancel_key_deletion(KeyId=key),
            lambda: root.enable_key(KeyId=key) if before["Enabled"] else root.disable_key(KeyId=key),
            lambda: root.enable_key_rotation(KeyId=key) if rotation else root.disable_key_rotation(KeyId=key),
            lambda: root.untag_resource(KeyId=key, TagKeys=["IamProof"]),
            lambda: root.update_key_description(KeyId=key, Description=before["Description"]),
            lambda: root.revoke_grant(KeyId=key, GrantId=grant),
        ]
        for repair in repairs:
            with contextlib.suppress(ClientError):  # already as it was (e.g. no deletion pending)
                repair()
        state = root.describe_key(KeyId=key)["KeyMetadata"]
        if state["KeyState"] != before["KeyState"]:
            raise ProofError(f"key {key} left {state['KeyState']}, was {before['KeyState']}")

    def schedule(self) -> Outcome:
        restore = self.pipeline.run_schedule_soon(self.pipeline.outputs["security_scan_rule_name"])
        try:
            alerts = self._alert(self.fixtures["bucket"], timeout=90)
        finally:
            restore()
        return Outcome(bool(alerts), f"{len(alerts)} scheduled scan alert(s)")
