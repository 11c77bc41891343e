"""Command line: ``python -m emulator <command>``.

* ``serve``  - run in the foreground until SIGTERM/SIGINT (then stop cleanly);
* ``start``  - run ``serve`` as a detached background process, write ``<state-dir>/emulator.pid``,
  wait until healthy and exit 0 (exit 1 with a clear message if the port is taken);
* ``stop``   - terminate the background emulator via its pidfile (exit 0 if it was not running);
* ``status`` - print the state as JSON (exit 0 if running and healthy, 3 if not running, 1 if unhealthy);
* ``wait``   - wait until pending asynchronous Lambda invocations are done and every queue of an
  enabled SQS event source mapping is drained;
* ``event-sources`` - SQS event source mappings: settings and counters;
* ``trigger --rule NAME`` - deliver a Scheduled Event to an EventBridge rule's targets now;
* ``fault add|list|clear`` - fault rules (see :mod:`emulator.faults`), also probabilistic;
* ``throttle set|list|clear`` - token-bucket throttling of a target (e.g. StartExecution);
* ``s3-notifications --copies N`` - deliver every S3 -> Lambda notification N times;
* ``lambda [--warm|--cold] [--idle-timeout S] [--max-per-function N]`` - execution environments:
  settings and counters;
* ``alarms [--evaluate]`` - the SQS alarms' last evaluation, or evaluate them now;
* ``patches`` - the registry of every change the emulator makes to moto.

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
from pathlib import Path
from typing import Any

from emulator import faults
from emulator.admin_client import AdminClient, AdminError, EmulatorUnreachableError
from emulator.cloudwatch_alarms import DEFAULT_INTERVAL as DEFAULT_ALARM_INTERVAL
from emulator.http_server import port_is_free
from emulator.server import DEFAULT_HOST, DEFAULT_PORT, Emulator, EmulatorError

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


def _log_file(args: argparse.Namespace) -> Path:
    return Path(args.log_file).resolve() if args.log_file else _state_dir(args) / LOG_FILE


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


# ---------------------------------------------------------------------------- serve / start / stop


def _write_info(state_dir: Path, emulator: Emulator, log_file: Path) -> None:
    info = {
        "pid": os.getpid(),
        "host": emulator.host,
        "port": emulator.port,
        "endpoint_url": emulator.endpoint_url,
        "log_file": str(log_file),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def cmd_serve(args: argparse.Namespace) -> int:
    state_dir, log_file = _state_dir(args), _log_file(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    emulator = Emulator(
        host=args.host,
        port=args.port,
        log_path=log_file,
        state_dir=state_dir,
        lambda_warm=not args.cold,
        lambda_idle_timeout=args.idle_timeout,
        alarm_interval=args.alarm_interval,
    )
    try:
        emulator.start()
    except EmulatorError as exc:
        _warn(f"emulator: {exc}")
        return 1
    try:
        if args.write_state:
            _write_info(state_dir, emulator, log_file)
        _say(f"emulator listening on {emulator.endpoint_url} (pid {os.getpid()}, log {log_file})")
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
        if args.write_state and _read_pid(state_dir) in (None, os.getpid()):
            _remove_state(state_dir)
    _say("emulator stopped")
    return 0


def _spawn_server(args: argparse.Namespace, state_dir: Path) -> subprocess.Popen[bytes]:
    command = [
        *(sys.executable, "-m", "emulator", "serve", "--host", args.host, "--port", str(args.port)),
        *("--state-dir", str(state_dir), "--log-file", str(_log_file(args)), "--write-state"),
        *("--idle-timeout", str(args.idle_timeout)),
        *("--alarm-interval", str(args.alarm_interval)),
        *(("--cold",) if args.cold else ()),
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
    return proc


def _await_started(proc: subprocess.Popen[bytes], state_dir: Path, timeout: float) -> str:
    """The endpoint once the spawned server is healthy; raises EmulatorError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = (state_dir / OUT_FILE).read_text(encoding="utf-8", errors="replace")[-2000:]
            raise EmulatorError(f"the server exited with status {proc.returncode}:\n{tail}")
        info = _read_info(state_dir)
        endpoint = str(info.get("endpoint_url", "")) if info.get("pid") == proc.pid else ""
        if endpoint:
            try:
                health = AdminClient(endpoint).health(timeout=0.5)
            except EmulatorUnreachableError:
                health = {}
            if health and health.get("pid") != proc.pid:
                raise EmulatorError(f"{endpoint} is answered by another emulator (pid {health.get('pid')})")
            if health:
                return endpoint
        if time.monotonic() > deadline:
            raise EmulatorError(f"not healthy after {timeout:.0f}s (see {state_dir / OUT_FILE})")
        time.sleep(0.1)


