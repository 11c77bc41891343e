"""Find and delete what sandbox runs (``make e2e-aws``) left in an account, by their run tag.

Every resource a sandbox run creates carries the tag :data:`RUN_TAG` (its run id) and
:data:`STARTED_TAG` (when the run started, ISO 8601 UTC): Terraform's ``default_tags`` put them
on the stack, the tests put them on what they create beside it (the alert observer queue, the
monitor's unencrypted bucket). A run destroys its stack in a ``finally``; this module is the net
under it, for a run that was killed, or a destroy that failed half way.

Discovery uses the Resource Groups Tagging API (every tagged resource of the region) and, since
that API does not list IAM, IAM's own ``ListRoles`` and ``ListUsers`` for roles (the stack's)
and users (``make iam-proof-aws``'s own) named with the sandbox prefix, whose tags are then read. Deletion is per resource type, in dependency order (schedules and
functions before the roles they use, keys last: scheduled for deletion after 7 days, as KMS
requires). A resource of a type this module does not know is listed and reported as not deleted.

CLI (``make aws-sweep``)::

    python -m devkit.sweep (--run-id ID | --older-than 24h) [--yes] [--endpoint URL] [--region R]

Without ``--yes`` (``CONFIRM=yes``) it only lists.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from devkit import account
from devkit.pipeline import delete_every_version

RUN_TAG = "IngestionSandboxRun"
STARTED_TAG = "IngestionSandboxStarted"
PREFIX = "ingest"
"""Every sandbox run's ``project_name`` is ``<PREFIX>-<run id>``: the roles are found by it."""
KMS_PENDING_DAYS = 7

# Deleted first to last: what uses a resource goes before it.
ORDER = (
    "events:rule",
    "lambda:event-source-mapping",
    "lambda:function",
    "states:stateMachine",
    "cloudwatch:alarm",
    "sns:topic",
    "sqs:queue",
    "dynamodb:table",
    "s3:bucket",
    "logs:log-group",
    "iam:user",
    "iam:role",
    "kms:key",
)


class SweepError(RuntimeError):
    """The sweep could not list the account's resources; the message says why, in one sentence."""


@dataclass(frozen=True)
class Leftover:
    """One resource a sandbox run tagged."""

    arn: str
    run_id: str
    started: datetime | None

    @property
    def kind(self) -> str:
        """``<service>:<resource type>`` (``s3:bucket``, ``lambda:function``, ...)."""
        service, resource = self.arn.split(":", 6)[2], self.arn.split(":", 5)[5]
        if service == "s3":
            return "s3:bucket"
        if service == "sqs":
            return "sqs:queue"
        if service == "sns":
            return "sns:topic"
        return f"{service}:{re.split('[:/]', resource, maxsplit=1)[0]}"

    @property
    def name(self) -> str:
        """The name (or id) the service's delete call takes."""
        resource = self.arn.split(":", 5)[5]
        if self.kind in {"s3:bucket", "sqs:queue", "sns:topic"}:
            return resource
        if self.kind == "logs:log-group":
            return resource.split(":", 1)[1].removesuffix(":*")
        return re.split("[:/]", resource, maxsplit=1)[1]


def parse_age(text: str) -> timedelta:
    """``24h``, ``90m``, ``2d`` as a duration; ValueError for anything else."""
    match = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not match:
        raise ValueError(f"--older-than {text!r} is not a duration such as 90m, 24h or 2d")
    unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


