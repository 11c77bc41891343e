"""moto's user configuration while an emulator runs (``moto.core.config.default_user_config``).

* ``stepfunctions``: ``execute_state_machine`` on. By default moto only records executions; the
  emulator runs their definitions (the pipeline's retries, catches and service integrations).
* ``lambda``: ``use_docker`` on. With it off, moto serves Lambda from its "simple" backend, which
  runs no code; the emulator needs the full backend, whose Docker invocation its local runtime
  replaces (:mod:`emulator.lambda_invoke`), so no Docker is used either way.

Declared as one ``entries`` patch of the registry: uninstall puts back the values moto (or a test's
``mock_aws(config=...)``) had before the emulator started.
"""

from __future__ import annotations

from typing import Any

from emulator.patch import Patch


def _config(_current: Any) -> dict[str, Any]:
    return {
        "stepfunctions": {"execute_state_machine": True},
        "lambda": {"use_docker": True},
    }


PATCHES = [
    Patch(
        "moto.core.config.default_user_config",
        "moto only records Step Functions executions unless execute_state_machine is on, and serves"
        " Lambda from a backend that runs no code when use_docker is off; the emulator executes both"
        " (Lambda through its local runtime, no Docker)",
        _config,
        kind="entries",
    ),
]
