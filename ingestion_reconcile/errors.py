"""The errors that stop a run (exit status 2), and the translation of botocore's into them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

NOT_FOUND_CODES: Final = frozenset(
    {"NoSuchBucket", "ResourceNotFoundException", "StateMachineDoesNotExist", "404"}
)
ACCESS_DENIED_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "403",
    }
)


class ReconcileError(RuntimeError):
    """An error that stops the run (exit status 2); the message says what to do."""


class ResourceNotFoundError(ReconcileError):
    """The bucket, table or state machine does not exist (in this account and region)."""


class AccessDeniedError(ReconcileError):
    """The credentials may not make a call the tool needs (see reconcile_operator_policy_json)."""


class AwsUnavailableError(ReconcileError):
    """No credentials or region, or the endpoint cannot be reached."""


class AwsCallError(ReconcileError):
    """Any other AWS error that stops the run."""


class UnsupportedWorkflowError(ReconcileError):
    """DescribeStateMachine named a workflow type this tool does not know."""


def _error_for(err: ClientError, action: str, resource: str) -> ReconcileError:
    code = str(err.response.get("Error", {}).get("Code", "Unknown"))
    message = err.response.get("Error", {}).get("Message") or str(err)
    if code in NOT_FOUND_CODES:
        return ResourceNotFoundError(f"{resource} not found ({action}: {code}: {message})")
    if code in ACCESS_DENIED_CODES:
        return AccessDeniedError(
            f"access denied to {resource} ({action}: {code}: {message}); the tool needs the "
            "Terraform output reconcile_operator_policy_json"
        )
    return AwsCallError(f"{action} on {resource} failed: {code}: {message}")


@contextmanager
def aws_errors(action: str, resource: str) -> Iterator[None]:
    """Turn botocore's errors inside the block into :class:`ReconcileError` subclasses."""
    try:
        yield
    except ClientError as err:
        raise _error_for(err, action, resource) from err
    except (NoCredentialsError, NoRegionError) as err:
        raise AwsUnavailableError(f"{action}: {err}; configure credentials and a region") from err
    except EndpointConnectionError as err:
        raise AwsUnavailableError(f"{action}: {err}") from err
    except BotoCoreError as err:
        raise AwsCallError(f"{action} on {resource} failed: {err}") from err


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "Unknown"))
