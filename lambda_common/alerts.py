"""Alert formatting shared by the trigger and the security monitor.

The packager copies this file to the root of both function zips, so each handler does
``from alerts import ...``. It has no dependencies beyond the standard library.
"""

from __future__ import annotations

from typing import Final

MAX_SUBJECT_CHARS: Final = 100
"""SNS's limit on the length of a message subject."""

MAX_ALERT_BYTES: Final = 200 * 1024
"""The largest alert body sent: SNS accepts 256 KiB per message, so stay well below it."""


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
