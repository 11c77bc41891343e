"""The one list of every change the emulator makes to moto.

Each :class:`Patch` names the attribute it replaces or adds (``target``, a dotted path into moto),
says why (the moto behaviour that differs from AWS) and builds its replacement from the original,
which it keeps. :func:`install` applies them all when an Emulator starts; :func:`uninstall` puts
every original back when it stops, so moto is untouched while no emulator runs in the process (an
in-process ``mock_aws`` test sees plain moto). A moto upgrade means reviewing :func:`patches`:
a target that no longer exists fails :func:`install` with the patch's name instead of silently
doing nothing.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulator.patch import Patch, PatchTargetError

__all__ = ["Patch", "PatchTargetError", "describe", "install", "installed", "patches", "resolve", "uninstall"]

_MISSING: Any = object()


def resolve(path: str) -> Any:
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:]:
            try:
                obj = getattr(obj, name)
            except AttributeError as exc:
                raise PatchTargetError(f"{path}: {exc}") from exc
        return obj
    raise PatchTargetError(f"{path}: no importable module")


@dataclass
class _Applied:
    patch: Patch
    owner: Any
    # the owner's own attribute (its __dict__ entry), or _MISSING; for entries: each key's prior
    # value (or _MISSING), so that uninstall puts back what was there
    saved: Any


def _apply(patch: Patch) -> _Applied:
    owner = resolve(patch.owner_path)
    name = patch.attribute
    if patch.kind == "entries":
        mapping = getattr(owner, name)
        entries: Mapping[Any, Any] = patch.build(mapping)
        prior = {key: mapping.get(key, _MISSING) for key in entries}
        mapping.update(entries)
        return _Applied(patch, mapping, prior)
    own = vars(owner).get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
    exists = hasattr(owner, name)
    if patch.kind == "replace" and not exists:
        raise PatchTargetError(f"{patch.target} does not exist (patch from {patch.module}): review it")
    if patch.kind == "add" and exists:
        raise PatchTargetError(f"{patch.target} already exists in moto (patch from {patch.module})")
    original = getattr(owner, name) if exists else None
    replacement = patch.build(original)
    setattr(owner, name, replacement)
    return _Applied(patch, owner, own)


def _revert(applied: _Applied) -> None:
    patch = applied.patch
    if patch.kind == "entries":
        for key, prior in applied.saved.items():
            if prior is _MISSING:
                applied.owner.pop(key, None)
            else:
                applied.owner[key] = prior
        return
    if applied.saved is _MISSING:
        delattr(applied.owner, patch.attribute)
    else:
        setattr(applied.owner, patch.attribute, applied.saved)


def patches() -> list[Patch]:
    """Every patch, in installation order (imported lazily: moto is heavy)."""
    from emulator import (
        cloudwatch_alarms,
        events,
        lambda_api,
        lambda_invoke,
        moto_config,
        paging,
        performance,
        s3_encryption,
        s3_listing,
        s3_notifications,
        s3_policy,
        sqs_attributes,
        sqs_event_sources,
        sqs_move_tasks,
        stepfunctions_api,
    )

    found: list[Patch] = []
    for module in (
        moto_config,
        lambda_invoke,
        lambda_api,
        s3_encryption,
        s3_notifications,
        s3_policy,
        s3_listing,
        sqs_attributes,
        sqs_event_sources,
        sqs_move_tasks,
        paging,
        stepfunctions_api,
        events,
        cloudwatch_alarms,
        performance,
    ):
        for patch in module.PATCHES:
            found.append(Patch(patch.target, patch.why, patch.build, patch.kind, module.__name__))
    return found


_LOCK = threading.Lock()
_APPLIED: list[_Applied] = []


def install() -> list[Patch]:
    """Apply every patch; all or nothing (a failure reverts what was applied)."""
    with _LOCK:
        if _APPLIED:
            raise RuntimeError("the emulator's patches are already installed")
        try:
            for patch in patches():
                _APPLIED.append(_apply(patch))
        except BaseException:
            _uninstall_locked()
            raise
        return [applied.patch for applied in _APPLIED]


def _uninstall_locked() -> None:
    while _APPLIED:
        _revert(_APPLIED.pop())


def uninstall() -> None:
    """Put every original back (idempotent)."""
    with _LOCK:
        _uninstall_locked()


def installed() -> bool:
    return bool(_APPLIED)


def describe() -> list[dict[str, str]]:
    """The registry as data (``GET /_emulator/patches``, the README table)."""
    return [{"target": p.target, "kind": p.kind, "module": p.module, "why": p.why} for p in patches()]
