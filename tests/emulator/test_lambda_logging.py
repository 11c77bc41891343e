"""LoggingConfig in the local Lambda runtime: Lambda's advanced logging controls, as AWS applies them.

Each test deploys a small function with one LoggingConfig, invokes it and reads what reached its log
group through the CloudWatch Logs API: the JSON records of the runtime's root-logger handler, the
application-log filtering by level (a Powertools-style JSON line is dropped below the level and
otherwise delivered byte for byte), the JSON platform events and the unchanged text format.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from emulator.lambda_bootstrap import _root_level
from emulator.lambda_runtime import line_level

pytestmark = pytest.mark.emulator

# A Powertools-style line at DEBUG, printed as is: compact separators and a non-ASCII character, so
# any re-encoding (spaces, \u escapes) or wrapping by the emulator would show.
POWERTOOLS_DEBUG = (
    '{"level":"DEBUG","location":"handler:12","message":"pt-style debug \u00fc",'
    '"timestamp":"2026-12-06 11:22:33,123+0000","service":"alc-probe"}'
)
POWERTOOLS_ERROR = '{"log_level":"ERROR","message":"pt-style error"}'
HANDLER = f"""
import json
import logging
import os

from aws_lambda_powertools import Logger

POWERTOOLS_DEBUG = {POWERTOOLS_DEBUG!r}
POWERTOOLS_ERROR = {POWERTOOLS_ERROR!r}
logger = Logger(service="alc-probe")


