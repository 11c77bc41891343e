"""The declaration of one change to moto (see :mod:`emulator.registry`, which collects them all).

Kept apart from the registry so that the modules declaring patches import only this, and the
registry imports them: no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


class PatchTargetError(RuntimeError):
    """A patch's target is not where the registry expects it (moto changed): review the registry."""


@dataclass(frozen=True)
class Patch:
    """One change to moto.

    ``kind``: ``"replace"`` (the target must exist; ``build`` receives the original),
    ``"add"`` (the target must not exist; ``build`` receives ``None``) or ``"entries"`` (the target
    is a dict; ``build`` returns entries merged into it; uninstall removes the keys it added and
    puts back the values of those it replaced).
    """

    target: str
    why: str
    build: Callable[[Any], Any]
    kind: Literal["replace", "add", "entries"] = "replace"
    module: str = field(default="", compare=False)  # the emulator module declaring it

    @property
    def owner_path(self) -> str:
        return self.target.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.target.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Use:
    """A place the emulator reaches into moto without patching it (see :data:`emulator.registry.USES`).

    ``kind``: ``"import"`` (a name the emulator imports from moto: a backend it reads or writes, an
    exception it raises or catches, a class it builds or checks against), ``"private"`` (an
    underscore attribute or method of a moto class that the emulator reads or calls: moto may rename
    it in any release) or ``"stores"`` (an attribute the emulator keeps on moto's objects: moto must
    not define it). ``modules``: the emulator modules (without ``emulator.``) that do it.
    """

    target: str
    kind: Literal["import", "private", "stores"]
    modules: tuple[str, ...]
    why: str = ""

    @property
    def owner_path(self) -> str:
        return self.target.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.target.rsplit(".", 1)[1]
