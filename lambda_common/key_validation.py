"""The one S3 object key validator shared by the trigger and the writer, and the folder-marker
rule shared by the trigger and the reconcile tool.

Imported as ``from lambda_common.key_validation import ...``; standard library only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Final
from urllib.parse import unquote, unquote_plus

MAX_KEY_BYTES: Final = 1024
"""S3's own limit on the UTF-8 length of an object key."""

UNICODE_VERSION: Final = unicodedata.unidata_version
"""The Unicode Character Database version of the running Python, which decides which code points
are unassigned (category Cn): 14.0.0 on Python 3.11, 15.0.0 on 3.12, 15.1.0 on 3.13, 16.0.0 on
3.14. The trigger and the writer share one Lambda runtime, so they agree; a tool run on another
Python may not, for characters added in between."""

_DOT_SEGMENTS: Final = frozenset({".", ".."})
_SHOWN_KEY_CHARS: Final = 200

REJECTED_CATEGORIES: Final = {
    "Cc": "control character",
    "Cf": "format character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Co": "private-use character",
    "Cn": "unassigned code point",
}
"""Unicode categories no key may contain, with how a reason names them. Format characters
(U+202E RIGHT-TO-LEFT OVERRIDE, U+200B ZERO WIDTH SPACE, U+200D ZERO WIDTH JOINER, U+FEFF...) and
the line/paragraph separators are invisible or reorder text, so a key could look like another one
in an alert or a console. Private-use characters (U+E000-U+F8FF, planes 15 and 16) mean whatever a
font makes of them; unassigned code points (noncharacters such as U+FFFF included) have no meaning
yet and render as nothing or as a box."""

DEFAULT_IGNORABLE_RANGES: Final = (
    (0x00AD, 0x00AD),  # SOFT HYPHEN (Cf)
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER (Mn)
    (0x061C, 0x061C),  # ARABIC LETTER MARK (Cf)
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER..HANGUL JUNGSEONG FILLER (Lo)
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ..KHMER VOWEL INHERENT AA (Mn)
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS (Mn), MONGOLIAN VOWEL SEPARATOR (Cf)
    (0x200B, 0x200F),  # ZERO WIDTH SPACE..RIGHT-TO-LEFT MARK (Cf)
    (0x202A, 0x202E),  # LEFT-TO-RIGHT EMBEDDING..RIGHT-TO-LEFT OVERRIDE (Cf)
    (0x2060, 0x206F),  # WORD JOINER..NOMINAL DIGIT SHAPES (Cf; U+2065 reserved)
    (0x3164, 0x3164),  # HANGUL FILLER (Lo)
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1..VARIATION SELECTOR-16 (Mn)
    (0xFEFF, 0xFEFF),  # ZERO WIDTH NO-BREAK SPACE (Cf)
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER (Lo)
    (0xFFF0, 0xFFF8),  # reserved (Cn)
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT LETTER OVERLAP..SHORTHAND FORMAT UP STEP (Cf)
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM..MUSICAL SYMBOL END PHRASE (Cf)
    (0xE0000, 0xE0FFF),  # tags (Cf), VARIATION SELECTOR-17..256 (Mn), the rest reserved (Cn)
)
"""Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt: 4,174 code points
in Unicode 15.1, the same ranges in 18.0): characters a renderer shows as nothing when it has no
glyph for them. ``unicodedata`` does not expose the property, hence the table. Most of them are
format (Cf) or unassigned (Cn) code points, rejected by category first; this adds the invisible
letters and marks, such as the Hangul fillers and the variation selectors."""

_DEFAULT_IGNORABLE: Final = re.compile(
    "["
    + "".join(f"{re.escape(chr(first))}-{re.escape(chr(last))}" for first, last in DEFAULT_IGNORABLE_RANGES)
    + "]"
)


def is_default_ignorable(char: str) -> bool:
    """Whether ``char`` is in :data:`DEFAULT_IGNORABLE_RANGES` (shown as nothing without a glyph)."""
    return _DEFAULT_IGNORABLE.fullmatch(char) is not None


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


def _rejected_category(key: str) -> str | None:
    """The first character of a category in :data:`REJECTED_CATEGORIES`, as a reason."""
    for position, char in enumerate(key):
        category = unicodedata.category(char)
        kind = REJECTED_CATEGORIES.get(category)
        if kind is not None:
            reason = f"key contains {kind} {describe_character(char)} at position {position}"
            return f"{reason} (as of Unicode {UNICODE_VERSION})" if category == "Cn" else reason
    return None


def _default_ignorable(key: str) -> str | None:
    """The first Default_Ignorable_Code_Point character, as a reason."""
    found = _DEFAULT_IGNORABLE.search(key)
    if found is None:
        return None
    return (
        f"key contains invisible (default-ignorable) character {describe_character(found.group())}"
        f" at position {found.start()}"
    )


def _blank(key: str) -> str | None:
    """A key of whitespace only (``str.isspace``, which covers Unicode's White_Space), as a reason."""
    if not key.isspace():
        return None
    spaces = ", ".join(describe_character(char) for char in dict.fromkeys(key))
    return f"key is blank: it is only whitespace ({spaces})"


def _backslash(key: str) -> str | None:
    if "\\" in key:
        return "key contains a backslash, which some tools read as a path separator"
    return None


def _absolute_path(key: str) -> str | None:
    if key.startswith("/"):
        return "key starts with '/' (an absolute path)"
    return None


def _dot_segment(key: str) -> str | None:
    """A ``.`` or ``..`` segment, literally or once percent-decoded again, as a reason."""
    for segment in key.split("/"):
        if segment in _DOT_SEGMENTS:
            return f"key contains a {segment!r} path segment"
        # errors="replace" is enough here: a replacement character can never form a dot segment.
        if unquote(segment, errors="replace") in _DOT_SEGMENTS:
            return f"key segment {segment!r} becomes a dot segment when percent-decoded again"
    return None


_KEY_RULES: Final[tuple[Callable[[str], str | None], ...]] = (
    _rejected_category,
    _default_ignorable,
    _blank,
    _backslash,
    _absolute_path,
    _dot_segment,
)
"""The rules a non-empty, valid-Unicode key of at most :data:`MAX_KEY_BYTES` must pass, in the
order they are checked: a key breaking several is rejected with the first one's reason. Each
returns ``None`` for a key it accepts. By the time :func:`_blank` runs, the only whitespace left is
the space separators (category Zs: U+0020, U+00A0, U+3000...); tabs, newlines and the line and
paragraph separators were already refused by category."""


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
    for rule in _KEY_RULES:
        reason = rule(key)
        if reason is not None:
            raise InvalidKeyError(reason, key=key)
    return key


def is_folder_marker(key: str, size: int | None) -> bool:
    """A zero-byte object whose key ends in ``/``: what consoles create for a "folder".

    The trigger ignores it and the reconcile tool never re-drives it. A key ending in ``/`` that
    carries data (size > 0, or a size S3 did not state) is an ordinary upload and is ingested.
    """
    return key.endswith("/") and size == 0
