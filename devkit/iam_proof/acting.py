"""The requests AWS services make for the stack, made by the IAM proof itself (`make iam-proof`).

MiniStack runs the pipeline without making most of the requests AWS makes on its behalf: the
Lambda service writes function logs, the event source mapping polls the queue and Step Functions
invokes the writer without acting as the function's or the state machine's role, and no service
calls KMS for a caller. So that removing a grant those requests need turns an allowed request into
a denial, the proof makes them: it assumes each role through STS and makes, with the role's
credentials, the exact requests AWS documents the service makes with it; and it makes the services'
own requests (CloudWatch Logs on its key, S3 notifying the encrypted queue, alarms publishing...)
as the service principal. A KMS request a service makes on the caller's behalf, and a service's own
request, carry a marking (``x-iam-proof-request``) from which the MiniStack launcher
(devkit/ministack_launch.py) gives MiniStack's evaluator the context AWS gives that request
(``kms:ViaService``, ``kms:CallerAccount``, ``aws:SourceArn``, ``aws:SourceAccount``, the
encryption context); MiniStack's evaluator decides with the deployed policies, as for any request.

What no request here can show (X-Ray, which MiniStack does not implement; ReEncrypt, which
MiniStack does not implement; alias operations, which MiniStack authorizes on the alias only) stays
justified in devkit/iam_proof/justifications.py, with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from devkit.iam_proof.actor import Acted, Actor, Credentials, attempt
from devkit.pipeline import Pipeline


def _log_group_arn(pipeline: Pipeline, log_group: str) -> str:
    _, partition, _, region, account, _ = pipeline.outputs["step_function_arn"].split(":", 5)
    return f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}"


@dataclass
class Acting:
    """The scenarios: one per role (``as_trigger`` ...), one for the services' own requests."""

    pipeline: Pipeline
    roles: dict[str, str] = field(default_factory=dict)  # component -> role ARN
    uploader: Credentials | None = None  # a principal of the account allowed to use the S3 key
    operator: Credentials | None = None  # the IAM user holding the exported operator policy

    @property
    def actor(self) -> Actor:
        return Actor(self.pipeline)

    @property
    def account(self) -> str:
        return self.pipeline.outputs["step_function_arn"].split(":")[4]

    def _assume(self, component: str, seen: Acted, function: str) -> Credentials | None:
        """The Lambda service assumes a function's role; Step Functions the state machine's."""
        p = self.pipeline
        if component == "state_machine":
            return self.actor.assume(
                self.roles[component], seen, "states.amazonaws.com", p.outputs["step_function_arn"]
            )
        arn = p.client("lambda").get_function_configuration(FunctionName=function)["FunctionArn"]
        return self.actor.assume(self.roles[component], seen, "lambda.amazonaws.com", arn)

    def _via(self, service: str) -> dict[str, str]:
        return {"via_service": f"{service}.{self.pipeline.region}.amazonaws.com"}

    def _ciphertext(self, key: str, context: dict[str, str]) -> bytes:
        """A data key encrypted under `key` with `context`, made by the root (no policy applies)."""
        kms = self.actor.client("kms", self.actor.root)
        blob: bytes = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=context)[
            "CiphertextBlob"
        ]
        return blob

    def _kms_uses(
        self,
        seen: Acted,
        credentials: Credentials,
        marking: dict[str, str],
        key: str,
        context: dict[str, str],
        actions: tuple[str, ...],
    ) -> None:
        """The KMS requests a service makes with `credentials` (or as itself) for one resource."""
        kms = self.actor.client("kms", credentials, marking)
        who = marking.get("service_principal") or marking.get("via_service", "direct")
        ciphertext = self._ciphertext(key, context) if "Decrypt" in actions else b""
        requests: dict[str, Callable[[], Any]] = {
            "GenerateDataKey": lambda: kms.generate_data_key(
                KeyId=key, KeySpec="AES_256", EncryptionContext=context
            ),
            "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(
                KeyId=key, KeySpec="AES_256", EncryptionContext=context
            ),
            "Encrypt": lambda: kms.encrypt(KeyId=key, Plaintext=b"iam-proof", EncryptionContext=context),
            "Decrypt": lambda: kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=context),
            "DescribeKey": lambda: kms.describe_key(KeyId=key),
        }
        for action in actions:
            attempt(seen, f"kms:{action} ({who}) on {key.rsplit('/', 1)[-1][:8]}", requests[action])

    def _lambda_service(self, seen: Acted, credentials: Credentials, function: str) -> None:
        """The Lambda service with a function's execution role: its log stream and log events."""
        p = self.pipeline
        config = p.client("lambda").get_function_configuration(FunctionName=function)
        group = config.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function}"
        logs = self.actor.client("logs", credentials, {"service_request": "lambda"})
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]iamproof{uuid.uuid4().hex[:12]}"
        attempt(
            seen,
            f"logs:CreateLogStream {group}",
            lambda: logs.create_log_stream(logGroupName=group, logStreamName=stream),
        )
        event = {"timestamp": int(time.time() * 1000), "message": "iam proof: the Lambda service's write"}
        attempt(
            seen,
            f"logs:PutLogEvents {group}",
            lambda: logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[event]),
        )

    def _topic_key_use(self, seen: Acted, credentials: Credentials) -> None:
        """Publishing to the SSE-KMS alert topic: SNS uses the topic's key with the caller's
        permissions (GenerateDataKey, and Decrypt of the data key it keeps)."""
        topic = self.pipeline.outputs["sns_topic_arn"]
        self._kms_uses(
            seen,
            credentials,
            self._via("sns"),
            self.pipeline.outputs["kms_sns_key_arn"],
            {"aws:sns:topicArn": topic},
            ("GenerateDataKey", "Decrypt"),
        )

    def as_trigger(self) -> Acted:
        seen, p = Acted(), self.pipeline
        credentials = self._assume("trigger", seen, p.outputs["trigger_lambda_name"])
        if credentials is None:
            return seen
        self._lambda_service(seen, credentials, p.outputs["trigger_lambda_name"])
        # The event source mapping polls the upload queue with the function's role.
        sqs, url = self.actor.client("sqs", credentials), p.outputs["upload_queue_url"]
        attempt(
            seen,
            "sqs:GetQueueAttributes",
            lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]),
        )
        attempt(
            seen,
            "sqs:ReceiveMessage",
            lambda: sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0, VisibilityTimeout=0
            ),
        )
        handle = base64.b64encode(f"iam-proof-{uuid.uuid4()}".encode()).decode()
        attempt(seen, "sqs:DeleteMessage", lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle=handle))
        # ...and SQS decrypts the messages' data key for it.
        self._kms_uses(
            seen,
            credentials,
            self._via("sqs"),
            p.outputs["kms_sqs_key_arn"],
            {"aws:sqs:arn": p.outputs["upload_queue_arn"]},
            ("Decrypt",),
        )
        # StartExecution (and DescribeExecution) of the encrypted state machine.
        self._kms_uses(
            seen,
            credentials,
            self._via("states"),
            p.outputs["kms_stepfunctions_key_arn"],
            {"aws:states:stateMachineArn": p.outputs["step_function_arn"]},
            ("GenerateDataKey", "Decrypt"),
        )
        self._topic_key_use(seen, credentials)
        return seen

    def as_writer(self) -> Acted:
        seen, p = Acted(), self.pipeline
        credentials = self._assume("writer", seen, p.outputs["writer_lambda_name"])
        if credentials is None:
            return seen
        self._lambda_service(seen, credentials, p.outputs["writer_lambda_name"])
        # PutItem on the table encrypted with the customer-managed key: DynamoDB's requests.
        self._kms_uses(
            seen,
            credentials,
            self._via("dynamodb"),
            p.outputs["kms_dynamodb_key_arn"],
            {
                "aws:dynamodb:tableName": p.outputs["dynamodb_table_name"],
                "aws:dynamodb:subscriberId": self.account,
            },
            ("DescribeKey", "GenerateDataKey", "Encrypt", "Decrypt"),
        )
        return seen

    def as_monitor(self) -> Acted:
        seen, p = Acted(), self.pipeline
        credentials = self._assume("monitor", seen, p.outputs["lambda_security_monitor_function_name"])
        if credentials is None:
            return seen
        self._lambda_service(seen, credentials, p.outputs["lambda_security_monitor_function_name"])
        self._topic_key_use(seen, credentials)
        return seen

    def as_state_machine(self) -> Acted:
        seen, p = Acted(), self.pipeline
        credentials = self._assume("state_machine", seen, "")
        if credentials is None:
            return seen
        # The WriteMetadata task invokes the writer; NotifyFailure publishes to the alert topic.
        lam = self.actor.client("lambda", credentials)
        attempt(
            seen,
            "lambda:InvokeFunction (DryRun) writer",
            lambda: lam.invoke(FunctionName=p.outputs["writer_lambda_name"], InvocationType="DryRun"),
        )
        sns = self.actor.client("sns", credentials)
        attempt(
            seen,
            "sns:Publish alert topic",
            lambda: sns.publish(
                TopicArn=p.outputs["sns_topic_arn"],
                Subject="iam proof",
                Message="iam proof: published with the state machine's role (not an alert)",
            ),
        )
        self._topic_key_use(seen, credentials)
        # Step Functions encrypts the executions' data with the state machine's role.
        self._kms_uses(
            seen,
            credentials,
            self._via("states"),
            p.outputs["kms_stepfunctions_key_arn"],
            {"aws:states:stateMachineArn": p.outputs["step_function_arn"]},
            ("GenerateDataKey", "Decrypt"),
        )
        self._log_delivery(seen, credentials)
        return seen

    def _log_delivery(self, seen: Acted, credentials: Credentials) -> None:
        """Execution logging: the vended-logs delivery calls CloudWatch Logs takes with the state
        machine's role when logging is configured (Step Functions developer guide, "Logging using
        CloudWatch Logs"); the resource policy the proof puts is removed again as the root."""
        p = self.pipeline
        logs = self.actor.client("logs", credentials)
        group = p.outputs["state_machine_log_group_name"]
        group_arn = _log_group_arn(p, group) + ":*"
        delivery = {"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}
        requests: dict[str, Callable[[], Any]] = {
            "logs:CreateLogDelivery": lambda: self._raw(
                logs, "CreateLogDelivery", {"destinations": [delivery]}
            ),
            "logs:GetLogDelivery": lambda: self._raw(logs, "GetLogDelivery", {"deliveryId": "iam-proof"}),
            "logs:UpdateLogDelivery": lambda: self._raw(
                logs, "UpdateLogDelivery", {"deliveryId": "iam-proof", "destinations": [delivery]}
            ),
            "logs:DeleteLogDelivery": lambda: self._raw(
                logs, "DeleteLogDelivery", {"deliveryId": "iam-proof"}
            ),
            "logs:ListLogDeliveries": lambda: self._raw(logs, "ListLogDeliveries", {}),
            "logs:DescribeResourcePolicies": lambda: logs.describe_resource_policies(),
            "logs:DescribeLogGroups": lambda: logs.describe_log_groups(logGroupNamePrefix=group),
            "logs:PutResourcePolicy": lambda: logs.put_resource_policy(
                policyName="iam-proof-delivery",
                policyDocument=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "IamProofNothing",
                                "Effect": "Deny",
                                "Principal": {"Service": "delivery.logs.amazonaws.com"},
                                "Action": "logs:PutLogEvents",
                                "Resource": _log_group_arn(p, "/iam-proof/none") + ":*",
                            }
                        ],
                    }
                ),
            ),
        }
        for label, request in requests.items():
            attempt(seen, label, request)
        root_logs = self.actor.client("logs", self.actor.root)
        with contextlib.suppress(ClientError):  # not created (denied, or not implemented)
            root_logs.delete_resource_policy(policyName="iam-proof-delivery")

    @staticmethod
    def _raw(client: Any, operation: str, body: dict[str, Any]) -> Any:
        """A CloudWatch Logs JSON request botocore's model may lack (the vended-logs delivery API
        of Step Functions and other services): sent with the client's signer and endpoint."""
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(
            method="POST",
            url=client.meta.endpoint_url,
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"Logs_20140328.{operation}",
            },
        )
        client._request_signer.sign(operation, request)
        response = client._endpoint.http_session.send(request.prepare())
        if response.status_code >= 400:
            try:
                error = json.loads(response.content or b"{}")
            except json.JSONDecodeError:
                error = {}
            code = str(error.get("__type", "HTTP" + str(response.status_code))).rsplit("#", 1)[-1]
            raise ClientError(
                {"Error": {"Code": code, "Message": str(error.get("message") or error.get("Message") or "")}},
                operation,
            )
        return response

    def as_operator(self) -> Acted:
        """The KMS requests services make for the operator: Step Functions (listing, describing and
        re-driving executions), SQS (the dead-letter re-drive reads the DLQ and writes the upload
        queue) and DynamoDB (reconcile's Scan of the encrypted table)."""
        seen, p = Acted(), self.pipeline
        if self.operator is None:
            seen.other.append("no operator user")
            return seen
        self._kms_uses(
            seen,
            self.operator,
            self._via("states"),
            p.outputs["kms_stepfunctions_key_arn"],
            {"aws:states:stateMachineArn": p.outputs["step_function_arn"]},
            ("GenerateDataKey", "Decrypt"),
        )
        for queue in ("dead_letter_queue_arn", "upload_queue_arn"):
            self._kms_uses(
                seen,
                self.operator,
                self._via("sqs"),
                p.outputs["kms_sqs_key_arn"],
                {"aws:sqs:arn": p.outputs[queue]},
                ("GenerateDataKey", "Decrypt"),
            )
        self._kms_uses(
            seen,
            self.operator,
            self._via("dynamodb"),
            p.outputs["kms_dynamodb_key_arn"],
            {
                "aws:dynamodb:tableName": p.outputs["dynamodb_table_name"],
                "aws:dynamodb:subscriberId": self.account,
            },
            ("Decrypt",),
        )
        return seen

    def _service(self, name: str, source_arn: str = "") -> dict[str, str]:
        """The marking of a service's own request, with its aws:SourceAccount and aws:SourceArn."""
        marking = {"service_principal": name, "source_account": self.account}
        if source_arn:
            marking["source_arn"] = source_arn
        return marking

    def as_services(self) -> Acted:
        """The services' own requests, each as its service principal with its source."""
        seen = Acted()
        self._logs_and_step_functions(seen)
        self._notifications_and_alarms(seen)
        self._schedule_and_uploads(seen)
        return seen

    def _logs_and_step_functions(self, seen: Acted) -> None:
        p, root = self.pipeline, self.actor.root
        # CloudWatch Logs encrypts and decrypts the stack's log groups with the logs key.
        trigger_group = (
            p.client("lambda")
            .get_function_configuration(FunctionName=p.outputs["trigger_lambda_name"])
            .get("LoggingConfig", {})
            .get("LogGroup")
            or f"/aws/lambda/{p.outputs['trigger_lambda_name']}"
        )
        self._kms_uses(
            seen,
            root,
            {"service_principal": f"logs.{p.region}.amazonaws.com"},
            p.outputs["kms_logs_key_arn"],
            {"aws:logs:arn": _log_group_arn(p, trigger_group)},
            ("GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Encrypt", "Decrypt"),
        )
        # Step Functions encrypts the state machine's executions with its key...
        machine = p.outputs["step_function_arn"]
        states_context = {"aws:states:stateMachineArn": machine}
        self._kms_uses(
            seen,
            root,
            self._service("states.amazonaws.com", machine),
            p.outputs["kms_stepfunctions_key_arn"],
            states_context,
            ("GenerateDataKey", "Decrypt"),
        )
        # ...and the log delivery service decrypts the execution events it delivers.
        self._kms_uses(
            seen,
            root,
            self._service("delivery.logs.amazonaws.com"),
            p.outputs["kms_stepfunctions_key_arn"],
            states_context,
            ("Decrypt",),
        )

    def _notifications_and_alarms(self, seen: Acted) -> None:
        p, root = self.pipeline, self.actor.root
        # S3 sends its notifications to the SSE-KMS upload queue.
        self._kms_uses(
            seen,
            root,
            self._service("s3.amazonaws.com", p.outputs["s3_bucket_arn"]),
            p.outputs["kms_sqs_key_arn"],
            {"aws:sqs:arn": p.outputs["upload_queue_arn"]},
            ("GenerateDataKey", "Decrypt"),
        )
        # An alarm action publishes to the encrypted alert topic.
        alarm = next(iter(p.client("cloudwatch").describe_alarms(MaxRecords=1)["MetricAlarms"]), None)
        alarm_arn = (
            alarm["AlarmArn"] if alarm else f"arn:aws:cloudwatch:{p.region}:{self.account}:alarm:iam-proof"
        )
        alarms = self._service("cloudwatch.amazonaws.com", alarm_arn)
        self._kms_uses(
            seen,
            root,
            alarms,
            p.outputs["kms_sns_key_arn"],
            {"aws:sns:topicArn": p.outputs["sns_topic_arn"]},
            ("GenerateDataKey", "Decrypt"),
        )
        sns = self.actor.client("sns", root, alarms)
        attempt(
            seen,
            "sns:Publish as cloudwatch.amazonaws.com",
            lambda: sns.publish(
                TopicArn=p.outputs["sns_topic_arn"],
                Subject="iam proof",
                Message="iam proof: published as the CloudWatch alarms service (not an alert)",
            ),
        )

    def _schedule_and_uploads(self, seen: Acted) -> None:
        p, root = self.pipeline, self.actor.root
        # EventBridge runs the monitor on its schedule.
        rule = p.client("events").describe_rule(Name=p.outputs["security_scan_rule_name"])["Arn"]
        lam = self.actor.client("lambda", root, self._service("events.amazonaws.com", rule))
        attempt(
            seen,
            "lambda:InvokeFunction (DryRun) as events.amazonaws.com",
            lambda: lam.invoke(
                FunctionName=p.outputs["lambda_security_monitor_function_name"], InvocationType="DryRun"
            ),
        )
        # A principal of the account uploads and reads SSE-KMS objects: S3 uses the key for it.
        if self.uploader is not None:
            bucket = p.outputs["s3_bucket_arn"]
            self._kms_uses(
                seen,
                self.uploader,
                self._via("s3"),
                p.outputs["kms_s3_key_arn"],
                {"aws:s3:arn": f"{bucket}/iam-proof/object.csv"},
                ("GenerateDataKey", "Decrypt"),
            )
