"""SQS queue attributes as SQS keeps them (what hashicorp/aws's waiters compare after each write).

moto 5.2.5 differs from SQS in four ways that each leave ``terraform apply`` polling until its
timeout, because the provider reads the attributes back until they equal what it set:

* ``SetQueueAttributes`` without ``Policy`` erases the queue's policy (moto assigns
  ``attributes.get("Policy")``); SQS changes only the attributes a request names. A redrive allow
  policy set after the queue policy (two resources on one queue) wiped the policy.
* ``RedriveAllowPolicy`` is stored but neither returned nor accepted as an attribute name.
* ``RedrivePolicy`` comes back as ``json.dumps`` writes it, with spaces; SQS answers compact JSON,
  and the provider shows the difference as a change on every plan.
* ``SqsManagedSseEnabled`` stays ``true`` on a queue encrypted with a KMS key; SQS turns
  SQS-managed encryption off when ``KmsMasterKeyId`` is set (the two are exclusive).
"""

from __future__ import annotations

import json
from typing import Any

from emulator.patch import Patch

REDRIVE_ALLOW_POLICY = "RedriveAllowPolicy"


def _set_attributes(original: Any) -> Any:
    def set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        exists = hasattr(self, "policy")
        kept_policy = getattr(self, "policy", None)
        original(self, attributes, now)
        if exists and "Policy" not in attributes:
            self.policy = kept_policy
        if getattr(self, "kms_master_key_id", None):
            self.sqs_managed_sse_enabled = False
        if REDRIVE_ALLOW_POLICY in attributes:
            self.redrive_allow_policy = attributes[REDRIVE_ALLOW_POLICY] or None

    return set_attributes


def _attributes(original: Any) -> Any:
    def attributes(self: Any) -> dict[str, Any]:
        result = dict(original.fget(self))
        if self.redrive_policy:  # SQS answers compact JSON (moto: json.dumps' spaces, a plan diff)
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        allow = getattr(self, "redrive_allow_policy", None)
        if allow:
            result[REDRIVE_ALLOW_POLICY] = allow
        return result

    return property(attributes)


def _get_queue_attributes(original: Any) -> Any:
    def get_queue_attributes(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        others = [name for name in attribute_names if name != REDRIVE_ALLOW_POLICY]
        result = dict(original(self, queue_name, others)) if others else {}
        if REDRIVE_ALLOW_POLICY in attribute_names:
            allow = self.get_queue(queue_name).attributes.get(REDRIVE_ALLOW_POLICY)
            if allow:
                result[REDRIVE_ALLOW_POLICY] = allow
        return result

    return get_queue_attributes


PATCHES = [
    Patch(
        "moto.sqs.models.Queue._set_attributes",
        "SetQueueAttributes changes only the attributes it names (moto erased the Policy), stores "
        "RedriveAllowPolicy, and a KMS key turns SQS-managed encryption off, as SQS does",
        _set_attributes,
    ),
    Patch(
        "moto.sqs.models.Queue.attributes",
        "GetQueueAttributes returns RedriveAllowPolicy (aws_sqs_queue_redrive_allow_policy waits for "
        "it) and RedrivePolicy as compact JSON, as SQS does (moto's spaces made every plan show a change)",
        _attributes,
    ),
    Patch(
        "moto.sqs.models.SQSBackend.get_queue_attributes",
        "RedriveAllowPolicy is a valid attribute name (moto answered InvalidAttributeName)",
        _get_queue_attributes,
    ),
]
