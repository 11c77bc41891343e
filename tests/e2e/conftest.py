"""The stack deployed onto the embedded emulator, once per available hashicorp/aws version.

Each version gets its own in-process Emulator on a free port and its own terraform working
directory; the fixture applies the real configuration with the real provider, checks that a second
plan is empty, yields a Pipeline to drive it, then destroys the stack, stops the emulator and
checks that no process, thread or port is left behind.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit import toolchain
from devkit.pipeline import Pipeline
from devkit.stack import Stack
from emulator import Emulator

PROVIDERS = [build.version for build in toolchain.providers()]


@dataclass
class Deployment:
    pipeline: Pipeline
    emulator: Emulator
    provider: str


def child_pids() -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        children.update(int(pid) for pid in text.split())
    return children


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# Module scope: torn down when the e2e module ends, before another suite starts its own Emulator
# (one per process).
@pytest.fixture(scope="module", params=PROVIDERS, ids=[f"aws-{v}" for v in PROVIDERS])
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    provider: str = request.param
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = child_pids()
    log = tmp_path_factory.mktemp(f"emulator-{provider}") / "emulator.log"
    emulator = Emulator(port=0, log_path=log, async_retry_delays=(0.5, 0.5))
    emulator.start()
    port = emulator.port
    stack = Stack.staged(emulator.endpoint_url, provider, name="e2e")
    try:
        outputs = stack.deploy()
        assert stack.pending_changes() == "", "a second plan right after apply must show no changes"
        pipeline = Pipeline(emulator.endpoint_url, outputs)
        pipeline.subscribe_alerts()
        yield Deployment(pipeline, emulator, provider)
        stack.destroy()
        assert not stack.has_state(), "terraform destroy must leave an empty state"
    finally:
        stack.remove_overrides()
        emulator.stop()
    leftover_threads = {t.ident for t in threading.enumerate()} - threads_before
    assert not leftover_threads, f"threads left behind: {leftover_threads}"
    assert child_pids() <= children_before, "child processes left behind"
    assert port_is_free(port), f"port {port} still in use"


@pytest.fixture
def emulator(deployed: Deployment) -> Emulator:
    return deployed.emulator


@pytest.fixture
def pipeline(deployed: Deployment) -> Iterator[Pipeline]:
    """The deployed pipeline with no alert left over from an earlier test and no fault rule."""
    deployed.emulator.wait_for_async_invocations(timeout=60)
    deployed.pipeline.alerts(wait_seconds=0)
    yield deployed.pipeline
    deployed.emulator.clear_faults()
