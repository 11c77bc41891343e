"""Emulator lifecycle: health, clean shutdown, port handling, and the CLI daemon round trip."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import boto3
import pytest
from emulator_helpers import assert_nothing_left, child_pids, free_port, port_accepts

from emulator import AdminClient, Emulator, EmulatorError, wait_until_healthy
from emulator.http_server import port_is_free

pytestmark = pytest.mark.emulator
REPO_ROOT = Path(__file__).resolve().parents[2]


def _get_json(url: str) -> dict:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())


def test_start_health_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = child_pids()
    previous_moto_port = os.environ.get("MOTO_PORT")
    log_path = tmp_path / "emulator.log"
    with Emulator(port=0, log_path=log_path) as emu:
        port = emu.port
        assert port > 0
        assert emu.endpoint_url == f"http://127.0.0.1:{port}"
        assert os.environ["MOTO_PORT"] == str(port)
        health = _get_json(f"{emu.endpoint_url}/_emulator/health")
        assert health["status"] == "ok"
        assert health["port"] == port
        assert wait_until_healthy(emu.endpoint_url, timeout=5)["pid"] == os.getpid()
        s3 = boto3.client(
            "s3",
            endpoint_url=emu.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="lifecycle-bucket")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["lifecycle-bucket"]
    assert os.environ.get("MOTO_PORT") == previous_moto_port
    assert_nothing_left(threads_before, children_before, port)
    log = log_path.read_text()
    assert f"emulator listening on http://127.0.0.1:{port}" in log
    assert "PUT /lifecycle-bucket -> 200" in log
    assert "stopping" in log


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        with pytest.raises(EmulatorError, match=f"cannot listen on 127.0.0.1:{port}"):
            Emulator(port=port).start()


def test_restart_on_the_same_port_and_fresh_state() -> None:
    port = free_port()
    for _ in range(2):
        with Emulator(port=port) as emu:
            s3 = boto3.client(
                "s3",
                endpoint_url=emu.endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            assert s3.list_buckets()["Buckets"] == []  # each start is a fresh AWS
            s3.create_bucket(Bucket="restart-bucket")
    assert not port_accepts(port)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_cli_start_status_stop_round_trip(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    common = ("--state-dir", str(state), "--port", str(port))

    started = _cli("start", *common, cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    try:
        pid = int((state / "emulator.pid").read_text())
        status = _cli("status", *common, cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        info = json.loads(status.stdout)
        assert info["running"] is True
        assert info["pid"] == pid
        assert info["port"] == port

        again = _cli("start", *common, cwd=tmp_path)
        assert again.returncode == 0
        assert "already running" in again.stdout

        rule = _cli("fault", *common, "add", "--target", "DynamoDB_20120810.PutItem", cwd=tmp_path)
        assert rule.returncode == 0, rule.stderr
        listed = _cli("fault", *common, "list", cwd=tmp_path)
        assert rule.stdout.strip() in listed.stdout
        assert "cleared 1 rule" in _cli("fault", *common, "clear", cwd=tmp_path).stdout
        throttle = ("throttle", *common, "set", "--target", "AWSStepFunctions.StartExecution")
        assert (
            json.loads(_cli(*throttle, "--capacity", "5", "--refill", "2", cwd=tmp_path).stdout)["capacity"]
            == 5
        )
        assert "StartExecution" in _cli("throttle", *common, "list", cwd=tmp_path).stdout
        assert "cleared 1 throttle" in _cli("throttle", *common, "clear", cwd=tmp_path).stdout
        copies = _cli("s3-notifications", *common, "--copies", "2", cwd=tmp_path)
        assert json.loads(copies.stdout) == {"copies": 2}
        cold = json.loads(_cli("lambda", *common, "--cold", "--idle-timeout", "30", cwd=tmp_path).stdout)
        assert (cold["warm"], cold["idle_timeout"]) == (False, 30.0)
        patches = _cli("patches", *common, cwd=tmp_path).stdout
        assert "s3.models.S3Backend.put_object" in patches
        assert _cli("wait", *common, "--timeout", "5", cwd=tmp_path).returncode == 0
    finally:
        stopped = _cli("stop", *common, cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert not (state / "emulator.pid").exists()
    assert not port_accepts(port)
    assert not Path(f"/proc/{pid}").exists()
    assert "emulator listening" in (state / "emulator.log").read_text()

    not_running = _cli("status", *common, cwd=tmp_path)
    assert not_running.returncode == 3
    assert json.loads(not_running.stdout)["running"] is False
    assert _cli("stop", *common, cwd=tmp_path).returncode == 0


def test_cli_fault_add_stores_probability_and_seed_and_lambda_sets_the_cap(tmp_path: Path) -> None:
    with Emulator(port=0) as emu:
        admin = ("--endpoint-url", emu.endpoint_url)
        added = _cli(
            *("fault", *admin, "add", "--target", "DynamoDB_20120810.PutItem"),
            *(
                "--probability",
                "0.25",
                "--seed",
                "7",
                "--error-code",
                "ProvisionedThroughputExceededException",
            ),
            cwd=tmp_path,
        )
        assert added.returncode == 0, added.stderr
        rules = AdminClient(emu.endpoint_url).call("GET", "/_emulator/faults")["faults"]
        [rule] = [r for r in rules if r["id"] == added.stdout.strip()]
        assert (rule["probability"], rule["seed"]) == (0.25, 7)
        assert rule["error_code"] == "ProvisionedThroughputExceededException"
        assert rule["times"] is None

        capped = _cli("lambda", *admin, "--max-per-function", "3", cwd=tmp_path)
        assert capped.returncode == 0, capped.stderr
        assert json.loads(capped.stdout)["max_per_function"] == 3
        assert emu.lambda_stats()["max_per_function"] == 3


def test_cli_start_fails_clearly_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        result = _cli("start", "--state-dir", str(tmp_path / "s"), "--port", str(port), cwd=tmp_path)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert not (tmp_path / "s" / "emulator.pid").exists()


def _bind_without_reuse(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_port_left_in_time_wait_is_free_for_the_next_run(tmp_path: Path) -> None:
    """`make demo` then `make up`: hundreds of TIME-WAIT connections must not make the port "in use"."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.config import Config

    port = free_port()
    with Emulator(port=port) as emu:
        # Idle connections still open when the emulator stops: the server closes them first, so
        # their server side (this port) ends in TIME-WAIT. botocore's own connections mostly close
        # from the client side before the stop (their TIME-WAIT is on the client's port), so
        # they alone left the precondition to timing.
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(5)]
        s3 = boto3.client(
            "s3",
            endpoint_url=emu.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(max_pool_connections=30),
        )
        with ThreadPoolExecutor(30) as pool:
            list(pool.map(lambda _i: s3.list_buckets(), range(200)))
    for connection in idle:  # answer the server's FIN: its side moves on to TIME-WAIT
        connection.close()
    assert not _bind_without_reuse(port), "precondition: connections in TIME-WAIT hold the port"
    assert port_is_free("127.0.0.1", port)

    state = str(tmp_path / "s")
    started = _cli("start", "--state-dir", state, "--port", str(port), cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{port}" in started.stdout
    finally:
        assert _cli("stop", "--state-dir", state, cwd=tmp_path).returncode == 0


def test_the_probe_says_in_use_only_when_something_listens() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert port_is_free("127.0.0.1", port)  # bound, not listening
        listener.listen(1)
        assert not port_is_free("127.0.0.1", port)
