"""Embedded AWS emulator: moto, in-process and threaded, with a local Lambda runtime.

See :class:`emulator.server.Emulator` (Python API), ``python -m emulator --help`` (CLI),
:mod:`emulator.registry` (every change made to moto) and ``emulator/README.md``.
"""

from emulator.admin_client import (
    AdminClient,
    AdminError,
    add_fault,
    clear_faults,
    list_faults,
    remove_fault,
    wait_until_healthy,
)
from emulator.server import Emulator, EmulatorError

__all__ = [
    "AdminClient",
    "AdminError",
    "Emulator",
    "EmulatorError",
    "add_fault",
    "clear_faults",
    "list_faults",
    "remove_fault",
    "wait_until_healthy",
]
