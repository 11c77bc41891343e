"""SQS queue attributes as SQS keeps them: what the provider's waiters read back after each write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

KEY_ARN = "arn:aws:kms:eu-central-1:123456789012:key/11111111-1111-1111-1111-111111111111"


@pytest.fixture
def sqs(aws_client: Callable[[str], Any]) -> Any:
    return aws_client("sqs")


def test_setting_one_attribute_keeps_the_queue_policy(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="attrs-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage", "Resource": arn}],
        }
    )
    allow = json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [arn.replace("attrs-dlq", "attrs-source")]}
    )

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": allow})

    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(everything["Policy"]) == json.loads(policy)
    assert json.loads(everything["RedriveAllowPolicy"]) == json.loads(allow)
    named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedriveAllowPolicy", "Policy"])[
        "Attributes"
    ]
    assert set(named) == {"RedriveAllowPolicy", "Policy"}


def test_an_explicitly_emptied_policy_is_removed(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="attrs-empty")["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": []})}
    )
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_a_kms_key_turns_sqs_managed_encryption_off(sqs: Any) -> None:
    plain = sqs.create_queue(QueueName="attrs-plain")["QueueUrl"]
    keyed = sqs.create_queue(QueueName="attrs-keyed", Attributes={"KmsMasterKeyId": KEY_ARN})["QueueUrl"]

    def sse(url: str) -> dict[str, str]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return {k: v for k, v in attributes.items() if k in {"SqsManagedSseEnabled", "KmsMasterKeyId"}}

    assert sse(plain) == {"SqsManagedSseEnabled": "true"}
    assert sse(keyed) == {"SqsManagedSseEnabled": "false", "KmsMasterKeyId": KEY_ARN}


def test_the_redrive_policy_comes_back_as_compact_json(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="attrs-compact-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sent = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}, separators=(",", ":"))
    url = sqs.create_queue(QueueName="attrs-compact", Attributes={"RedrivePolicy": sent})["QueueUrl"]

    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"][
        "RedrivePolicy"
    ]
    assert got == sent
