"""Who the standard credential chain is: the account, caller and region a sandbox run or a sweep
acts in (``make e2e-aws``, ``make aws-sweep``), or why there is none, in one sentence."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

DEFAULT_REGION = "eu-central-1"


class AccountError(RuntimeError):
    """No usable credentials: the message says why and what to do, in one sentence."""


@dataclass(frozen=True)
class Caller:
    account: str
    arn: str
    region: str
    endpoint: str | None

    @property
    def where(self) -> str:
        return self.endpoint or "AWS"


def caller(endpoint: str | None, region: str | None) -> Caller:
    """Who the standard credential chain is, asked through STS; :class:`AccountError` otherwise."""
    session = boto3.Session(region_name=region)
    chosen = region or session.region_name or DEFAULT_REGION
    if session.get_credentials() is None:
        raise AccountError(
            "no AWS credentials were found in the standard chain (environment variables, ~/.aws, "
            "SSO, an instance or OIDC role): configure them (e.g. `aws sso login`) and run it again; "
            "nothing was created"
        )
    try:
        identity = session.client("sts", region_name=chosen, endpoint_url=endpoint).get_caller_identity()
    except NoCredentialsError as error:
        raise AccountError(
            f"the AWS credentials could not be loaded ({error}); nothing was created"
        ) from error
    except (ClientError, BotoCoreError) as error:
        raise AccountError(
            f"STS refused the AWS credentials or could not be reached ({error}); nothing was created"
        ) from error
    return Caller(str(identity["Account"]), str(identity["Arn"]), chosen, endpoint)
