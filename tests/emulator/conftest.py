"""Fixtures for the emulator tests: one in-process Emulator per test module, on a free port.

Each module's emulator is stopped at the end of the module, and the teardown asserts that nothing is
left behind: no new thread, no child process, and the port is free again.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from emulator_helpers import REGION, ROLE_POLICY, assert_nothing_left, child_pids, zip_bytes  # noqa: E402

from emulator import Emulator  # noqa: E402


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    threads_before = {t.ident for t in threading.enumerate() if t.ident is not None}
    children_before = child_pids()
    log_path = tmp_path_factory.mktemp("emulator") / "emulator.log"
    emu = Emulator(port=0, log_path=log_path, async_retry_delays=(0.2, 0.2))
    emu.start()
    port = emu.port
    try:
        yield emu
    finally:
        emu.stop()
    assert_nothing_left(threads_before, children_before, port)


@pytest.fixture(scope="module")
def aws_client(emulator: Emulator) -> Callable[[str], Any]:
    """``aws_client("s3")`` -> a boto3 client for the module's emulator."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    clients: dict[str, Any] = {}

    def make(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(
                service,
                endpoint_url=emulator.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 3}),
            )
        return clients[service]

    return make


@pytest.fixture(scope="module")
def lambda_role(aws_client: Callable[[str], Any]) -> str:
    return str(
        aws_client("iam").create_role(RoleName="emulator-test-lambda", AssumeRolePolicyDocument=ROLE_POLICY)[
            "Role"
        ]["Arn"]
    )


@pytest.fixture(scope="module")
def make_function(aws_client: Callable[[str], Any], lambda_role: str) -> Callable[..., str]:
    """Create a Python Lambda function from source files; returns its ARN."""

    def make(name: str, files: dict[str, str], handler: str = "index.handler", **kwargs: Any) -> str:
        response = aws_client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=lambda_role,
            Handler=handler,
            Code={"ZipFile": zip_bytes(files)},
            **kwargs,
        )
        return str(response["FunctionArn"])

    return make