def handler(event, context):
    root = logging.getLogger()
    root.debug("root-debug %s", 1)
    root.info("root-info %s", 2, extra={{"orderId": 7}})
    root.warning("root-warning")
    try:
        1 / 0
    except ZeroDivisionError:
        root.exception("root-caught")
    print("plain-print line")
    print(POWERTOOLS_DEBUG)
    print(POWERTOOLS_ERROR)
    logger.debug("powertools-debug")
    logger.info("powertools-info")
    if event.get("raise"):
        raise ValueError("boom")
    return {{
        "env": {{k: os.environ.get(k) for k in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL")}},
        "root_level": logging.getLevelName(root.level),
        "powertools_level": logging.getLevelName(logger.log_level),
        "request_id": context.aws_request_id,
        "stream": context.log_stream_name,
        "group": context.log_group_name,
        "pid": os.getpid(),
    }}
"""
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def deploy(make_function: Callable[..., str]) -> Callable[..., str]:
    def make(name: str, logging_config: dict[str, str] | None = None) -> str:
        extra = {"LoggingConfig": logging_config} if logging_config else {}
        return make_function(name, {"index.py": HANDLER}, Timeout=15, MemorySize=256, **extra)

    return make


def invoke(aws_client: Callable[[str], Any], name: str, **event: Any) -> tuple[dict[str, Any], str, str]:
    """``(response body, function error or "", decoded X-Amz-Log-Result tail)``."""
    response = aws_client("lambda").invoke(
        FunctionName=name, Payload=json.dumps(event).encode(), LogType="Tail"
    )
    body = json.loads(response["Payload"].read())
    tail = base64.b64decode(response["LogResult"]).decode(errors="replace")  # may cut a character
    return body, response.get("FunctionError", ""), tail


def messages(aws_client: Callable[[str], Any], group: str, stream: str) -> list[str]:
    events = aws_client("logs").get_log_events(logGroupName=group, logStreamName=stream)["events"]
    return [event["message"] for event in events]


def as_json(lines: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def runtime_records(lines: list[str]) -> dict[str, dict[str, Any]]:
    """The runtime handler's JSON records, by message."""
    return {r["message"]: r for r in as_json(lines) if "logger" in r and isinstance(r.get("message"), str)}


def platform(lines: list[str], kind: str) -> list[dict[str, Any]]:
    return [r for r in as_json(lines) if r.get("type") == kind]


def test_json_debug_delivers_every_level_with_platform_events(
    aws_client: Callable[[str], Any], deploy: Callable[..., str]
) -> None:
    deploy("alc-json-debug", {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG", "LogGroup": "/custom/alc"})
    body, error, tail = invoke(aws_client, "alc-json-debug")
    assert error == ""
    assert body["env"] == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    assert body["root_level"] == "DEBUG"
    assert body["powertools_level"] == "DEBUG"  # Powertools gives AWS_LAMBDA_LOG_LEVEL priority
    assert body["group"] == "/custom/alc"
    request_id = body["request_id"]
    lines = messages(aws_client, "/custom/alc", body["stream"])

    records = runtime_records(lines)
    debug = records["root-debug 1"]
    assert debug == {
        "timestamp": debug["timestamp"],
        "level": "DEBUG",
        "message": "root-debug 1",
        "logger": "root",
        "requestId": request_id,
    }
    assert ISO_UTC.match(debug["timestamp"])
    assert records["root-info 2"]["level"] == "INFO"
    assert records["root-info 2"]["orderId"] == 7  # extra= fields become fields, as on Lambda
    assert records["root-warning"]["level"] == "WARNING"
    caught = records["root-caught"]
    assert caught["level"] == "ERROR"
    assert caught["errorType"] == "ZeroDivisionError"
    assert caught["errorMessage"] == "division by zero"
    assert isinstance(caught["stackTrace"], list)
    assert "index.py" in caught["stackTrace"][-1]
    assert POWERTOOLS_DEBUG in lines  # kept at DEBUG, byte for byte
    assert POWERTOOLS_ERROR in lines
    assert "plain-print line" in lines
    powertools = [r["message"] for r in as_json(lines) if r.get("service") == "alc-probe"]
    assert "powertools-debug" in powertools
    assert "powertools-info" in powertools

    (start,) = platform(lines, "platform.start")
    assert start["record"] == {"requestId": request_id, "version": "$LATEST"}
    assert ISO_UTC.match(start["time"])
    assert json.loads(lines[0]) == start  # the platform events frame the invocation
    (report,) = platform(lines, "platform.report")
    assert json.loads(lines[-1]) == report
    assert report["record"]["requestId"] == request_id
    assert report["record"]["status"] == "success"
    metrics = report["record"]["metrics"]
    assert set(metrics) == {
        "durationMs",
        "billedDurationMs",
        "memorySizeMB",
        "maxMemoryUsedMB",
        "initDurationMs",
    }
    assert metrics["memorySizeMB"] == 256
    assert metrics["billedDurationMs"] >= metrics["durationMs"] > 0
    assert not any(
        line.startswith(("START RequestId", "END RequestId", "REPORT RequestId")) for line in lines
    )
    # X-Amz-Log-Result carries the same delivered events (its last 4 KB).
    assert tail == "\n".join(lines).encode()[-4096:].decode(errors="replace")

    warm, _, _ = invoke(aws_client, "alc-json-debug")
    again = messages(aws_client, "/custom/alc", warm["stream"])
    assert warm["pid"] == body["pid"]
    assert "initDurationMs" not in platform(again, "platform.report")[-1]["record"]["metrics"]


def test_json_info_drops_debug_application_logs(
    aws_client: Callable[[str], Any], deploy: Callable[..., str]
) -> None:
    deploy("alc-json-info", {"LogFormat": "JSON"})  # ApplicationLogLevel and SystemLogLevel: INFO
    body, _, _ = invoke(aws_client, "alc-json-info")
    assert body["env"] == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    assert body["root_level"] == "INFO"
    assert body["powertools_level"] == "INFO"
    lines = messages(aws_client, "/aws/lambda/alc-json-info", body["stream"])
    records = runtime_records(lines)
    assert "root-debug 1" not in records
    assert set(records) >= {"root-info 2", "root-warning", "root-caught"}
    assert POWERTOOLS_DEBUG not in lines  # printed, but below the application log level
    assert not any("pt-style debug" in line for line in lines)
    assert POWERTOOLS_ERROR in lines
    assert "plain-print line" in lines  # no level: INFO
    powertools = [r["message"] for r in as_json(lines) if r.get("service") == "alc-probe"]
    assert powertools == ["powertools-info"]
    assert len(platform(lines, "platform.start")) == len(platform(lines, "platform.report")) == 1


def test_json_warn_with_system_level_warn_drops_info_and_platform_events(
    aws_client: Callable[[str], Any], deploy: Callable[..., str]
) -> None:
    deploy("alc-json-warn", {"LogFormat": "JSON", "ApplicationLogLevel": "WARN", "SystemLogLevel": "WARN"})
    body, _, tail = invoke(aws_client, "alc-json-warn")
    assert body["env"] == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"}
    assert body["root_level"] == "WARNING"
    lines = messages(aws_client, "/aws/lambda/alc-json-warn", body["stream"])
    assert set(runtime_records(lines)) == {"root-warning", "root-caught"}
    assert POWERTOOLS_ERROR in lines
    assert POWERTOOLS_DEBUG not in lines
    assert "plain-print line" not in lines  # Lambda gives a line without a level INFO
    assert not platform(lines, "platform.start")
    assert not platform(lines, "platform.report")
    assert "platform." not in tail
    assert len(lines) == 3


def test_json_unhandled_error_is_a_json_record(
    aws_client: Callable[[str], Any], deploy: Callable[..., str]
) -> None:
    deploy("alc-json-error", {"LogFormat": "JSON", "ApplicationLogLevel": "ERROR"})
    body, error, tail = invoke(aws_client, "alc-json-error", **{"raise": True})
    assert error == "Unhandled"
    assert body["errorType"] == "ValueError"
    request_id = body["requestId"]
    lines = tail.splitlines()
    (logged,) = [r for r in as_json(lines) if r.get("errorMessage") == "boom" and "logger" not in r]
    assert logged["level"] == "ERROR"
    assert logged["errorType"] == "ValueError"
    assert logged["requestId"] == request_id
    assert isinstance(logged["stackTrace"], list)
    assert "index.py" in logged["stackTrace"][-1]
    assert ISO_UTC.match(logged["timestamp"])
    (report,) = platform(lines, "platform.report")
    assert report["record"]["status"] == "error"
    assert report["record"]["errorType"] == "ValueError"


def test_text_format_is_unchanged(aws_client: Callable[[str], Any], deploy: Callable[..., str]) -> None:
    deploy("alc-text", {"LogFormat": "Text"})
    body, _, _ = invoke(aws_client, "alc-text")
    assert body["env"] == {"AWS_LAMBDA_LOG_FORMAT": None, "AWS_LAMBDA_LOG_LEVEL": None}
    assert body["root_level"] == "WARNING"  # Python's default: the runtime sets no level
    request_id = body["request_id"]
    lines = messages(aws_client, "/aws/lambda/alc-text", body["stream"])
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tInit Duration: " in lines[-1]
    assert re.fullmatch(
        rf"\[WARNING\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{request_id}\troot-warning", lines[1]
    )
    assert POWERTOOLS_DEBUG in lines  # Text: no filtering
    assert "plain-print line" in lines
    assert not any("root-info" in line for line in lines)
    assert not platform(lines, "platform.start")


def test_switching_text_to_json_takes_effect_on_the_next_invocation(
    aws_client: Callable[[str], Any], deploy: Callable[..., str]
) -> None:
    deploy("alc-switch")
    before, _, tail = invoke(aws_client, "alc-switch")
    assert before["env"]["AWS_LAMBDA_LOG_FORMAT"] is None
    assert f"START RequestId: {before['request_id']}" in tail
    lam = aws_client("lambda")
    lam.update_function_configuration(
        FunctionName="alc-switch", LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"}
    )
    assert lam.get_function_configuration(FunctionName="alc-switch")["LoggingConfig"]["LogFormat"] == "JSON"
    after, _, tail = invoke(aws_client, "alc-switch")
    assert after["env"] == {"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "DEBUG"}
    assert after["pid"] != before["pid"]  # the old environment was retired
    assert after["stream"] != before["stream"]
    lines = messages(aws_client, "/aws/lambda/alc-switch", after["stream"])
    assert platform(lines, "platform.start")[0]["record"]["requestId"] == after["request_id"]
    assert "root-debug 1" in runtime_records(lines)
    assert "START RequestId" not in tail


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ('{"level": "debug", "msg": "x", "timestamp": "2024-11-02T16:51:31.587199Z"}', 10),
        ('{"level": "TRACE"}', 5),
        ('  {"log_level": "Warning"}', 30),
        ('{"level": "WARN"}', 30),
        ('{"level": "fatal"}', 50),
        ('{"level": "CRITICAL"}', 50),
        ('{"level": "verbose"}', 20),  # unknown: INFO
        ('{"level": 10}', 20),
        ('{"message": "no level"}', 20),
        ('["level", "DEBUG"]', 20),
        ("{not json", 20),
        ("[DEBUG]\t2026-01-01T00:00:00.000Z\tid\ttext format", 20),
    ],
)
def test_the_level_lambda_gives_an_application_line(line: str, level: int) -> None:
    assert line_level(line) == level


@pytest.mark.parametrize(
    ("value", "root_level"),
    [("TRACE", 10), ("DEBUG", 10), ("info", 20), ("WARN", 30), ("ERROR", 40), ("FATAL", 50), ("", None)],
)
def test_the_runtime_maps_lambda_levels_to_python_ones(value: str, root_level: int | None) -> None:
    name = _root_level(value)
    assert (logging.getLevelNamesMapping()[name] if name else None) == root_level


def test_json_timeout_is_a_report_with_status_timeout(
    aws_client: Callable[[str], Any], make_function: Callable[..., str]
) -> None:
    make_function(
        "alc-json-timeout",
        {"index.py": "import time\ndef handler(e, c):\n    print('sleeping')\n    time.sleep(30)\n"},
        Timeout=1,
        LoggingConfig={"LogFormat": "JSON"},
    )
    body, error, tail = invoke(aws_client, "alc-json-timeout")
    assert error == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    lines = tail.splitlines()
    assert "sleeping" in lines
    (report,) = platform(lines, "platform.report")
    assert report["record"]["status"] == "timeout"
    assert report["record"]["errorType"] == "Sandbox.Timedout"
    assert report["record"]["metrics"]["durationMs"] >= 1000


INIT_PRINTER = """
print("init-phase line")


def handler(event, context):
    print("invocation line")
    return {"stream": context.log_stream_name, "request_id": context.aws_request_id}
"""


@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_output_of_the_init_phase_comes_before_the_start_and_fails_nothing(
    aws_client: Callable[[str], Any], make_function: Callable[..., str], log_format: str
) -> None:
    """A module that prints at import: Lambda logs that line before START (platform.start), and
    PutLogEvents wants events in time order; written after START, the whole invoke used to fail."""
    name = f"alc-init-{log_format.lower()}"
    make_function(name, {"index.py": INIT_PRINTER}, LoggingConfig={"LogFormat": log_format})

    body, error, _ = invoke(aws_client, name)

    assert error == ""
    lines = messages(aws_client, f"/aws/lambda/{name}", body["stream"])
    start = next(i for i, line in enumerate(lines) if line.startswith("START ") or '"platform.start"' in line)
    assert lines.index("init-phase line") < start < lines.index("invocation line")
