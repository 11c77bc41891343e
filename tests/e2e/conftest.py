"""The stack deployed onto each local AWS backend, once per (backend, hashicorp/aws source).

Parametrizations: the embedded emulator with every provider source the toolchain has, and MiniStack
(IAM enforced, TLS) with the newest. With one source (here 5.100.0 from /opt/tf-plugins; without a
mirror, ``registry``: the newest from registry.terraform.io) that is embedded + MiniStack on it;
each further version in range found in a local mirror adds an embedded run. ``E2E_BACKENDS`` (set
by ``make e2e`` from ``EMULATOR``) keeps only the named backends, e.g. ``E2E_BACKENDS=ministack``.
Without any source (offline, no mirror) every test fails with the toolchain's one sentence.

The module-scoped ``deployed`` fixture starts the backend on a free port, applies the real
configuration with the real provider, records a second plan, yields a Deployment to drive it, then
destroys the stack, stops the backend and checks that no process, thread or port is left behind.
One deployment per parametrization: deploys are the expensive part (about 25-50 s each).

Where MiniStack differs from AWS, the affected assertion is its own test, marked with
:func:`differs_on_ministack` (strict xfail naming the difference), never skipped.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devkit import backends, toolchain
from devkit.backends import Backend
from devkit.pipeline import Pipeline
from devkit.stack import Stack
from devkit.sweep import PREFIX, RUN_TAG, STARTED_TAG


def _providers() -> tuple[list[str], str]:
    """The provider sources, oldest first, and ''; without any, a placeholder and the reason."""
    try:
        return [build.version for build in toolchain.providers()], ""
    except toolchain.ToolchainError as error:
        return ["none"], f"e2e: {error}"


PROVIDERS, UNAVAILABLE = _providers()
# (backend, provider, workflow profile): the Express profile runs the whole suite on the embedded
# emulator with the newest provider. Not on MiniStack: its Step Functions (1.5.33's
# services/stepfunctions.py, read) run an EXPRESS machine's StartExecution like a Standard one and
# write no execution history to CloudWatch Logs, where the suite finds Express executions.
ALL_TARGETS = (
    [("embedded", version, "STANDARD") for version in PROVIDERS]
    + [("embedded", PROVIDERS[-1], "EXPRESS")]
    + [("ministack", PROVIDERS[-1], "STANDARD")]
)
WANTED = {name for name in os.environ.get("E2E_BACKENDS", "").replace(",", " ").split() if name}
TARGETS = [target for target in ALL_TARGETS if not WANTED or target[0] in WANTED]
# `make e2e-aws` (devkit/sandbox.py) runs the suite's ``aws``-marked tests against the stack it
# deployed (E2E_SANDBOX_STATE describes it): the one target then, and nothing else is collected.
SANDBOX = os.environ.get("E2E_TARGET", "") == "aws"
SANDBOX_TARGET = ("aws", "sandbox", "STANDARD")
if SANDBOX:
    TARGETS = [SANDBOX_TARGET]
# An Express workflow's executions exist only in its log group: the e2e stack logs them with their
# input and output (ALL, include_execution_data), which is how the tests find them, as one would on AWS.
PROFILE_VARIABLES: dict[str, dict[str, object]] = {
    "STANDARD": {},
    "EXPRESS": {"workflow_type": "EXPRESS", "state_machine_include_execution_data": True},
}


# Every e2e stack declares these exemptions (security_scan_exemptions), as a deployment would in its
# tfvars; test_pipeline.py's scan creates the resources so named. Their names are fixed because a
# declaration is applied before the resource exists: one backend per deployment, so none collide.
SCAN_EXEMPTIONS: dict[str, str] = {
    "e2e-declared-exempt-bucket": "public test fixtures",
    "e2e-declared-exempt-table": "scratch table",
}


def target_id(name: str, version: str, profile: str) -> str:
    if name == "aws":
        return "aws-sandbox"
    return f"{name}-{'express-' if profile == 'EXPRESS' else ''}aws-{version}"


# The burst proof (test_burst.py) needs the embedded emulator's fault modes: with only other
# backends wanted (EMULATOR=ministack make e2e) it is not collected.
collect_ignore = (
    [] if (not WANTED or "embedded" in WANTED) and not SANDBOX else ["test_burst.py", "test_burst_express.py"]
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``E2E_TARGET=aws`` only the tests marked ``aws`` (those that make sense on AWS) run."""
    if not SANDBOX:
        return
    deselected = [item for item in items if item.get_closest_marker("aws") is None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if item.get_closest_marker("aws") is not None]


