"""Which scenarios exist, which show the grants of which part of the stack, and the denials the
proof does not count (a scenario's deliberate ones, MiniStack's known wrong ones)."""

from __future__ import annotations

from collections.abc import Callable

from devkit.iam_proof.scenarios import Outcome, Scenarios

# Scenario name -> method, and the requests a scenario denies on purpose (explicit Deny, role, action).
SCENARIOS: dict[str, Callable[[Scenarios], Outcome]] = {
    "upload": Scenarios.upload,
    "rejected_key": Scenarios.rejected_key,
    "failed_write": Scenarios.failed_write,
    "monitor": Scenarios.monitor,
    "failed_start": Scenarios.failed_start,
    "schedule": Scenarios.schedule,
    "reconcile": Scenarios.reconcile,
    "dead_letter_redrive": Scenarios.dead_letter_redrive,
    "key_administration": Scenarios.key_administration,
    "as_trigger": Scenarios.as_trigger,
    "as_writer": Scenarios.as_writer,
    "as_monitor": Scenarios.as_monitor,
    "as_state_machine": Scenarios.as_state_machine,
    "as_services": Scenarios.as_services,
    "as_operator": Scenarios.as_operator,
}
# Policies carried by the resource they govern: a denial proves such a grant only on that resource.
RESOURCE_POLICIES = {"key-policy", "topic-policy", "queue-policy", "lambda-permission", "bucket-policy"}
# Scenarios whose calls do not depend on each other, each naming the resource it acts on: a denial
# of an action in them comes from that action alone, so a statement's actions taken away together
# need no confirmation one by one.
INDEPENDENT_CALLS = {"key_administration"}
# What the key administrator does (kms:<call> for each call of Scenarios._administer); its own IAM
# policy allows exactly these on the stack's keys, so the key policy decides.
KEY_ADMINISTRATION = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
    "kms:ListGrants",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
    "kms:DisableKeyRotation",
    "kms:EnableKeyRotation",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RevokeGrant",
    "kms:PutKeyPolicy",
)
# Requests MiniStack denies although AWS allows them with the deployed grants (measured; listed in
# the README's MiniStack differences). Neither the baseline nor a proof counts them.
WRONG_DENIALS = {
    "dynamodb:ListTagsOfResource": "MiniStack authorizes ListTagsOfResource against '*', not the table ARN it names",
}
DELIBERATE = {
    "failed_write": ("writer", "dynamodb:PutItem"),
    "failed_start": ("trigger", "states:StartExecution"),
}
# Which scenarios exercise which part of the stack. A grant to a role is rerun with the scenarios of
# the function (or state machine) using that role; a grant to a service with the scenario in which
# that service acts; a grant on a key with the scenarios that use the key.
COMPONENT_SCENARIOS = {
    # failed_start: a StartExecution that fails makes the trigger look for the execution
    # as_*: the requests the Lambda service, the event source mapping and Step Functions make with
    # the role (devkit/iam_proof/acting.py); assuming the role there also shows its trust policy.
    "trigger": ("as_trigger", "upload", "rejected_key", "failed_start"),
    "writer": ("as_writer", "upload"),
    "monitor": ("as_monitor", "monitor"),
    "state_machine": ("as_state_machine", "failed_write"),
}
SERVICE_SCENARIOS = {
    "s3.amazonaws.com": ("upload",),  # S3 notifies the upload queue
    "events.amazonaws.com": ("as_services", "schedule"),
    "cloudwatch.amazonaws.com": ("as_services",),
    "lambda.amazonaws.com": ("upload", "rejected_key", "monitor"),
    "states.amazonaws.com": ("failed_write",),
}
OUTPUT_SCENARIOS = {"reconcile_operator_policy_json": ("as_operator", "reconcile", "dead_letter_redrive")}
# A key's use (not its administration) is shown only by requests the proof makes (devkit/iam_proof/acting.py):
# MiniStack's services never call KMS for a caller.
KEY_SCENARIOS = {
    "kms_s3_key_arn": ("as_services",),
    "kms_dynamodb_key_arn": ("as_writer", "as_operator"),
    "kms_sns_key_arn": ("as_trigger", "as_monitor", "as_state_machine", "as_services"),
    "kms_stepfunctions_key_arn": ("as_trigger", "as_state_machine", "as_services", "as_operator"),
    "kms_sqs_key_arn": ("as_trigger", "as_services", "as_operator"),
    "kms_logs_key_arn": ("as_services",),
}

# make iam-proof-aws (devkit/iam_proof/answered.py): no caller can act as a service principal on AWS,
# so only the scenarios made of real requests run, and each part's grants are shown by those.
AWS_SCENARIOS = (
    "upload",
    "rejected_key",
    "failed_write",
    "monitor",
    "failed_start",
    "schedule",
    "reconcile",
    "dead_letter_redrive",
    "key_administration",
)
"""The scenarios made of real requests only (the ``as_*`` ones need MiniStack's markings)."""
AWS_COMPONENT_SCENARIOS = {
    "trigger": ("upload", "rejected_key", "failed_start"),
    "writer": ("upload",),
    "monitor": ("monitor", "schedule"),
    "state_machine": ("upload", "failed_write"),
}
AWS_OUTPUT_SCENARIOS = {"reconcile_operator_policy_json": ("reconcile", "dead_letter_redrive")}
AWS_KEY_SCENARIOS = {
    "kms_s3_key_arn": ("upload", "reconcile"),
    "kms_dynamodb_key_arn": ("upload", "reconcile"),
    "kms_sns_key_arn": ("rejected_key", "failed_write", "monitor"),
    "kms_stepfunctions_key_arn": ("upload", "failed_write", "reconcile"),
    "kms_sqs_key_arn": ("upload", "dead_letter_redrive"),
    "kms_logs_key_arn": ("failed_start",),  # the scenario reads the trigger's encrypted log group
}
AWS_SERVICE_SCENARIOS = {
    "s3.amazonaws.com": ("upload",),
    "events.amazonaws.com": ("schedule",),
    "lambda.amazonaws.com": ("upload", "rejected_key", "monitor"),
    "states.amazonaws.com": ("upload", "failed_write"),
}
