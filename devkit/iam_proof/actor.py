"""Requests made as a role, a user or a service principal, and what one acting scenario saw
(devkit/iam_proof/acting.py says why the proof makes them)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from devkit.ministack import Denial
from devkit.pipeline import Pipeline

PROOF_HEADER = "x-iam-proof-request"
DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthorizationErrorException"}
)


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


@dataclass
class Acted:
    """What one acting scenario saw: requests allowed, denied (with AWS's answer), and failed for
    another reason after authorization (an emulator that does not implement the operation)."""

    allowed: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    # denials MiniStack does not write to its denial log (STS answers AssumeRole itself)
    unlogged: list[Denial] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.denied and not self.unlogged

    def describe(self) -> str:
        text = f"{len(self.allowed)} requests allowed"
        if self.other:
            text += (
                f", {len(self.other)} authorized then refused by the emulator ({'; '.join(self.other[:3])})"
            )
        if self.denied or self.unlogged:
            text += f", DENIED: {'; '.join(self.denied + [d.describe() for d in self.unlogged])[:300]}"
        return text


@dataclass
class Actor:
    """Makes requests against the stack's endpoint as a role, a user or a service principal."""

    pipeline: Pipeline
    root: Credentials = Credentials("test", "test")

    def client(self, service: str, credentials: Credentials, marking: dict[str, str] | None = None) -> Any:
        p = self.pipeline
        client = boto3.client(
            service,
            endpoint_url=p.endpoint,
            region_name=p.region,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
            verify=str(p.ca_bundle) if p.ca_bundle else None,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60),
        )
        if marking:
            header = json.dumps(marking, sort_keys=True)

            def mark(request: Any, **_: Any) -> None:
                request.headers[PROOF_HEADER] = header

            client.meta.events.register("before-sign.*.*", mark)
        return client

    def assume(self, role_arn: str, seen: Acted, service: str, source_arn: str) -> Credentials | None:
        """The role's credentials, as the service assumes it before any request with the role:
        AssumeRole as `service` (the root's key, which MiniStack's own services use, marked as the
        service's request with its aws:SourceAccount and aws:SourceArn)."""
        account = role_arn.split(":")[4]
        marking = {"service_principal": service, "source_account": account, "source_arn": source_arn}
        sts = self.client("sts", self.root, marking)
        try:
            found = sts.assume_role(RoleArn=role_arn, RoleSessionName=f"iam-proof-{uuid.uuid4().hex[:8]}")
        except ClientError as error:
            if error.response["Error"]["Code"] not in DENIED:
                raise
            seen.unlogged.append(Denial("sts", "sts:AssumeRole", service, role_arn, str(error)))
            return None
        c = found["Credentials"]
        seen.allowed.append(f"sts:AssumeRole {role_arn.rsplit('/', 1)[-1]}")
        return Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])


def attempt(seen: Acted, label: str, request: Callable[[], Any]) -> Any:
    """Make one request; a denial is recorded, any other refusal after authorization too."""
    try:
        result = request()
    except ClientError as error:
        code = error.response["Error"]["Code"]
        message = error.response["Error"].get("Message", "")
        if code in DENIED or "not authorized" in message:
            seen.denied.append(f"{label}: {code}")
        else:
            seen.other.append(f"{label}: {code}")
        return None
    seen.allowed.append(label)
    return result