@pytest.fixture(scope="session", autouse=True)
def provider_source() -> None:
    """Without a hashicorp/aws source every e2e test fails with the toolchain's sentence, no traceback."""
    if UNAVAILABLE and not SANDBOX:  # a sandbox run deployed the stack before the tests start
        pytest.fail(UNAVAILABLE, pytrace=False)


@dataclass
class Deployment:
    pipeline: Pipeline
    backend: Backend
    provider: str
    second_plan: str  # '' when the plan right after apply showed no changes
    tags: dict[str, str] = field(default_factory=dict)
    """Tags for what a test creates beside the stack: a sandbox run's, so that its sweep finds them."""

    @property
    def on_ministack(self) -> bool:
        return self.backend.name == "ministack"

    @property
    def express(self) -> bool:
        return self.pipeline.express


def differs_on_ministack(request: pytest.FixtureRequest, reason: str) -> None:
    """Mark the running test as a strict expected failure on MiniStack, naming the difference."""
    deployment: Deployment = request.getfixturevalue("deployed")
    if deployment.on_ministack:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"MiniStack differs from AWS: {reason}"))


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


def sandbox_deployment() -> Deployment:
    """The stack ``make e2e-aws`` deployed (and will destroy): E2E_SANDBOX_STATE describes it."""
    path = os.environ.get("E2E_SANDBOX_STATE")
    if not path:
        pytest.fail(
            "E2E_TARGET=aws runs under `make e2e-aws` (devkit/sandbox.py), which deploys the stack "
            "first and destroys it afterwards",
            pytrace=False,
        )
    state = json.loads(Path(path).read_text())
    backend = backends.Sandbox(state["endpoint"], state["region"])
    pipeline = backend.pipeline(state["outputs"])
    tags = {RUN_TAG: state["run_id"], STARTED_TAG: state["started"]}
    pipeline.subscribe_alerts(f"{PREFIX}-{state['run_id']}-alerts-observer", tags=tags)
    return Deployment(pipeline, backend, "sandbox", state["second_plan"], tags)


def _start(name: str, log: Path, label: str) -> Backend:
    if name == "embedded":
        backend: Backend = backends.Embedded(port=0, log_path=log, async_retry_delays=(0.5, 0.5))
    else:  # an instance (state files) per label: suites may run in parallel
        backend = backends.MiniStackBackend(port=0, instance=f"ministack-e2e-{label}")
    backend.start()
    return backend


# Module scope: torn down when the e2e module ends, before another suite starts its own Emulator
# (one per process).
@pytest.fixture(scope="module", params=TARGETS, ids=[target_id(*target) for target in TARGETS])
def deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    name, provider, profile = request.param
    if name == "aws":
        yield sandbox_deployment()
        return
    label = f"{request.module.__name__.rsplit('.', 1)[-1]}-{target_id(name, provider, profile)}"
    threads_before = {t.ident for t in threading.enumerate()}
    children_before = child_pids()
    backend = _start(name, tmp_path_factory.mktemp(label) / "emulator.log", label)
    port = int(backend.endpoint_url.rsplit(":", 1)[1])
    # A working directory per module and target: suites may run in parallel (pytest-xdist).
    stack = Stack.staged(backend.endpoint_url, provider, name=f"e2e-{label}", ca_bundle=backend.ca_bundle)
    try:
        outputs = stack.deploy({"security_scan_exemptions": SCAN_EXEMPTIONS, **PROFILE_VARIABLES[profile]})
        second_plan = stack.pending_changes()
        pipeline = backend.pipeline(outputs)
        pipeline.subscribe_alerts()
        yield Deployment(pipeline, backend, provider, second_plan)
        if backend.name == "ministack":
            # MiniStack ignores encoding-type=url when listing versions, so the provider's
            # force_destroy never deletes a key with '+' (it decodes it to a space) and loops;
            # test_listing_versions_with_url_encoding_encodes_the_keys shows it. Empty it first.
            pipeline.empty_bucket()
        stack.destroy(timeout=300)
        assert not stack.has_state(), "terraform destroy must leave an empty state"
    finally:
        stack.remove_overrides()
        backend.stop()
    leftover_threads = {t.ident for t in threading.enumerate()} - threads_before
    assert not leftover_threads, f"threads left behind: {leftover_threads}"
    assert child_pids() <= children_before, "child processes left behind"
    assert port_is_free(port), f"port {port} still in use"


@pytest.fixture
def backend(deployed: Deployment) -> Backend:
    return deployed.backend


@pytest.fixture
def pipeline(deployed: Deployment) -> Pipeline:
    """The deployed pipeline with no alert left over from an earlier test."""
    deployed.backend.settle(timeout=60)
    deployed.pipeline.wait_for_queue_drained(timeout=120)
    deployed.pipeline.alerts(wait_seconds=0)
    return deployed.pipeline
