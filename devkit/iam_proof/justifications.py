"""Why no request made here can show some grants: each :class:`Justification` names one declared
statement exactly and belongs to a :class:`Group` citing the AWS document that requires it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from devkit import functions
from devkit.iam_proof.grants import Grant, condition_keys


@dataclass(frozen=True)
class Group:
    """Why no request made here can exercise a kind of grant, and the AWS document saying so."""

    name: str
    why: str
    reference: str


@dataclass(frozen=True)
class Justification:
    """Why no request made here can show the grants of one declared statement (its group), and
    the AWS document that requires them.

    It names the statement exactly: kind, sid, actions, the resources it grants them on (fnmatch
    patterns every Resource of the statement must match), the condition keys it tests (exactly
    those), and whose it is: the parts of the stack holding it (``components``: trigger, writer,
    monitor, state_machine; ``account`` for the account root of a key policy; ``operator`` for an
    exported operator policy) and/or the service principals it is granted to. A grant added later,
    an action added to a statement, the statement widened to other resources or stripped of a
    condition, or given to another part of the stack matches nothing, so it is ``unproven`` until a
    scenario shows it or a justification names it.
    """

    group: str  # a key of GROUPS
    kinds: tuple[str, ...]
    sids: tuple[str, ...]  # exact; "" for statements without a sid (trust policies)
    actions: tuple[str, ...]  # exact action names, never patterns
    resources: tuple[str, ...]  # fnmatch patterns; "*" only where the statement's resource is "*"
    conditions: tuple[str, ...]  # exactly the condition keys the statement tests
    reference: str  # the AWS document that requires the grant
    components: tuple[str, ...] = ()
    principals: tuple[str, ...] = ()  # service principals (fnmatch: logs.*.amazonaws.com)
    via_service: str = ""  # the kms:ViaService service its condition must name ("" = none)

    def __post_init__(self) -> None:
        if not (self.components or self.principals):
            raise ValueError(f"justification {self.sids} must say whose grant it covers")
        if any(ch in action for action in self.actions for ch in "*?["):
            raise ValueError(f"justification {self.sids} names actions by pattern")
        if self.group not in GROUPS:
            raise ValueError(f"justification {self.sids} names no known group: {self.group!r}")

    @property
    def reason(self) -> str:
        return GROUPS[self.group].why

    def matches(self, grant: Grant, components: frozenset[str]) -> bool:
        if grant.kind not in self.kinds or grant.sid not in self.sids or grant.action not in self.actions:
            return False
        if not grant.resources or not all(
            any(fnmatch.fnmatchcase(r, pattern) for pattern in self.resources) for r in grant.resources
        ):
            return False
        if condition_keys(grant.condition) != {c.lower() for c in self.conditions}:
            return False
        if self.components and not (components and components <= set(self.components)):
            return False
        services = [p for p in grant.principals if not p.startswith("arn:")]
        if self.principals and not (
            services and all(any(fnmatch.fnmatchcase(p, w) for w in self.principals) for p in services)
        ):
            return False
        if self.via_service:
            return f'"{self.via_service}.' in grant.condition
        return "kms:ViaService" not in grant.condition


GROUPS: dict[str, Group] = {
    g.name: g
    for g in (
        Group(
            "x-ray",
            "X-Ray segments and sampling requests go to the X-Ray API, which neither emulator here "
            "implements: no such request can be made, so none can be authorized or denied",
            "https://docs.aws.amazon.com/xray/latest/devguide/security_iam_service-with-iam.html",
        ),
        Group(
            "kms-alias-operations",
            "an alias operation needs the action on the alias (IAM policy) and on the key (key "
            "policy); MiniStack authorizes it on the alias only, so taking the key policy's grant "
            "away denies nothing there",
            "https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html",
        ),
        Group(
            "kms-reencrypt",
            "MiniStack implements no ReEncrypt operation, so the request that needs "
            "kms:ReEncryptFrom and kms:ReEncryptTo (a service re-encrypting its data keys, e.g. "
            "after the table or log group changes key) cannot be made here",
            "https://docs.aws.amazon.com/kms/latest/APIReference/API_ReEncrypt.html",
        ),
        Group(
            "kms-grant-at-table-creation",
            "DynamoDB creates its grant on the table's key when the table is created or restored, "
            "with the credentials of whoever does it (Terraform's caller, the account root here, "
            "whom MiniStack never checks against a key policy)",
            "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html",
        ),
        Group(
            "sqs-message-move-task",
            "MiniStack 1.5.33 implements no message move task (Start/List/CancelMessageMoveTask); "
            "the re-drive scenario makes the requests AWS documents the task makes instead, and "
            "those are proven",
            "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-configure-dead-letter-queue-redrive.html",
        ),
        Group(
            "ministack-wrong-resource",
            "MiniStack authorizes dynamodb:ListTagsOfResource against '*', not the table ARN the "
            "request names, so the grant on table ARNs can neither allow nor deny it there "
            "(WRONG_DENIALS)",
            "https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html",
        ),
    )
}
FUNCTIONS = tuple(function.name for function in functions.FUNCTIONS)  # functions.json
ACCOUNT_VIA = ("kms:CallerAccount", "kms:ViaService")
JUSTIFICATIONS: tuple[Justification, ...] = (
    Justification(
        "x-ray",
        ("role-policy",),
        ("WriteTraces",),
        ("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
        ("*",),
        (),
        "https://docs.aws.amazon.com/lambda/latest/dg/services-xray.html",
        components=FUNCTIONS,
    ),
    Justification(
        "x-ray",
        ("role-policy",),
        ("WriteTraces",),
        (
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
        ),
        ("*",),
        (),
        "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-xray-tracing.html",
        components=("state_machine",),
    ),
    Justification(
        "kms-alias-operations",
        ("key-policy",),
        ("AccountAdministersKey",),
        ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"),
        ("*",),
        (),
        "https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html",
        components=("account",),
    ),
    Justification(
        "kms-reencrypt",
        ("key-policy",),
        ("AccountUsesKeyThroughDynamoDB",),
        ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
        ("*",),
        ACCOUNT_VIA,
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html",
        components=("account",),
        via_service="dynamodb",
    ),
    Justification(
        "kms-reencrypt",
        ("key-policy",),
        ("CloudWatchLogsUsesKeyForThisStacksLogGroups",),
        ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
        ("*",),
        ("kms:EncryptionContext:aws:logs:arn",),
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
        principals=("logs.*.amazonaws.com",),
    ),
    Justification(
        "kms-grant-at-table-creation",
        ("key-policy",),
        ("DynamoDBCreatesGrantsForTheTable",),
        ("kms:CreateGrant",),
        ("*",),
        ("kms:ViaService", "kms:GrantIsForAWSResource"),
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html",
        components=("account",),
        via_service="dynamodb",
    ),
    Justification(
        "sqs-message-move-task",
        ("operator-policy",),
        ("RedriveDeadLetterQueue",),
        ("sqs:StartMessageMoveTask", "sqs:ListMessageMoveTasks", "sqs:CancelMessageMoveTask"),
        ("arn:aws:sqs:*:*:*-uploads-dlq",),
        (),
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html",
        components=("operator",),
    ),
    Justification(
        "ministack-wrong-resource",
        ("role-policy",),
        ("DescribeTablesAndTags",),
        ("dynamodb:ListTagsOfResource",),
        ("arn:aws:dynamodb:*:*:table/*",),
        (),
        "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Tagging.Operations.html",
        components=("monitor",),
    ),
)
