"""The local AWS backends the stack is deployed onto: the embedded emulator and MiniStack.

Both are driven by the same code (:class:`devkit.stack.Stack` to deploy, :class:`devkit.pipeline.
Pipeline` to act and observe through AWS APIs). A backend only adds what AWS itself cannot be asked
for, and says what it can show:

============================  ===================================  ==================================
                              ``embedded`` (default)               ``ministack``
============================  ===================================  ==================================
what it is                    moto + this repo's additions,        MiniStack (PyPI), own venv,
                              in this process                      own process group
endpoint                      ``http://127.0.0.1:<port>``          ``https://127.0.0.1:<port>`` (TLS)
IAM, key and topic policies   not enforced                         enforced (``AUTH=true``)
a write that fails            fault injection (``add_fault``)      an explicit IAM Deny on the role
a schedule that fires         ``trigger_rule`` (moto runs none)    MiniStack runs it (rate(1 minute))
============================  ===================================  ==================================
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from devkit.ministack import MiniStack
from devkit.pipeline import Pipeline
from emulator import Emulator
from emulator.admin_client import AdminClient, add_fault, clear_faults

NAMES = ("embedded", "ministack")
DEFAULT = "embedded"


class BackendError(RuntimeError):
    """An unknown backend name, or a backend that cannot start."""


class Backend(Protocol):
    name: str
    enforces_iam: bool

    @property
    def endpoint_url(self) -> str: ...

    @property
    def ca_bundle(self) -> Path | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until asynchronous work (S3 notifications, async invocations) has been delivered."""

    def failing_writes(self, pipeline: Pipeline, key_prefix: str) -> contextlib.AbstractContextManager[str]:
        """While active, the writer's PutItem fails for keys under `key_prefix`; yields the error name."""

    def failing_starts(self, pipeline: Pipeline, key_prefix: str) -> contextlib.AbstractContextManager[str]:
        """While active, the trigger's StartExecution fails for keys under `key_prefix`."""

    def fire_schedule(self, pipeline: Pipeline, rule: str) -> contextlib.AbstractContextManager[None]:
        """While active, the schedule rule runs its targets (once, soon)."""

    def pipeline(self, outputs: dict[str, str]) -> Pipeline: ...


@dataclass
class Embedded:
    """The embedded emulator, in this process."""

    port: int = 0
    log_path: Path | None = None
    async_retry_delays: tuple[float, ...] = (1.0, 2.0)
    name: str = "embedded"
    enforces_iam: bool = False
    emulator: Emulator | None = field(default=None, repr=False)

    @property
    def running(self) -> Emulator:
        if self.emulator is None:
            raise BackendError("the embedded emulator is not started")
        return self.emulator

    @property
    def endpoint_url(self) -> str:
        return self.running.endpoint_url

    @property
    def ca_bundle(self) -> Path | None:
        return None

    def start(self) -> None:
        self.emulator = Emulator(
            port=self.port, log_path=self.log_path, async_retry_delays=self.async_retry_delays
        ).start()

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def settle(self, timeout: float = 60.0) -> None:
        """Until no asynchronous invocation is pending and every mapped queue is drained."""
        self.running.wait_until_idle(timeout=timeout)

    @contextlib.contextmanager
    def failing_writes(self, pipeline: Pipeline, key_prefix: str) -> Iterator[str]:
        self.running.add_fault(
            "DynamoDB_20120810.PutItem",
            match=key_prefix,
            error_code="ProvisionedThroughputExceededException",
            message="injected: table is over capacity",
        )
        try:
            yield "ProvisionedThroughputExceeded"
        finally:
            self.running.clear_faults()

    @contextlib.contextmanager
    def failing_starts(self, pipeline: Pipeline, key_prefix: str) -> Iterator[str]:
        self.running.add_fault(
            "AWSStepFunctions.StartExecution", match=key_prefix, error_code="ServiceUnavailable"
        )
        try:
            yield "ServiceUnavailable"
        finally:
            self.running.clear_faults()

    @contextlib.contextmanager
    def fire_schedule(self, pipeline: Pipeline, rule: str) -> Iterator[None]:
        restore = pipeline.run_schedule_soon(rule)
        try:
            # moto runs no schedule: fire the rule now, as EventBridge would once it is due.
            self.running.trigger_rule(rule, region=pipeline.region)
            yield
        finally:
            restore()

    def pipeline(self, outputs: dict[str, str]) -> Pipeline:
        return Pipeline(self.endpoint_url, outputs)