def _age(text: str) -> timedelta:
    try:
        return parse_age(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _started(tags: dict[str, str]) -> datetime | None:
    try:
        return datetime.fromisoformat(tags[STARTED_TAG])
    except (KeyError, ValueError):
        return None


def wanted(leftover: Leftover, run_id: str | None, older_than: timedelta | None, now: datetime) -> bool:
    """A leftover of run ``run_id``, or (``older_than``) of any run started at least that long ago.

    A resource without a readable start time is old enough: it cannot be told apart from a stale one."""
    if run_id is not None:
        return leftover.run_id == run_id
    if older_than is None:
        return False
    return leftover.started is None or now - leftover.started >= older_than


def discover(client: Callable[[str], Any], run_id: str | None = None) -> list[Leftover]:
    """Every resource tagged by a sandbox run (only run ``run_id``'s when given), IAM roles and users included."""
    filters = [{"Key": RUN_TAG, "Values": [run_id]}] if run_id else [{"Key": RUN_TAG}]
    found: list[Leftover] = []
    try:
        pages = client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(TagFilters=filters)
        for page in pages:
            for mapping in page["ResourceTagMappingList"]:
                tags = {tag["Key"]: tag["Value"] for tag in mapping.get("Tags", [])}
                leftover = Leftover(mapping["ResourceARN"], tags.get(RUN_TAG, ""), _started(tags))
                if not _pending_deletion(client, leftover):
                    found.append(leftover)
        found += _iam_leftovers(client("iam"), "role", run_id) + _iam_leftovers(client("iam"), "user", run_id)
    except (ClientError, BotoCoreError) as error:
        raise SweepError(f"could not list the account's tagged resources: {error}") from error
    return sorted(found, key=lambda leftover: (_rank(leftover), leftover.arn))


def _iam_leftovers(iam: Any, kind: str, run_id: str | None) -> list[Leftover]:
    """The IAM roles or users (``kind``) named with the sandbox prefix and tagged by a run."""
    noun = kind.capitalize()  # Role, User: ListRoles/RoleName, ListUsers/UserName
    tags_of = iam.list_role_tags if kind == "role" else iam.list_user_tags
    found = []
    for page in iam.get_paginator(f"list_{kind}s").paginate():
        for entity in page[f"{noun}s"]:
            name = entity[f"{noun}Name"]
            if not name.startswith(f"{PREFIX}-"):
                continue
            tags = {t["Key"]: t["Value"] for t in tags_of(**{f"{noun}Name": name})["Tags"]}
            if RUN_TAG in tags and (run_id is None or tags[RUN_TAG] == run_id):
                found.append(Leftover(entity["Arn"], tags[RUN_TAG], _started(tags)))
    return found


def _pending_deletion(client: Callable[[str], Any], leftover: Leftover) -> bool:
    """A KMS key already scheduled for deletion (a destroy's or a sweep's): nothing left to do."""
    if leftover.kind != "kms:key":
        return False
    return bool(
        client("kms").describe_key(KeyId=leftover.arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    )


def _rank(leftover: Leftover) -> int:
    return ORDER.index(leftover.kind) if leftover.kind in ORDER else len(ORDER)


# --- deleting, one function per resource type --------------------------------------------------


def _rule(client: Callable[[str], Any], leftover: Leftover) -> None:
    events = client("events")
    targets = events.list_targets_by_rule(Rule=leftover.name).get("Targets", [])
    if targets:
        events.remove_targets(Rule=leftover.name, Ids=[target["Id"] for target in targets], Force=True)
    events.delete_rule(Name=leftover.name, Force=True)


def _function(client: Callable[[str], Any], leftover: Leftover) -> None:
    lam = client("lambda")
    for mapping in lam.list_event_source_mappings(FunctionName=leftover.arn).get("EventSourceMappings", []):
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    lam.delete_function(FunctionName=leftover.arn)


def _queue(client: Callable[[str], Any], leftover: Leftover) -> None:
    sqs = client("sqs")
    account = leftover.arn.split(":")[4]
    url = sqs.get_queue_url(QueueName=leftover.name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)


def _table(client: Callable[[str], Any], leftover: Leftover) -> None:
    dynamodb = client("dynamodb")
    dynamodb.update_table(TableName=leftover.name, DeletionProtectionEnabled=False)
    dynamodb.get_waiter("table_exists").wait(TableName=leftover.name)  # ACTIVE again after the update
    dynamodb.delete_table(TableName=leftover.name)


def _bucket(client: Callable[[str], Any], leftover: Leftover) -> None:
    delete_every_version(client("s3"), leftover.name)
    client("s3").delete_bucket(Bucket=leftover.name)


def _role(client: Callable[[str], Any], leftover: Leftover) -> None:
    iam = client("iam")
    for name in iam.list_role_policies(RoleName=leftover.name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=leftover.name, PolicyName=name)
    for policy in iam.list_attached_role_policies(RoleName=leftover.name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=leftover.name, PolicyArn=policy["PolicyArn"])
    for profile in iam.list_instance_profiles_for_role(RoleName=leftover.name)["InstanceProfiles"]:
        iam.remove_role_from_instance_profile(
            InstanceProfileName=profile["InstanceProfileName"], RoleName=leftover.name
        )
    iam.delete_role(RoleName=leftover.name)


def delete_user(iam: Any, user: str) -> None:
    """An IAM user with its access keys and inline policies (what ``make iam-proof-aws`` gives its
    users; an attached policy is detached)."""
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    for name in iam.list_user_policies(UserName=user)["PolicyNames"]:
        iam.delete_user_policy(UserName=user, PolicyName=name)
    for policy in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]:
        iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"])
    iam.delete_user(UserName=user)


def _key(client: Callable[[str], Any], leftover: Leftover) -> None:
    kms = client("kms")
    if kms.describe_key(KeyId=leftover.name)["KeyMetadata"]["KeyState"] == "PendingDeletion":
        return
    kms.schedule_key_deletion(KeyId=leftover.name, PendingWindowInDays=KMS_PENDING_DAYS)


DELETERS: dict[str, Callable[[Callable[[str], Any], Leftover], None]] = {
    "events:rule": _rule,
    "lambda:event-source-mapping": lambda c, x: c("lambda").delete_event_source_mapping(UUID=x.name),
    "lambda:function": _function,
    "states:stateMachine": lambda c, x: c("stepfunctions").delete_state_machine(stateMachineArn=x.arn),
    "cloudwatch:alarm": lambda c, x: c("cloudwatch").delete_alarms(AlarmNames=[x.name]),
    "sns:topic": lambda c, x: c("sns").delete_topic(TopicArn=x.arn),
    "sqs:queue": _queue,
    "dynamodb:table": _table,
    "s3:bucket": _bucket,
    "logs:log-group": lambda c, x: c("logs").delete_log_group(logGroupName=x.name),
    "iam:user": lambda c, x: delete_user(c("iam"), x.name),
    "iam:role": _role,
    "kms:key": _key,
}

GONE = {
    "NoSuchBucket",
    "NoSuchEntity",
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFoundException",
    "StateMachineDoesNotExist",
}
"""Error codes that mean the resource is already gone (a destroy that raced the sweep)."""


@dataclass
class Result:
    deleted: list[Leftover]
    failed: list[tuple[Leftover, str]]


def delete(client: Callable[[str], Any], leftovers: Iterable[Leftover]) -> Result:
    """Delete each leftover in :data:`ORDER`; a failure is recorded and the sweep goes on."""
    result = Result([], [])
    for leftover in sorted(leftovers, key=lambda item: (_rank(item), item.arn)):
        deleter = DELETERS.get(leftover.kind)
        if deleter is None:
            result.failed.append((leftover, f"no deleter for {leftover.kind}: delete it by hand"))
            continue
        try:
            deleter(client, leftover)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in GONE:
                result.failed.append((leftover, str(error)))
                continue
        except BotoCoreError as error:
            result.failed.append((leftover, str(error)))
            continue
        result.deleted.append(leftover)
    return result


def clients(endpoint: str | None, region: str) -> Callable[[str], Any]:
    """``client(service)`` for the standard credential chain (or an emulator's endpoint), cached."""
    import boto3

    session = boto3.Session(region_name=region)
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, endpoint_url=endpoint)
        return made[service]

    return client


