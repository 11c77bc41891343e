"""MiniStack as a backend: started on loopback with IAM and TLS, its denials logged, and stopped with
every process it started (its Lambda workers included)."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from process_helpers import process_gone

from devkit import ministack, toolchain
from devkit.ministack import MiniStack, group_members

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniStack]:
    running = MiniStack(port=0, state_dir=tmp_path_factory.mktemp("ministack"), name="tooling").start()
    yield running
    running.stop()


ROOT_KEY = ("test", "test")  # MiniStack treats access key "test" as the account root


def client(server: MiniStack, service: str, credentials: tuple[str, str] = ROOT_KEY) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=credentials[0],
        aws_secret_access_key=credentials[1],
        verify=str(server.ca_bundle),
    )


def test_it_listens_on_loopback_only_with_tls_and_auth(server: MiniStack) -> None:
    assert server.endpoint_url.startswith("https://127.0.0.1:")
    assert server.health()["services"]["lambda"] in ("available", "running")
    environment = server.environment()
    assert environment["BIND_HOST"] == "127.0.0.1"
    assert environment["AUTH"] == "true"
    assert environment["IOT_MTLS_ENABLED"] == environment["SFTP_ENABLED"] == "0"
    assert "PYTHONPATH" not in environment
    assert "AWS_CA_BUNDLE" not in environment
    assert Path(environment["TMPDIR"]).is_relative_to(server.state_dir)


def test_a_denied_request_is_logged_with_its_action_and_principal(server: MiniStack) -> None:
    iam = client(server, "iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    offset = server.denial_offset()

    with pytest.raises(ClientError):
        client(server, "sqs", (key["AccessKeyId"], key["SecretAccessKey"])).list_queues()

    denials, _ = server.denials(offset)
    assert [(d.action, d.principal.rsplit("/", 1)[-1]) for d in denials] == [("sqs:ListQueues", "nobody")]


def _function_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "import os\n\ndef handler(event, context):\n    return os.getpid()\n")
    return buffer.getvalue()


def test_stop_ends_every_process_it_started_and_frees_the_port(tmp_path: Path) -> None:
    own = MiniStack(port=0, state_dir=tmp_path, name="lifecycle").start()
    pgid, port = own.pgid, own.port
    try:
        iam, lam = client(own, "iam"), client(own, "lambda")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        lam.create_function(
            FunctionName="pid",
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": _function_zip()},
        )
        worker = json.loads(lam.invoke(FunctionName="pid")["Payload"].read())
        assert worker in group_members(pgid), "the Lambda worker runs in MiniStack's process group"
    finally:
        own.stop()

    assert group_members(pgid) == []
    assert not own.tmp_dir.exists()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def _cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devkit.ministack", *args, "--state-dir", str(state)],
        cwd=toolchain.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_leaves_it_running_in_the_background_until_stop(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    started = _cli("start", "--port", str(port), state=tmp_path)
    assert started.returncode == 0, started.stdout + started.stderr
    info = json.loads((tmp_path / "ministack.json").read_text())
    try:
        status = _cli("status", state=tmp_path)
        assert status.returncode == 0, status.stdout
        assert json.loads(status.stdout) == {"running": True, "healthy": True, "endpoint": info["endpoint"]}
        assert _cli("start", "--port", str(port), state=tmp_path).returncode == 1, "one at a time"
    finally:
        stopped = _cli("stop", state=tmp_path)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert group_members(info["pgid"]) == []
    assert _cli("status", state=tmp_path).returncode == 3


def test_an_install_that_hangs_is_a_ministack_error_naming_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip stuck on a network that never answers: the step is stopped and named, nothing is stamped."""
    requirements = tmp_path / "requirements-ministack.txt"
    requirements.write_text("ministack\n")
    pid_file = tmp_path / "child.pid"
    stuck = [
        sys.executable,
        "-c",
        "import subprocess, sys, time\n"
        "print('Collecting ministack', flush=True)\n"
        "print('Retrying after connection broken', file=sys.stderr, flush=True)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(300)\n",
    ]
    monkeypatch.setattr(ministack, "VENV", tmp_path / "venv")
    monkeypatch.setattr(ministack, "REQUIREMENTS", requirements)
    monkeypatch.setattr(ministack, "_install_steps", lambda _python: [stuck])
    monkeypatch.setattr(ministack, "INSTALL_TIMEOUT", 1.0)

    started = time.monotonic()
    with pytest.raises(ministack.MiniStackError) as failed:
        ministack.ensure_installed()

    assert time.monotonic() - started < 30
    message = str(failed.value)
    assert f"`{sys.executable} -c" in message
    assert "did not finish within 1 s" in message
    assert "Collecting ministack" in message
    assert "Retrying after connection broken" in message
    assert not (tmp_path / "venv" / ".installed").exists()
    assert process_gone(int(pid_file.read_text())), "what the step started is stopped with it"
