"""Local deploys fail fast and say so: bounded provider retries, terraform timeouts as TerraformError,
`make down` naming what it left behind, and an emulator port that is free again right after use."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from process_helpers import process_gone

from devkit import overrides, stack, toolchain, workspace

ROOT = toolchain.ROOT


def test_the_override_bounds_provider_retries_and_trusts_only_a_given_ca(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    overrides.write(tmp_path, "https://127.0.0.1:4566", "5.100.0", ca_bundle=bundle)
    block = (tmp_path / overrides.OVERRIDE_FILE).read_text()

    settings = {
        name.strip(): value.strip() for name, _, value in (line.partition("=") for line in block.splitlines())
    }
    assert settings["max_retries"] == str(overrides.MAX_RETRIES)
    assert overrides.MAX_RETRIES <= 3
    assert settings["custom_ca_bundle"] == f'"{bundle}"'
    overrides.write(tmp_path, "http://127.0.0.1:4566", "5.100.0")
    assert "custom_ca_bundle" not in (tmp_path / overrides.OVERRIDE_FILE).read_text()


def test_the_ca_bundle_never_becomes_ssl_cert_file(tmp_path: Path) -> None:
    """SSL_CERT_FILE would replace the roots terraform checks registry.terraform.io with."""
    ws = workspace.Workspace(tmp_path, "registry", {"PATH": "/usr/bin"})
    deployment = stack.Stack(ws, "https://127.0.0.1:4566", tmp_path / "ca.pem")
    assert "SSL_CERT_FILE" not in deployment.workspace.env
    usage = stack.usage_text(deployment.endpoint, deployment.ca_bundle, "ministack", "/x/rc", tmp_path)
    assert f"AWS_CA_BUNDLE={tmp_path / 'ca.pem'}" in usage
    assert "SSL_CERT_FILE" not in usage


def test_a_terraform_timeout_is_a_terraform_error_naming_the_command_and_its_last_output(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    child_pid = tmp_path / "child.pid"
    fake = bin_dir / "terraform"
    fake.write_text(
        "#!/bin/sh\n"
        'for i in 1 2 3; do echo "still creating $i"; done\n'
        f"sleep 300 & echo $! > {child_pid}\n"  # like a provider plugin: a child of terraform
        "sleep 300\n"
    )
    fake.chmod(0o755)
    ws = workspace.Workspace(tmp_path, "5.100.0", {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})

    started = time.monotonic()
    with pytest.raises(workspace.TerraformError) as failed:
        ws.run("apply", "-auto-approve", timeout=2)

    assert time.monotonic() - started < 30
    message = str(failed.value)
    assert "terraform apply -auto-approve (hashicorp/aws 5.100.0" in message
    assert "timed out after 2 s" in message
    assert "still creating 3" in message
    pid = int(child_pid.read_text())
    assert process_gone(pid), "the command's children must be stopped with it"


IDENTITY = (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
    "<Arn>arn:aws:iam::123456789012:root</Arn><UserId>123456789012</UserId><Account>123456789012</Account>"
    "</GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
    "</GetCallerIdentityResponse>"
)


class BrokenAws(BaseHTTPRequestHandler):
    """Knows who the caller is (STS), answers HTTP 500 to everything else: a broken local AWS."""

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"Action=GetCallerIdentity" in body:
            status, payload, kind = 200, IDENTITY.encode(), "text/xml"
        else:
            status, kind = 500, "application/x-amz-json-1.1"
            payload = json.dumps({"__type": "InternalFailure", "message": "broken on purpose"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def broken_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BrokenAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def failed_apply(broken_endpoint: str) -> tuple[stack.Stack, str]:
    deployment = stack.Stack.staged(broken_endpoint, name="broken-endpoint")
    with pytest.raises(workspace.TerraformError) as failed:
        # The bound is the requirement: a broken endpoint fails the apply in under 2 minutes (the
        # default of 25 retries would take far longer); past it the apply ends as "timed out", and
        # the test below fails.
        deployment.deploy(timeout=120)
    return deployment, str(failed.value)


def test_an_endpoint_answering_500_fails_the_apply_fast_with_terraforms_own_message(
    failed_apply: tuple[stack.Stack, str],
) -> None:
    _, message = failed_apply
    assert "timed out" not in message
    assert "terraform apply" in message
    assert "Error: creating" in message
    assert "StatusCode: 500" in message or "status code: 500" in message


def test_down_says_what_it_left_behind_when_destroy_fails(
    failed_apply: tuple[stack.Stack, str], broken_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment, _ = failed_apply
    ws = deployment.workspace.path
    topic = "arn:aws:sns:eu-central-1:123456789012:file-ingestion-dev-alerts"
    (ws / "terraform.tfstate").write_text(json.dumps(_state_with_topic(topic)))
    overrides.write(ws, broken_endpoint, deployment.provider)

    status = stack.down(4566, broken_endpoint, directory=ws)

    err = capsys.readouterr().err
    assert status == 1
    assert "left behind" in err
    assert f"{ws / 'terraform.tfstate'} (resources still recorded)" in err
    assert f"{ws / overrides.OVERRIDE_FILE}" in err
    assert (ws / overrides.OVERRIDE_FILE).exists(), "kept, so that `make down` can be retried"
    deployment.remove_overrides()
    (ws / "terraform.tfstate").unlink()


def _state_with_topic(arn: str) -> dict[str, object]:
    return {
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 1,
        "lineage": "00000000-0000-0000-0000-000000000000",
        "outputs": {},
        "resources": [
            {
                "mode": "managed",
                "type": "aws_sns_topic",
                "name": "alerts",
                "provider": 'provider["registry.terraform.io/hashicorp/aws"]',
                "instances": [
                    {
                        "schema_version": 0,
                        "attributes": {"id": arn, "arn": arn, "name": arn.rsplit(":", 1)[1]},
                    }
                ],
            }
        ],
    }


def _time_wait_on(port: int) -> int:
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "06":
                count += 1
    return count


def _emulator_cli(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args, "--state-dir", str(state)],
        cwd=toolchain.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_emulator_starts_again_at_once_on_a_port_full_of_time_wait_connections(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = tmp_path / "state"
    started = _emulator_cli("start", "--port", str(port), state=state)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        for _ in range(200):  # like `make demo`: many short connections that the server closes
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while conn.recv(65536):
                    pass
        assert _emulator_cli("stop", state=state).returncode == 0
        assert _time_wait_on(port) > 0, "the scenario needs connections in TIME-WAIT on the port"

        again = _emulator_cli("start", "--port", str(port), state=state)

        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        _emulator_cli("stop", state=state)


def _logical_lines(text: str) -> list[str]:
    """The text's lines with shell continuations (a trailing backslash) joined."""
    return re.sub(r"\\\n\s*", "", text).splitlines()


