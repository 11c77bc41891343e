"""Delivery of asynchronous-invocation records to their destinations (SQS, SNS, Lambda, EventBridge).

Lambda sends an invocation record to the ``OnSuccess``/``OnFailure`` destination of a function's
event invoke config, or the event itself to its dead-letter queue; the emulator delivers them
through its own API (so SNS subscriptions, queue policies and topics' own deliveries apply as for
any other caller).
"""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from emulator.context import client

LOG = logging.getLogger("emulator.lambda")


def _message_attributes(attributes: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()}


def send_to_destination(target: str, message: str, region: str, attributes: dict[str, str]) -> None:
    """Deliver ``message`` to the destination ARN ``target``; failures are logged, never raised."""
    parts = target.split(":")
    service = parts[2] if len(parts) > 5 else ""
    region = (parts[3] or region) if len(parts) > 5 else region
    try:
        if service == "sqs":
            sqs = client("sqs", region)
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"]
            sqs.send_message(
                QueueUrl=url, MessageBody=message, MessageAttributes=_message_attributes(attributes)
            )
        elif service == "sns":
            client("sns", region).publish(
                TopicArn=target, Message=message, MessageAttributes=_message_attributes(attributes)
            )
        elif service == "lambda":
            client("lambda", region).invoke(
                FunctionName=target, InvocationType="Event", Payload=message.encode("utf-8")
            )
        elif service == "events":
            entry = {
                "Source": "lambda",
                "DetailType": "Lambda Function Invocation Result",
                "Detail": message,
                "EventBusName": target,
            }
            client("events", region).put_events(Entries=[entry])
        else:
            LOG.warning("unsupported async invocation destination %s", target)
    except (ClientError, BotoCoreError) as exc:
        LOG.warning("could not deliver to destination %s: %s", target, exc)
