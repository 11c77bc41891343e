"""Work moto repeats for every request or execution, done once instead (measured on a burst).

These patches change no behaviour, only cost; each was a top entry of a py-spy profile of the
emulator during a burst of uploads (see ``benchmarks/README.md``):

* ``ExecutionWorker._get_evaluation_entrypoint`` parses the state machine definition with ANTLR for
  every execution (about 15 % of the emulator's CPU in a burst). The parsed program is reused for
  the same definition text; definitions with ``Parallel`` or ``Map`` states are not cached, because
  their components keep per-run state. Every other component keeps its per-execution state (retry
  counters, backoff multipliers) in the execution's own heap, under the component's ``heap_key``;
  moto draws that key lazily on first use, so two executions evaluating a shared program for the
  first time could each draw one and one would lose its retry count (seen: 4 attempts for
  MaxAttempts 2). Every key is therefore drawn before the program is shared (``freeze_heap_keys``).
* ``json_path.parse`` builds a jsonpath-ng parser (reading its yacc tables) for every path of every
  state of every execution: parsed paths are cached.
* ``backends.list_of_moto_modules`` lists moto's package directory on disk for every request to
  pick the backend: the list is computed once.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import OrderedDict
from typing import Any

from emulator.patch import Patch

_STATEFUL_STATE_TYPES = frozenset({"Parallel", "Map"})
_MAX_CACHED_DEFINITIONS = 64


def _state_types(states: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for state in states.values():
        if isinstance(state, dict):
            found.add(str(state.get("Type")))
            for nested in ("Branches", "Iterator", "ItemProcessor"):
                value = state.get(nested)
                for branch in value if isinstance(value, list) else [value]:
                    if isinstance(branch, dict):
                        found |= _state_types(branch.get("States", {}))
    return found


def cacheable(definition: str) -> bool:
    """True when the parsed program of ``definition`` holds no per-execution state."""
    try:
        document = json.loads(definition)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(document, dict) and not (
        _state_types(document.get("States", {})) & _STATEFUL_STATE_TYPES
    )


def _components(node: Any, seen: set[int]) -> Any:
    """Every ASL component reachable from ``node`` through attributes, lists, tuples and dicts."""
    from moto.stepfunctions.parser.asl.component.component import Component

    if id(node) in seen:
        return
    if isinstance(node, Component):
        seen.add(id(node))
        yield node
        children: Any = vars(node).values()
    elif isinstance(node, (list, tuple, set, frozenset)):
        children = node
    elif isinstance(node, dict):
        children = node.values()
    else:
        return
    for child in children:
        yield from _components(child, seen)


def freeze_heap_keys(program: Any) -> int:
    """Draw the heap key of every evaluable component of ``program`` now; return how many.

    Called before a parsed program is shared between executions, so concurrent executions never
    race on moto's lazy ``EvalComponent.heap_key`` (a check-then-set on the shared component).
    """
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    count = 0
    for component in _components(program, set()):
        if isinstance(component, EvalComponent):
            _ = component.heap_key
            count += 1
    return count


def _evaluation_entrypoint(original: Any) -> Any:
    cache: OrderedDict[str, Any] = OrderedDict()
    lock = threading.Lock()

    def get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        if not isinstance(definition, str) or not cacheable(definition):
            return original(self)
        with lock:
            program = cache.get(definition)
            if program is not None:
                cache.move_to_end(definition)
                return program
        program = original(self)
        freeze_heap_keys(program)
        with lock:
            cache[definition] = program
            while len(cache) > _MAX_CACHED_DEFINITIONS:
                cache.popitem(last=False)
        return program

    return get_evaluation_entrypoint


def _cached_parse(original: Any) -> Any:
    return functools.lru_cache(maxsize=4096)(original)


def _cached_module_list(original: Any) -> Any:
    modules: list[str] = []

    def list_of_moto_modules() -> list[str]:
        if not modules:
            modules.extend(original())
        return modules

    return list_of_moto_modules


_WHY = "performance only, no behaviour change: "
PATCHES = [
    Patch(
        "moto.stepfunctions.parser.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint",
        _WHY + "moto parses the definition with ANTLR for every execution (15 % of a burst's CPU)",
        _evaluation_entrypoint,
    ),
    Patch(
        "moto.stepfunctions.parser.asl.utils.json_path.parse",
        _WHY + "moto builds a jsonpath-ng parser for every JSONPath of every state it evaluates",
        _cached_parse,
    ),
    Patch(
        "moto.backends.list_of_moto_modules",
        _WHY + "moto lists its package directory on disk for every request to find the backend",
        _cached_module_list,
    ),
]
