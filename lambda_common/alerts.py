"""Alert formatting shared by the trigger and the security monitor.

Imported as ``from lambda_common.alerts import ...``; standard library and ``lambda_common`` only.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Final

from lambda_common.key_validation import is_default_ignorable

MAX_SUBJECT_CHARS: Final = 100
"""SNS's limit on the length of a message subject."""

MAX_ALERT_BYTES: Final = 200 * 1024
"""The largest alert body sent: SNS accepts 256 KiB per message, so stay well below it."""


ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Characters an alert never shows as they are: control and format characters (U+202E
RIGHT-TO-LEFT OVERRIDE, zero-width characters...), lone surrogates, private-use and unassigned
code points, and the line/paragraph separators. They are invisible or reorder the text around
them, so a name could pass for another one. The invisible letters and marks of other categories
(Unicode's default-ignorable code points: the Hangul fillers, the variation selectors, U+034F
COMBINING GRAPHEME JOINER...) are escaped too, by the table the key validator refuses them with
(:func:`lambda_common.key_validation.is_default_ignorable`)."""


def is_escaped(char: str) -> bool:
    """Whether an alert shows ``char`` as its JSON escape rather than as itself."""
    return unicodedata.category(char) in ESCAPED_CATEGORIES or is_default_ignorable(char)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells a character beyond the BMP as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def display_text(text: str) -> str:
    r"""``text`` as a JSON string literal for humans, every char :func:`is_escaped` names escaped.

    A name holding U+202E after its ``a`` shows as ``"a\u202etxt.exe"``, quotes included, with the
    six characters ``\u202e`` in place of the invisible one. Printable Unicode stays readable, and
    ``json.loads`` of the result gives back exactly ``text``.
    """
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(_json_escape(char) if is_escaped(char) else char for char in quoted)


def display_name(name: str) -> str:
    """A name (bucket, table, timestamp...) as it is when it is plain printable ASCII, else
    quoted and escaped as :func:`display_text` does."""
    return name if name.isascii() and name.isprintable() else display_text(name)


def _footer(omitted: int, footer_prefix: str) -> str:
    return f"{footer_prefix}... and {omitted} more\n"


def truncate_listing(header: str, entries: list[str], max_bytes: int, *, footer_prefix: str = "") -> str:
    """Join header and entries, replacing the entries that do not fit with '... and N more'.

    The result is at most ``max_bytes`` UTF-8 bytes whenever the header fits: entries are kept in
    order until the next one would leave no room for the footer, and the footer (preceded by
    ``footer_prefix``, e.g. ``"\\n"`` when entries are separated by blank lines) says how many
    were left out. When every entry fits, there is no footer.
    """
    footer_reserve = len(_footer(len(entries), footer_prefix).encode("utf-8"))
    budget = max_bytes - footer_reserve - len(header.encode("utf-8"))
    kept: list[str] = []
    for entry in entries:
        size = len(entry.encode("utf-8"))
        if size > budget:
            break
        kept.append(entry)
        budget -= size
    body = header + "".join(kept)
    if len(kept) < len(entries):
        body += _footer(len(entries) - len(kept), footer_prefix)
    return body
