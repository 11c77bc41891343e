"""The state machine the run is about, and the boto3 clients it uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.config import Config

from ingestion_reconcile.errors import aws_errors
from lambda_common.naming import execution_arn

DEFAULT_WORKERS: Final = 8
_STATE_MACHINE_ARN: Final = re.compile(
    r"arn:(?P<partition>[a-z-]+):states:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"stateMachine:(?P<name>[A-Za-z0-9_-]{1,80})"
)


@dataclass(frozen=True)
class StateMachine:
    """A state machine ARN, and the ARNs of its executions."""

    arn: str
    partition: str
    region: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> StateMachine:
        match = _STATE_MACHINE_ARN.fullmatch(arn)
        if match is None:
            raise ValueError(
                f"not a state machine ARN: {arn!r} (expected arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
            )
        return cls(arn=arn, **match.groupdict())

    def execution_arn(self, execution: str) -> str:
        return execution_arn(self.arn, execution)  # the trigger builds it the same way


@dataclass(frozen=True)
class Clients:
    """The three boto3 clients the tool uses (thread-safe; shared by the workers)."""

    s3: Any
    dynamodb: Any
    stepfunctions: Any

    @classmethod
    def create(
        cls,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        session: boto3.session.Session | None = None,
        max_pool_connections: int = DEFAULT_WORKERS * 2,
    ) -> Clients:
        """Clients from the default credential chain (or ``session``); ``endpoint_url`` for an emulator.

        Throttled calls are retried with backoff (botocore's standard mode, up to 10 attempts).
        """
        session = session or boto3.session.Session()
        config = Config(
            retries={"mode": "standard", "max_attempts": 10},
            max_pool_connections=max_pool_connections,
            s3={"addressing_style": "path"} if endpoint_url else None,
        )

        def client(service: str) -> Any:
            return session.client(service, region_name=region, endpoint_url=endpoint_url, config=config)

        with aws_errors("creating clients", "the AWS configuration"):
            return cls(s3=client("s3"), dynamodb=client("dynamodb"), stepfunctions=client("stepfunctions"))


def pagination(page_size: int | None) -> dict[str, Any]:
    """A paginator's PaginationConfig: ``page_size`` items a page, or the service's default."""
    return {"PageSize": page_size} if page_size else {}
