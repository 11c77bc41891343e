"""Helpers shared by the emulator tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def child_pids() -> set[int]:
    pid = os.getpid()
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        children.update(int(p) for p in text.split())
    return children


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def assert_nothing_left(threads_before: set[int], children_before: set[int], port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        new_threads = [t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
        new_children = child_pids() - children_before
        if not new_threads and not new_children:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"left behind: threads={new_threads} child pids={new_children}")
        time.sleep(0.1)
    assert not port_accepts(port), f"port {port} still accepts connections"


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return dict(description)
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_arn} still running after {timeout}s")
        time.sleep(0.2)


def drain_queue(sqs: Any, queue_url: str, expected: int, timeout: float = 15) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in batch.get("Messages", []):
            messages.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def make_queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return str(url), str(arn)