@dataclass
class MiniStackBackend:
    """MiniStack with AUTH=true and TLS, in its own process group."""

    port: int = 0
    state_dir: Path | None = None
    instance: str = "ministack"
    name: str = "ministack"
    enforces_iam: bool = True
    server: MiniStack | None = field(default=None, repr=False)

    @property
    def running(self) -> MiniStack:
        if self.server is None:
            raise BackendError("MiniStack is not started")
        return self.server

    @property
    def endpoint_url(self) -> str:
        return self.running.endpoint_url

    @property
    def ca_bundle(self) -> Path | None:
        return self.running.ca_bundle

    def start(self) -> None:
        server = MiniStack(port=self.port, name=self.instance)
        if self.state_dir is not None:
            server.state_dir = self.state_dir
        self.server = server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def settle(self, timeout: float = 60.0) -> None:
        # MiniStack has no "pending invocations" API; S3 -> Lambda is asynchronous there too.
        time.sleep(min(timeout, 1.0))

    @contextlib.contextmanager
    def failing_writes(self, pipeline: Pipeline, key_prefix: str) -> Iterator[str]:
        with pipeline.denied("writer_lambda_name", "dynamodb:PutItem"):
            yield "AccessDenied"

    @contextlib.contextmanager
    def failing_starts(self, pipeline: Pipeline, key_prefix: str) -> Iterator[str]:
        with pipeline.denied("trigger_lambda_name", "states:StartExecution"):
            yield "AccessDenied"

    @contextlib.contextmanager
    def fire_schedule(self, pipeline: Pipeline, rule: str) -> Iterator[None]:
        restore = pipeline.run_schedule_soon(rule)
        try:
            yield
        finally:
            restore()

    def pipeline(self, outputs: dict[str, str]) -> Pipeline:
        return Pipeline(self.endpoint_url, outputs, ca_bundle=self.ca_bundle)


IAM_PROPAGATION_SECONDS = 15.0
"""How long an IAM change may take to apply on AWS (its documentation: usually seconds)."""


@dataclass
class Sandbox:
    """A stack ``make e2e-aws`` deployed (:mod:`devkit.sandbox`): real AWS through the standard
    credential chain, or, in ``make test``, an embedded emulator reached only by its endpoint.

    Nothing is started or stopped here: the sandbox run deployed the stack and destroys it. A failure
    is made as one would on AWS, an explicit IAM Deny on the role (then a wait for IAM to apply it);
    on an emulator, which enforces no IAM, through its admin API's fault rules instead.
    """

    endpoint: str | None
    region: str
    name: str = "aws"

    @property
    def enforces_iam(self) -> bool:
        return self.endpoint is None

    @property
    def endpoint_url(self) -> str:
        return self.endpoint or f"https://aws ({self.region})"

    @property
    def ca_bundle(self) -> Path | None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def settle(self, timeout: float = 60.0) -> None:
        if self.endpoint is not None:
            AdminClient(self.endpoint).wait_until_idle(timeout=timeout)

    @contextlib.contextmanager
    def _failing(
        self, pipeline: Pipeline, function_output: str, action: str, fault: dict[str, str]
    ) -> Iterator[str]:
        if self.endpoint is None:
            with pipeline.denied(function_output, action):
                time.sleep(IAM_PROPAGATION_SECONDS)
                yield "AccessDenied"
            return
        add_fault(self.endpoint, **fault)
        try:
            yield fault["error_code"]
        finally:
            clear_faults(self.endpoint)

    def failing_writes(self, pipeline: Pipeline, key_prefix: str) -> contextlib.AbstractContextManager[str]:
        fault = {"target": "DynamoDB_20120810.PutItem", "match": key_prefix, "error_code": "AccessDenied"}
        return self._failing(pipeline, "writer_lambda_name", "dynamodb:PutItem", fault)

    def failing_starts(self, pipeline: Pipeline, key_prefix: str) -> contextlib.AbstractContextManager[str]:
        fault = {
            "target": "AWSStepFunctions.StartExecution",
            "match": key_prefix,
            "error_code": "AccessDenied",
        }
        return self._failing(pipeline, "trigger_lambda_name", "states:StartExecution", fault)

    @contextlib.contextmanager
    def fire_schedule(self, pipeline: Pipeline, rule: str) -> Iterator[None]:
        restore = pipeline.run_schedule_soon(rule)
        try:
            if self.endpoint is not None:  # moto runs no schedule: fire it as EventBridge would
                AdminClient(self.endpoint).call(
                    "POST", "/_emulator/events/trigger", {"rule": rule, "region": self.region}
                )
            yield
        finally:
            restore()

    def pipeline(self, outputs: dict[str, str]) -> Pipeline:
        return Pipeline(self.endpoint, outputs, region=self.region, credentials=None)


def make(name: str, port: int = 0, log_path: Path | None = None) -> Backend:
    """A backend by name (not started)."""
    if name == "embedded":
        return Embedded(port=port, log_path=log_path)
    if name == "ministack":
        return MiniStackBackend(port=port)
    raise BackendError(f"unknown emulator {name!r}: choose one of {', '.join(NAMES)}")
