"""Command line: ``python -m emulator {serve,start,stop,status,wait,fault}``.

* ``serve``  - run in the foreground until SIGTERM/SIGINT (then stop cleanly);
* ``start``  - run ``serve`` as a detached background process, write ``<state-dir>/emulator.pid``,
  wait until healthy and exit 0 (exit 1 with a clear message if the port is taken);
* ``stop``   - terminate the background emulator via its pidfile (exit 0 if it was not running);
* ``status`` - print the state as JSON (exit 0 if running and healthy, 3 if not running, 1 if unhealthy);
* ``wait``   - wait until pending asynchronous Lambda invocations are done;
* ``trigger --rule NAME`` - deliver a Scheduled Event to an EventBridge rule's targets now;
* ``fault add|list|clear`` - manage fault injection rules (see :mod:`emulator.faults`).

The state directory (``--state-dir``, default ``.emulator`` under the current directory) holds the
pidfile, ``emulator.json`` (host/port/endpoint of the running emulator), the log file
(``emulator.log``), the daemon's console output (``emulator.out``) and the Lambda code cache.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from emulator import faults
from emulator.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    Emulator,
    EmulatorError,
    port_is_free,
    wait_until_healthy,
)

PID_FILE = "emulator.pid"
INFO_FILE = "emulator.json"
LOG_FILE = "emulator.log"
OUT_FILE = "emulator.out"
EXIT_NOT_RUNNING = 3


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _warn(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).resolve()


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def _read_info(state_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state_dir / INFO_FILE).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _is_our_process(pid: int) -> bool:
    """True if ``pid`` is alive and is an emulator ``serve`` process (guards against pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pidfile
    return b"emulator" in cmdline and b"serve" in cmdline


def _remove_state(state_dir: Path) -> None:
    for name in (PID_FILE, INFO_FILE):
        (state_dir / name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------- commands


def cmd_serve(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    log_file = Path(args.log_file).resolve() if args.log_file else state_dir / LOG_FILE
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emulator = Emulator(host=args.host, port=args.port, log_path=log_file, state_dir=state_dir)
    try:
        emulator.start()
    except EmulatorError as exc:
        _warn(f"emulator: {exc}")
        return 1
    try:
        info = {
            "pid": os.getpid(),
            "host": emulator.host,
            "port": emulator.port,
            "endpoint_url": emulator.endpoint_url,
            "log_file": str(log_file),
        }
        if args.write_state:
            state_dir.mkdir(parents=True, exist_ok=True)
            (state_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        _say(f"emulator listening on {emulator.endpoint_url} (pid {os.getpid()}, log {log_file})")
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        if args.write_state and _read_pid(state_dir) in (None, os.getpid()):
            _remove_state(state_dir)
    _say("emulator stopped")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid = _read_pid(state_dir)
    if pid is not None and _is_our_process(pid):
        info = _read_info(state_dir)
        _say(f"emulator already running (pid {pid}) on {info.get('endpoint_url', '?')}")
        return 0
    _remove_state(state_dir)
    if not port_is_free(args.host, args.port):
        _warn(
            f"emulator: port {args.port} on {args.host} is already in use;"
            " stop whatever holds it or use --port"
        )
        return 1
    log_file = Path(args.log_file).resolve() if args.log_file else state_dir / LOG_FILE
    command = [
        sys.executable,
        "-m",
        "emulator",
        "serve",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--state-dir",
        str(state_dir),
        "--log-file",
        str(log_file),
        "--write-state",
    ]
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    with open(state_dir / OUT_FILE, "ab") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    (state_dir / PID_FILE).write_text(f"{proc.pid}\n", encoding="utf-8")
    deadline = time.monotonic() + args.timeout
    while True:
        if proc.poll() is not None:
            _remove_state(state_dir)
            tail = (state_dir / OUT_FILE).read_text(encoding="utf-8", errors="replace")[-2000:]
            _warn(f"emulator: the server exited with status {proc.returncode}:\n{tail}")
            return 1
        info = _read_info(state_dir)
        endpoint = str(info.get("endpoint_url", "")) if info.get("pid") == proc.pid else ""
        try:
            if not endpoint:
                raise EmulatorError("not listening yet")
            health = wait_until_healthy(endpoint, timeout=0.5)
        except EmulatorError:
            if time.monotonic() > deadline:
                _warn(
                    f"emulator: not healthy after {args.timeout:.0f}s;"
                    f" stopping it (see {state_dir / OUT_FILE})"
                )
                _terminate(proc.pid, 10)
                _remove_state(state_dir)
                return 1
            time.sleep(0.1)
            continue
        if health.get("pid") != proc.pid:
            _warn(f"emulator: {endpoint} is answered by another emulator (pid {health.get('pid')})")
            _terminate(proc.pid, 10)
            _remove_state(state_dir)
            return 1
        break
    _say(f"emulator started (pid {proc.pid}) on {endpoint}; log {log_file}")
    return 0


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait, then SIGKILL; True if the process is gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            finished = 0
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        if finished == pid:
            return True
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    return False


def cmd_stop(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    pid = _read_pid(state_dir)
    if pid is None:
        _say("emulator not running (no pidfile)")
        return 0
    if not _is_our_process(pid):
        _say(f"emulator not running (stale pidfile, pid {pid})")
        _remove_state(state_dir)
        return 0
    if _terminate(pid, args.timeout):
        _say(f"emulator stopped (pid {pid})")
    else:
        _warn(f"emulator (pid {pid}) did not stop within {args.timeout:.0f}s; killed")
    _remove_state(state_dir)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    pid = _read_pid(state_dir)
    info = _read_info(state_dir)
    if pid is None or not _is_our_process(pid):
        _say(json.dumps({"running": False, "state_dir": str(state_dir)}))
        return EXIT_NOT_RUNNING
    endpoint = info.get("endpoint_url") or f"http://{args.host}:{args.port}"
    try:
        health = wait_until_healthy(endpoint, timeout=2)
    except EmulatorError as exc:
        _say(json.dumps({"running": True, "healthy": False, "pid": pid, "error": str(exc)}))
        return 1
    _say(json.dumps({"running": True, "healthy": True, **health}))
    return 0


def _endpoint(args: argparse.Namespace) -> str:
    if args.endpoint_url:
        return str(args.endpoint_url)
    info = _read_info(_state_dir(args))
    return str(info.get("endpoint_url") or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}")


def cmd_wait(args: argparse.Namespace) -> int:
    url = f"{_endpoint(args).rstrip('/')}/_emulator/lambda/wait?timeout={args.timeout}"
    request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310 - loopback emulator URL
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=args.timeout + 10) as response:
            result = json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        _warn(f"emulator: {exc}")
        return 1
    _say(json.dumps({k: v for k, v in result.items() if k != "async_completed"}))
    return 0 if result.get("idle") else 1


def cmd_trigger(args: argparse.Namespace) -> int:
    body = json.dumps({"rule": args.rule, "region": args.region, "event_bus": args.event_bus}).encode()
    url = f"{_endpoint(args).rstrip('/')}/_emulator/events/trigger"
    request = urllib.request.Request(url, method="POST", data=body)  # noqa: S310 - loopback emulator URL
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            _say(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        _warn(f"emulator: {exc.read().decode('utf-8', errors='replace')}")
        return 1
    except (urllib.error.URLError, OSError) as exc:
        _warn(f"emulator: {exc}")
        return 1
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    endpoint = _endpoint(args)
    try:
        if args.fault_command == "add":
            rule_id = faults.add_fault(
                endpoint,
                target=args.target,
                match=args.match,
                status=args.status,
                error_code=args.error_code,
                message=args.message,
                times=args.times,
            )
            _say(rule_id)
        elif args.fault_command == "list":
            _say(json.dumps(faults.list_faults(endpoint), indent=2))
        else:
            _say(f"cleared {faults.clear_faults(endpoint)} rule(s)")
    except (faults.FaultRuleError, urllib.error.URLError, OSError) as exc:
        _warn(f"emulator: {exc}")
        return 1
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Embedded AWS emulator (moto).")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=".emulator", help="state directory (default: .emulator)")
    common.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST})")
    common.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0 = any)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run in the foreground")
    serve.add_argument("--log-file", help="log file (default: <state-dir>/emulator.log)")
    serve.add_argument("--write-state", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    start = sub.add_parser("start", parents=[common], help="start in the background")
    start.add_argument("--log-file", help="log file (default: <state-dir>/emulator.log)")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait until healthy")
    start.set_defaults(func=cmd_start)

    stop = sub.add_parser("stop", parents=[common], help="stop the background emulator")
    stop.add_argument("--timeout", type=float, default=20.0, help="seconds to wait before SIGKILL")
    stop.set_defaults(func=cmd_stop)

    status = sub.add_parser("status", parents=[common], help="show whether it runs")
    status.set_defaults(func=cmd_status)

    wait = sub.add_parser("wait", parents=[common], help="wait for pending async Lambda invocations")
    wait.add_argument("--endpoint-url", help="emulator URL (default: from the state dir)")
    wait.add_argument("--timeout", type=float, default=60.0)
    wait.set_defaults(func=cmd_wait)

    trigger = sub.add_parser("trigger", parents=[common], help="fire an EventBridge (scheduled) rule now")
    trigger.add_argument("--endpoint-url", help="emulator URL (default: from the state dir)")
    trigger.add_argument("--rule", required=True, help="rule name")
    trigger.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="the rule's region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)",
    )
    trigger.add_argument("--event-bus", default="default")
    trigger.set_defaults(func=cmd_trigger)

    fault = sub.add_parser("fault", parents=[common], help="fault injection rules")
    fault.add_argument("--endpoint-url", help="emulator URL (default: from the state dir)")
    fault_sub = fault.add_subparsers(dest="fault_command", required=True)
    add = fault_sub.add_parser("add", help="add a rule; prints its id")
    add.add_argument(
        "--target", required=True, help="X-Amz-Target, e.g. DynamoDB_20120810.PutItem ('*' = any)"
    )
    add.add_argument("--match", help="substring the raw request body must contain")
    add.add_argument("--status", type=int, default=faults.DEFAULT_STATUS)
    add.add_argument("--error-code", default=faults.DEFAULT_ERROR_CODE)
    add.add_argument("--message", default=faults.DEFAULT_MESSAGE)
    add.add_argument("--times", type=int, help="fire at most N times (default: always)")
    fault_sub.add_parser("list", help="list the rules")
    fault_sub.add_parser("clear", help="remove every rule")
    fault.set_defaults(func=cmd_fault)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
