"""Errors every function raises the same way.

:class:`ConfigurationError` is defined here once: each handler reads its environment at load and
raises it for a setting it cannot run without or cannot use, never guessing. The function folders
re-export it (``index.ConfigurationError``) and define none of their own
(``tests/tooling/test_structure.py`` checks).
"""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """The function's environment is missing a setting it cannot run without, or has an unusable one."""