def cmd_start(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state_dir.mkdir(parents=True, exist_ok=True)
    pid = _read_pid(state_dir)
    if pid is not None and _is_our_process(pid):
        _say(f"emulator already running (pid {pid}) on {_read_info(state_dir).get('endpoint_url', '?')}")
        return 0
    _remove_state(state_dir)
    if not port_is_free(args.host, args.port):
        _warn(
            f"emulator: port {args.port} on {args.host} is already in use; stop whatever holds it or use --port"
        )
        return 1
    proc = _spawn_server(args, state_dir)
    try:
        endpoint = _await_started(proc, state_dir, args.timeout)
    except EmulatorError as exc:
        _warn(f"emulator: {exc}")
        if proc.poll() is None:
            _terminate(proc.pid, 10)
        _remove_state(state_dir)
        return 1
    _say(f"emulator started (pid {proc.pid}) on {endpoint}; log {_log_file(args)}")
    return 0


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
    if pid is None or not _is_our_process(pid):
        _say(json.dumps({"running": False, "state_dir": str(state_dir)}))
        return EXIT_NOT_RUNNING
    endpoint = _read_info(state_dir).get("endpoint_url") or f"http://{args.host}:{args.port}"
    try:
        health = AdminClient(str(endpoint)).wait_until_healthy(timeout=2)
    except EmulatorUnreachableError as exc:
        _say(json.dumps({"running": True, "healthy": False, "pid": pid, "error": str(exc)}))
        return 1
    _say(json.dumps({"running": True, "healthy": True, **health}))
    return 0


# ---------------------------------------------------------------------------- admin commands


def _client(args: argparse.Namespace) -> AdminClient:
    endpoint = args.endpoint_url or _read_info(_state_dir(args)).get("endpoint_url")
    return AdminClient(str(endpoint or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"))


def cmd_wait(args: argparse.Namespace) -> int:
    result = _client(args).wait_until_idle(args.timeout)
    _say(json.dumps(result))
    return 0 if result.get("idle") else 1


def cmd_event_sources(args: argparse.Namespace) -> int:
    _say(json.dumps(_client(args).event_sources(), indent=2))
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    body = {"rule": args.rule, "region": args.region, "event_bus": args.event_bus}
    _say(json.dumps(_client(args).call("POST", "/_emulator/events/trigger", body)))
    return 0


def _collection_command(args: argparse.Namespace, path: str, name: str, body: dict[str, Any]) -> int:
    """``add``/``set`` (POST ``body``), ``list`` or ``clear`` on a collection of the admin API."""
    client = _client(args)
    command = args.fault_command if name == "faults" else args.throttle_command
    if command in ("add", "set"):
        added = client.call("POST", path, body)
        _say(str(added["id"]) if name == "faults" else json.dumps(added))
    elif command == "list":
        _say(json.dumps(client.call("GET", path)[name], indent=2))
    else:
        cleared = client.call("DELETE", path)["cleared"]
        _say(f"cleared {cleared} {'rule' if name == 'faults' else 'throttle'}(s)")
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    rule = faults.rule_fields(
        args.target if args.fault_command == "add" else "",
        match=getattr(args, "match", None),
        status=getattr(args, "status", faults.DEFAULT_STATUS),
        error_code=getattr(args, "error_code", faults.DEFAULT_ERROR_CODE),
        message=getattr(args, "message", faults.DEFAULT_MESSAGE),
        times=getattr(args, "times", None),
        probability=getattr(args, "probability", None),
        seed=getattr(args, "seed", None),
    )
    return _collection_command(args, "/_emulator/faults", "faults", rule)


def cmd_throttle(args: argparse.Namespace) -> int:
    body = {}
    if args.throttle_command == "set":
        body = {"target": args.target, "capacity": args.capacity, "refill_per_second": args.refill}
    return _collection_command(args, "/_emulator/throttles", "throttles", body)


def cmd_s3_notifications(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.copies is None:
        _say(json.dumps(client.call("GET", "/_emulator/s3/notifications")))
    else:
        _say(json.dumps(client.call("POST", "/_emulator/s3/notifications", {"copies": args.copies})))
    return 0


def cmd_lambda(args: argparse.Namespace) -> int:
    settings: dict[str, Any] = {}
    if args.warm is not None:
        settings["warm"] = args.warm
    if args.idle_timeout is not None:
        settings["idle_timeout"] = args.idle_timeout
    if args.max_per_function is not None:
        settings["max_per_function"] = args.max_per_function
    client = _client(args)
    result = (
        client.call("POST", "/_emulator/lambda", settings)
        if settings
        else client.call("GET", "/_emulator/lambda")
    )
    _say(json.dumps({k: v for k, v in result.items() if k != "async_completed"}, indent=2))
    return 0


def cmd_alarms(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.evaluate:
        _say(json.dumps({"transitions": client.evaluate_alarms()}, indent=2))
    else:
        _say(json.dumps(client.alarms(), indent=2))
    return 0


def cmd_patches(args: argparse.Namespace) -> int:
    if args.offline:
        from emulator import registry

        patches = registry.describe()
    else:
        patches = _client(args).call("GET", "/_emulator/patches")["patches"]
    for patch in patches:
        _say(f"{patch['target']}  [{patch['kind']}, {patch['module']}]\n    {patch['why']}")
    return 0


# ---------------------------------------------------------------------------- parser


def _non_negative_seconds(text: str) -> float:
    """argparse type: a clear usage error for a negative interval instead of a traceback at start."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be >= 0 seconds")
    return value


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=".emulator", help="state directory (default: .emulator)")
    common.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default: {DEFAULT_HOST})")
    common.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0 = any)"
    )
    common.add_argument(
        "--endpoint-url", help="emulator URL for admin commands (default: from the state dir)"
    )
    return common


def _add_server_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    runtime = argparse.ArgumentParser(add_help=False)
    runtime.add_argument("--log-file", help="log file (default: <state-dir>/emulator.log)")
    runtime.add_argument(
        "--cold", action="store_true", help="a process per Lambda invocation (no warm starts)"
    )
    runtime.add_argument(
        "--idle-timeout", type=float, default=120.0, help="seconds an idle environment lives"
    )
    runtime.add_argument(
        "--alarm-interval",
        type=_non_negative_seconds,
        default=DEFAULT_ALARM_INTERVAL,
        help=f"seconds between evaluations of the SQS alarms (default {DEFAULT_ALARM_INTERVAL:g}; 0 = on demand)",
    )
    serve = sub.add_parser("serve", parents=[common, runtime], help="run in the foreground")
    serve.add_argument("--write-state", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)
    start = sub.add_parser("start", parents=[common, runtime], help="start in the background")
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait until healthy")
    start.set_defaults(func=cmd_start)
    stop = sub.add_parser("stop", parents=[common], help="stop the background emulator")
    stop.add_argument("--timeout", type=float, default=20.0, help="seconds to wait before SIGKILL")
    stop.set_defaults(func=cmd_stop)
    sub.add_parser("status", parents=[common], help="show whether it runs").set_defaults(func=cmd_status)


def _add_admin_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    wait = sub.add_parser(
        "wait", parents=[common], help="wait for pending async Lambda invocations and mapped SQS queues"
    )
    wait.add_argument("--timeout", type=float, default=60.0)
    wait.set_defaults(func=cmd_wait)
    sources = sub.add_parser("event-sources", parents=[common], help="SQS event source mappings: counters")
    sources.set_defaults(func=cmd_event_sources)
    trigger = sub.add_parser("trigger", parents=[common], help="fire an EventBridge (scheduled) rule now")
    trigger.add_argument("--rule", required=True, help="rule name")
    trigger.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="the rule's region (default: $AWS_REGION, $AWS_DEFAULT_REGION, else us-east-1)",
    )
    trigger.add_argument("--event-bus", default="default")
    trigger.set_defaults(func=cmd_trigger)
    notifications = sub.add_parser(
        "s3-notifications", parents=[common], help="deliver S3 notifications N times"
    )
    notifications.add_argument("--copies", type=int, help="1 = once (default); 2 = every event twice")
    notifications.set_defaults(func=cmd_s3_notifications)
    lam = sub.add_parser("lambda", parents=[common], help="execution environments: settings and counters")
    lam.add_argument("--warm", dest="warm", action="store_const", const=True, help="reuse environments")
    lam.add_argument(
        "--cold", dest="warm", action="store_const", const=False, help="a process per invocation"
    )
    lam.add_argument("--idle-timeout", type=float, help="seconds an idle environment lives")
    lam.add_argument(
        "--max-per-function", type=int, help="environments of one function at once (default 8; more wait)"
    )
    lam.set_defaults(func=cmd_lambda)
    alarms = sub.add_parser("alarms", parents=[common], help="SQS alarms: last evaluation, or evaluate now")
    alarms.add_argument(
        "--evaluate", action="store_true", help="evaluate now; prints the state changes (notifications sent)"
    )
    alarms.set_defaults(func=cmd_alarms)
    patches = sub.add_parser("patches", parents=[common], help="list every change made to moto")
    patches.add_argument("--offline", action="store_true", help="from this code, not the running emulator")
    patches.set_defaults(func=cmd_patches)


def _add_fault_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    fault = sub.add_parser("fault", parents=[common], help="fault injection rules")
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
    add.add_argument("--probability", type=float, help="fail this fraction of matching requests (0 < p <= 1)")
    add.add_argument("--seed", type=int, help="seed of the probability draw (repeatable runs)")
    fault_sub.add_parser("list", help="list the rules")
    fault_sub.add_parser("clear", help="remove every rule")
    fault.set_defaults(func=cmd_fault)
    throttle = sub.add_parser("throttle", parents=[common], help="token-bucket throttling of a target")
    throttle_sub = throttle.add_subparsers(dest="throttle_command", required=True)
    setter = throttle_sub.add_parser("set", help="throttle a target, e.g. AWSStepFunctions.StartExecution")
    setter.add_argument("--target", required=True)
    setter.add_argument("--capacity", type=float, required=True, help="bucket size (requests at once)")
    setter.add_argument("--refill", type=float, required=True, help="tokens added per second")
    throttle_sub.add_parser("list", help="list the throttles")
    throttle_sub.add_parser("clear", help="remove every throttle")
    throttle.set_defaults(func=cmd_throttle)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Embedded AWS emulator (moto).")
    common = _common_parser()
    sub = parser.add_subparsers(dest="command", required=True)
    _add_server_commands(sub, common)
    _add_admin_commands(sub, common)
    _add_fault_commands(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AdminError as exc:
        _warn(f"emulator: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
