"""MiniStack (PyPI ``ministack``) as a second local AWS, started and stopped like the embedded emulator.

MiniStack is its own implementation of AWS (not moto) and, with ``AUTH=true``, enforces IAM identity
policies, resource policies and KMS key policies for every principal but the account root (access
key ``test``). The devkit runs it like this:

* in its own venv, ``.tools/ministack`` (``requirements-ministack.txt``: its botocore pin conflicts
  with ``requirements-dev.txt``), made on first use by :func:`ensure_installed`;
* on ``127.0.0.1`` only, on the requested port (``0``: a free one), with ``AUTH=true``, TLS on
  (``USE_SSL=1``: a self-signed certificate for 127.0.0.1, so that ``aws:SecureTransport`` is true
  as on AWS and the bucket policy's "deny non-TLS" statement is exercised), the IoT MQTT and SFTP
  listeners off, no Docker, its temporary files (Lambda code, the certificate) and its log under
  ``.emulator/``;
* in a process group of its own: MiniStack runs Lambda functions as worker processes of its own
  interpreter, and :meth:`MiniStack.stop` ends the whole group, so nothing outlives it;
* through ``devkit/ministack_launch.py``, which adds one thing to MiniStack: each request it denies
  is appended to ``<name>.denials.jsonl`` (service, action, principal, resource). The IAM proof
  reads that file; it changes no response.

CLI (``make up``/``make down`` with ``EMULATOR=ministack``):
``python -m devkit.ministack start [--port N] | stop | status``; ``start`` leaves MiniStack running
in the background and writes ``.emulator/ministack.json`` (endpoint, CA bundle, process group).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit import toolchain

ROOT = toolchain.ROOT
REQUIREMENTS = ROOT / "requirements-ministack.txt"
VENV = toolchain.TOOLS / "ministack"
LAUNCHER = Path(__file__).with_name("ministack_launch.py")
STATE_DIR = ROOT / ".emulator"
HOST = "127.0.0.1"
REGION = "eu-central-1"
ACCOUNT_ID = "000000000000"  # MiniStack's default account
# Variables of the caller's environment that must not reach MiniStack (and, through it, the Lambda
# workers it starts with its own environment): a CA bundle would hide MiniStack's own certificate
# from the functions, PYTHONPATH would put this repository's modules before the function's zip.
SCRUBBED = (
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
)


INSTALL_TIMEOUT = 900.0  # seconds for each install step (creating the venv, pip install)


class MiniStackError(RuntimeError):
    """MiniStack could not be installed, started or stopped; the message says why."""


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_installed() -> Path:
    """MiniStack's venv, made or refreshed when requirements-ministack.txt changed; its python."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".installed"
    python = _venv_python()
    if python.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return python
    where = VENV.relative_to(ROOT) if VENV.is_relative_to(ROOT) else VENV
    print(f"installing MiniStack into {where} (requirements-ministack.txt) ...", flush=True)
    for step in _install_steps(python):
        _run_install_step(step)
    stamp.write_text(digest + "\n")
    return python


def _install_steps(python: Path) -> list[list[str]]:
    return [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(REQUIREMENTS),
        ],
    ]


