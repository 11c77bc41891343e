"""The one S3 object key validator shared by the trigger and the writer, and the folder-marker
rule shared by the trigger and the reconcile tool.

Imported as ``from lambda_common.key_validation import ...``; standard library only.
"""

from __future__ import annotations

import unicodedata
from typing import Final
from urllib.parse import unquote, unquote_plus

MAX_KEY_BYTES: Final = 1024
"""S3's own limit on the UTF-8 length of an object key."""

_DOT_SEGMENTS: Final = frozenset({".", ".."})
_SHOWN_KEY_CHARS: Final = 200

REJECTED_CATEGORIES: Final = {
    "Cc": "control character",
    "Cf": "format character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}
"""Unicode categories no key may contain, with how a reason names them. Format characters
(U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE, U+200D ZERO WIDTH JOINER, U+FEFF...) and
the line/paragraph separators are invisible or reorder text, so a key could look like another one
in an alert or a console."""


def describe_character(char: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: the code point, and its Unicode name when it has one."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} ({name})" if name else f"U+{ord(char):04X}"


class InvalidKeyError(ValueError):
    """An object key the pipeline refuses to process; ``reason`` says why in plain words."""

    def __init__(self, reason: str, *, key: str) -> None:
        shown = key if len(key) <= _SHOWN_KEY_CHARS else f"{key[:_SHOWN_KEY_CHARS]}..."
        super().__init__(f"rejected S3 object key {shown!r}: {reason}")
        self.reason = reason
        self.key = key


def decode_s3_key(raw: str) -> str:
    """Decode a key as S3 event notifications deliver it (form-URL-encoded, UTF-8)."""
    try:
        return unquote_plus(raw, errors="strict")
    except UnicodeDecodeError as err:
        raise InvalidKeyError(
            f"key is not valid UTF-8 once percent-decoded (bad byte at position {err.start})",
            key=raw,
        ) from err


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is safe to process, else raise :class:`InvalidKeyError`."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"key must be a string, got {type(key).__name__}", key=repr(key))
    if not key:
        raise InvalidKeyError("key is empty", key=key)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise InvalidKeyError(
            f"key contains an unpaired surrogate at position {err.start} and is not valid Unicode",
            key=key,
        ) from err
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(f"key is {size} bytes in UTF-8; the maximum is {MAX_KEY_BYTES}", key=key)
    for position, char in enumerate(key):
        kind = REJECTED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            raise InvalidKeyError(
                f"key contains {kind} {describe_character(char)} at position {position}", key=key
            )
    if "\\" in key:
        raise InvalidKeyError("key contains a backslash, which some tools read as a path separator", key=key)
    if key.startswith("/"):
        raise InvalidKeyError("key starts with '/' (an absolute path)", key=key)
    for segment in key.split("/"):
        if segment in _DOT_SEGMENTS:
            raise InvalidKeyError(f"key contains a {segment!r} path segment", key=key)
        # errors="replace" is enough here: a replacement character can never form a dot segment.
        if unquote(segment, errors="replace") in _DOT_SEGMENTS:
            raise InvalidKeyError(
                f"key segment {segment!r} becomes a dot segment when percent-decoded again", key=key
            )
    return key


def is_folder_marker(key: str, size: int | None) -> bool:
    """A zero-byte object whose key ends in ``/``: what consoles create for a "folder".

    The trigger ignores it and the reconcile tool never re-drives it. A key ending in ``/`` that
    carries data (size > 0, or a size S3 did not state) is an ordinary upload and is ingested.
    """
    return key.endswith("/") and size == 0