def _upload_commands(text: str) -> list[list[str]]:
    """The `aws ... s3 cp` commands of the text, `$(terraform output -raw NAME)` read as `{NAME}`."""
    commands = []
    for line in _logical_lines(text):
        if line.strip().startswith("aws "):
            readable = re.sub(r"\$\(terraform output -raw (\w+)\)", r"{\1}", line)
            commands.append(shlex.split(readable))
    return commands


def _output_value(name: str) -> str:
    block = re.search(rf'output "{name}" {{(.*?)\n}}', (toolchain.ROOT / "outputs.tf").read_text(), re.S)
    value = re.search(r"value\s+=\s+(\S+)", block.group(1)) if block else None
    assert value, f"outputs.tf has no output {name} with a value"
    return value.group(1)


def test_make_up_offers_only_the_upload_forms_that_work() -> None:
    text = stack.usage_text(
        "http://127.0.0.1:4566", None, "embedded", "/x/terraformrc-5.100.0", toolchain.ROOT / ".tools" / "bin"
    )

    commands = _upload_commands(text)
    destination = "s3://{s3_bucket_name}/file.csv"
    assert commands == [
        ["aws", "--endpoint-url", "$ENDPOINT_URL", "s3", "cp", "file.csv", destination],
        [
            *("aws", "--endpoint-url", "$ENDPOINT_URL", "s3", "cp", "file.csv", destination),
            *("--sse", "aws:kms", "--sse-kms-key-id", "{kms_s3_key_arn}"),
        ],
    ]
    assert _output_value("kms_s3_key_arn") == "aws_kms_key.s3.arn"  # the key's ARN, the bucket's key
    assert _output_value("s3_bucket_name").startswith("aws_s3_bucket.")
    # the seed README's form, --sse aws:kms without a key id, is no command, only named as refused
    assert not [c for c in commands if "--sse" in c and "--sse-kms-key-id" not in c]
    [mention] = [
        line
        for line in _logical_lines(text)
        if "--sse aws:kms" in line and not line.strip().startswith("aws ")
    ]
    assert "alone is refused" in mention
    assert "ENDPOINT_URL=http://127.0.0.1:4566" in text


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No mirror and no registry; .tools in tmp_path."""
    monkeypatch.setenv("TOOLCHAIN_HIDE_MACHINE", "1")
    monkeypatch.delenv("TF_PROVIDER_MIRRORS", raising=False)
    monkeypatch.setattr(toolchain, "registry_reachable", lambda: False)
    monkeypatch.setattr(toolchain, "TOOLS", tmp_path / "tools")


@pytest.mark.usefixtures("offline")
def test_up_without_a_provider_source_starts_nothing_and_says_why_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack.Managed, "start", lambda self: pytest.fail("no emulator may start"))

    assert stack.main(["up", "--port", "4566"]) == 2

    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"stack: {toolchain.offline_message()}"]
    assert captured.out == ""


@pytest.mark.usefixtures("offline")
def test_down_without_a_provider_source_still_cleans_up(tmp_path: Path) -> None:
    """`make up` went online, `make down` offline: nothing to destroy needs a provider download."""
    (tmp_path / overrides.OVERRIDE_FILE).write_text("# left by make up\n")

    assert stack.down(4566, "http://127.0.0.1:9", directory=tmp_path) == 0

    assert not (tmp_path / overrides.OVERRIDE_FILE).exists()


# --- a copy of backend.tf.example in the root ------------------------------------------------------

BACKEND_COPY = 'terraform {\n  backend "s3" {\n    bucket = "team-state"\n  }\n}\n'


def test_a_root_with_a_backend_makes_staged_directories_keep_their_state_local(tmp_path: Path) -> None:
    root, staged = tmp_path / "root", tmp_path / "staged"
    root.mkdir()
    staged.mkdir()
    (root / "main.tf").write_text('resource "x" "y" {}\n')

    workspace.keep_state_local(staged, root)
    assert not (staged / workspace.LOCAL_BACKEND_FILE).exists(), "no backend in the root: no override"

    (root / "backend.tf").write_text(BACKEND_COPY)
    workspace.keep_state_local(staged, root)
    assert workspace.declared_backends(root) == ["backend.tf"]
    assert (staged / workspace.LOCAL_BACKEND_FILE).read_text() == 'terraform {\n  backend "local" {}\n}\n'

    (root / "backend.tf").unlink()
    workspace.keep_state_local(staged, root)
    assert not (staged / workspace.LOCAL_BACKEND_FILE).exists(), "removed with the root's backend"


def test_the_example_backend_counts_only_once_copied_to_a_tf_file() -> None:
    example = (ROOT / "backend.tf.example").read_text()

    assert workspace.BACKEND.search(example), "the example declares a backend"
    assert "backend.tf.example" not in workspace.declared_backends(ROOT)


@pytest.mark.parametrize("action", ["up", "down"])
def test_make_up_and_down_refuse_a_root_with_a_backend_in_one_sentence(
    action: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "backend_override.tf").write_text(BACKEND_COPY)
    found = workspace.declared_backends(tmp_path)  # the root itself must stay as it is
    monkeypatch.setattr(workspace, "declared_backends", lambda directory=ROOT: found)
    monkeypatch.setattr(stack.Managed, "start", lambda self: pytest.fail("no emulator may start"))

    assert stack.main([action, "--port", "4566"]) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"stack: backend_override.tf in {ROOT} declares a Terraform backend")
    assert line.endswith("move it aside while the local stack is up, or run `make up` in another clone")
