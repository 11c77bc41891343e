"""Helpers shared by the tooling tests that stop a command's whole process group."""

from __future__ import annotations

import time
from pathlib import Path


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether process ``pid`` has exited (gone, or a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False