def sweep(
    client: Callable[[str], Any],
    run_id: str | None,
    older_than: timedelta | None,
    confirmed: bool,
    out: Callable[[str], None] = print,
    now: datetime | None = None,
) -> int:
    """List the wanted leftovers, delete them when confirmed; 0 when none is left, else 1."""
    moment = now or datetime.now(UTC)
    found = [x for x in discover(client, run_id) if wanted(x, run_id, older_than, moment)]
    what = f"run {run_id}" if run_id else f"runs started over {older_than} ago"
    out(f"sweep: {len(found)} resource(s) tagged {RUN_TAG} by {what}")
    for leftover in found:
        out(f"  {leftover.kind:28} {leftover.arn}")
    if not found:
        return 0
    if not confirmed:
        out("sweep: nothing deleted; run again with CONFIRM=yes (--yes) to delete them")
        return 1
    result = delete(client, found)
    out(f"sweep: deleted {len(result.deleted)}, failed {len(result.failed)}")
    for leftover, reason in result.failed:
        out(f"  NOT deleted {leftover.arn}: {reason}")
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.sweep", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="the run whose resources to delete")
    which.add_argument("--older-than", type=_age, help="every run started this long ago (24h, 2d)")
    parser.add_argument("--yes", action="store_true", help="delete (CONFIRM=yes); without it, only list")
    parser.add_argument("--endpoint", default=None, help="an emulator's endpoint instead of AWS")
    parser.add_argument("--region", default=None, help="the region to sweep (default: the chain's)")
    args = parser.parse_args(argv)
    try:
        who = account.caller(args.endpoint, args.region)
        print(f"sweep: account {who.account} ({who.arn}), region {who.region}, endpoint {who.where}")
        return sweep(clients(args.endpoint, who.region), args.run_id, args.older_than, args.yes)
    except (account.AccountError, SweepError) as error:
        print(f"make aws-sweep: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