def _run_install_step(step: list[str]) -> None:
    """Run one install step; a failure or a timeout is a MiniStackError naming it, with its output."""
    try:
        result = toolchain.run_bounded(step, INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        raise MiniStackError(
            f"installing MiniStack: {toolchain.timeout_message(expired)}\n"
            "Check the network or the package index (pip's proxy settings), then run it again."
        ) from None
    if result.returncode != 0:
        raise MiniStackError(
            f"`{' '.join(step)}` failed with exit status {result.returncode}:\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_listening(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def stop_group(pgid: int, timeout: float = 20.0) -> None:
    """SIGTERM every process of the group, SIGKILL what is left after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_members(pgid):
                return
            time.sleep(0.1)
    left = group_members(pgid)
    if left:
        raise MiniStackError(f"processes {left} of MiniStack's group {pgid} survived SIGKILL")


@dataclass(frozen=True)
class Denial:
    """One request MiniStack refused (from the launcher's denial log)."""

    service: str
    action: str
    principal: str
    resource: str
    message: str

    def describe(self) -> str:
        return f"{self.principal or 'anonymous'} denied {self.action} on {self.resource}"


def read_denials(path: Path, offset: int = 0) -> tuple[list[Denial], int]:
    """The denials logged after byte `offset`, and the new offset."""
    if not path.is_file():
        return [], offset
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    complete = data[: data.rfind(b"\n") + 1]
    found = []
    for line in complete.decode("utf-8", errors="replace").splitlines():
        record: dict[str, Any] = json.loads(line)
        found.append(
            Denial(
                service=str(record.get("service", "")),
                action=str(record.get("action", "")),
                principal=str(record.get("principal", "")),
                resource=str(record.get("resource", "")),
                message=str(record.get("message", "")),
            )
        )
    return found, offset + len(complete)


@dataclass
class MiniStack:
    """One MiniStack server: ``start()`` it, use ``endpoint_url`` and ``ca_bundle``, ``stop()`` it."""

    port: int = 0
    state_dir: Path = STATE_DIR
    name: str = "ministack"
    region: str = REGION
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    pgid: int = 0

    @property
    def endpoint_url(self) -> str:
        return f"https://{HOST}:{self.port}"

    @property
    def tmp_dir(self) -> Path:
        return self.state_dir / f"{self.name}-tmp"

    @property
    def ca_bundle(self) -> Path:
        """MiniStack's self-signed certificate (for 127.0.0.1 and localhost): trust only this."""
        return self.tmp_dir / "ministack-tls" / "server.crt"

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    @property
    def denials_path(self) -> Path:
        return self.state_dir / f"{self.name}.denials.jsonl"

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
        env.update(
            GATEWAY_PORT=str(self.port),
            BIND_HOST=HOST,
            AUTH="true",
            USE_SSL="1",
            IOT_MTLS_ENABLED="0",
            SFTP_ENABLED="0",
            TMPDIR=str(self.tmp_dir),
            MINISTACK_REGION=self.region,
            DOCKER_HOST=f"unix://{self.tmp_dir / 'no-docker.sock'}",  # never a real Docker daemon
            MINISTACK_DENIALS_LOG=str(self.denials_path),
            PYTHONUNBUFFERED="1",
        )
        return env

    def start(self, timeout: float = 60.0) -> MiniStack:
        python = ensure_installed()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        elif port_is_listening(self.port):
            raise MiniStackError(f"port {self.port} on {HOST} is already in use")
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # Lambda code and TLS material of a previous run
        self.tmp_dir.mkdir(parents=True)
        self.denials_path.write_text("")
        with self.log_path.open("wb") as log:
            # -I: neither this repository (PYTHONPATH, the script's folder) nor user site-packages.
            self.process = subprocess.Popen(
                [str(python), "-I", str(LAUNCHER)],
                cwd=self.tmp_dir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pgid = self.process.pid
        try:
            self._wait_until_healthy(timeout)
        except MiniStackError:
            self.stop()
            raise
        return self

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise MiniStackError(
                    f"MiniStack exited with status {self.process.returncode} while starting; "
                    f"see {self.log_path}:\n{self.log_tail()}"
                )
            if self.ca_bundle.is_file():
                try:
                    health = self.health()
                except (OSError, ssl.SSLError, ValueError) as error:
                    last = str(error)
                else:
                    if health.get("services", {}).get("lambda") in ("available", "running"):
                        return
                    last = f"health: {health}"
            time.sleep(0.2)
        raise MiniStackError(
            f"MiniStack did not become healthy in {timeout:.0f} s ({last}); see {self.log_path}"
        )

    def health(self) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        with opener.open(f"{self.endpoint_url}/_ministack/health", timeout=5) as response:
            value = json.loads(response.read())
        return value if isinstance(value, dict) else {}

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def denials(self, offset: int = 0) -> tuple[list[Denial], int]:
        return read_denials(self.denials_path, offset)

    def denial_offset(self) -> int:
        return self.denials_path.stat().st_size if self.denials_path.is_file() else 0

    def stop(self, timeout: float = 20.0) -> None:
        """Stop MiniStack and every process it started (Lambda workers share its group)."""
        if self.pgid:
            stop_group(self.pgid, timeout)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.process = None
        self.pgid = 0
        # The unzipped Lambda code of every worker; the log and the denial log stay.
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> MiniStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- background use (make up / make down) --------------------------------------------------
    @property
    def info_path(self) -> Path:
        return self.state_dir / f"{self.name}.json"

    def write_info(self) -> None:
        info = {
            "pgid": self.pgid,
            "port": self.port,
            "endpoint": self.endpoint_url,
            "ca_bundle": str(self.ca_bundle),
            "log": str(self.log_path),
        }
        self.info_path.write_text(json.dumps(info, indent=2) + "\n")

    @classmethod
    def from_info(cls, state_dir: Path = STATE_DIR, name: str = "ministack") -> MiniStack | None:
        """The MiniStack started in the background by `start`, if its info file exists."""
        path = state_dir / f"{name}.json"
        if not path.is_file():
            return None
        info = json.loads(path.read_text())
        return cls(port=int(info["port"]), state_dir=state_dir, name=name, pgid=int(info["pgid"]))

    def running(self) -> bool:
        return bool(self.pgid) and bool(group_members(self.pgid))


@contextlib.contextmanager
def running(port: int = 0, state_dir: Path = STATE_DIR, name: str = "ministack") -> Iterator[MiniStack]:
    server = MiniStack(port=port, state_dir=state_dir, name=name).start()
    try:
        yield server
    finally:
        server.stop()


def cmd_start(port: int, state_dir: Path = STATE_DIR) -> int:
    if (existing := MiniStack.from_info(state_dir)) is not None and existing.running():
        print(
            f"MiniStack is already running at {existing.endpoint_url} (`make down` stops it)", file=sys.stderr
        )
        return 1
    server = MiniStack(port=port, state_dir=state_dir)
    try:
        server.start()
    except MiniStackError as error:
        print(f"ministack: {error}", file=sys.stderr)
        return 1
    server.write_info()
    print(f"MiniStack {server.endpoint_url} (AUTH=true, TLS; CA {server.ca_bundle}); log {server.log_path}")
    return 0


def cmd_stop(state_dir: Path = STATE_DIR) -> int:
    server = MiniStack.from_info(state_dir)
    if server is None:
        print("MiniStack is not running (no .emulator/ministack.json)")
        return 0
    try:
        server.stop()
    except MiniStackError as error:
        print(f"ministack: {error}", file=sys.stderr)
        return 1
    server.info_path.unlink(missing_ok=True)
    print("MiniStack stopped (and its Lambda workers)")
    return 0


def cmd_status(state_dir: Path = STATE_DIR) -> int:
    server = MiniStack.from_info(state_dir)
    if server is None or not server.running():
        print(json.dumps({"running": False}))
        return 3
    try:
        healthy = bool(server.health())
    except (OSError, ssl.SSLError, ValueError):
        healthy = False
    print(json.dumps({"running": True, "healthy": healthy, "endpoint": server.endpoint_url}))
    return 0 if healthy else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.ministack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=STATE_DIR, help="default: .emulator/")
    start = sub.add_parser("start", parents=[common], help="start MiniStack in the background")
    start.add_argument("--port", type=int, default=4566)
    sub.add_parser(
        "stop", parents=[common], help="stop the MiniStack started by `start`, and its Lambda workers"
    )
    sub.add_parser(
        "status", parents=[common], help="JSON; exit 0 running and healthy, 3 not running, 1 unhealthy"
    )
    sub.add_parser("install", help="make .tools/ministack from requirements-ministack.txt")
    args = parser.parse_args(argv)
    if args.command == "start":
        return cmd_start(args.port, args.state_dir)
    if args.command == "stop":
        return cmd_stop(args.state_dir)
    if args.command == "status":
        return cmd_status(args.state_dir)
    try:
        print(ensure_installed())
    except MiniStackError as error:
        print(f"ministack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
