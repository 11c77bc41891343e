"""Embedded AWS emulator: moto, in-process and threaded, with a local Lambda runtime.

See :class:`emulator.server.Emulator` (Python API) and ``python -m emulator --help`` (CLI).
"""

from emulator.faults import add_fault, clear_faults, list_faults, remove_fault
from emulator.server import Emulator, EmulatorError, wait_until_healthy

__all__ = [
    "Emulator",
    "EmulatorError",
    "add_fault",
    "clear_faults",
    "list_faults",
    "remove_fault",
    "wait_until_healthy",
]
