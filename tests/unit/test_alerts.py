"""The shared alert formatting: listings cut to fit one SNS message, with a '... and N more' footer."""

from __future__ import annotations

import json
import unicodedata
from types import ModuleType

import pytest

HEADER = "Header line.\n\n"


def entries(count: int, size: int = 10) -> list[str]:
    """``count`` distinct entries of ``size`` ASCII bytes each (newline included)."""
    return [f"{index:0{size - 1}d}\n" for index in range(count)]


def test_the_limits_stay_below_what_sns_accepts(alerts: ModuleType) -> None:
    assert alerts.MAX_SUBJECT_CHARS == 100
    assert alerts.MAX_ALERT_BYTES < 256 * 1024


def test_everything_that_fits_is_listed_without_a_footer(alerts: ModuleType) -> None:
    listed = entries(3)

    assert alerts.truncate_listing(HEADER, listed, 1000) == HEADER + "".join(listed)


def test_no_entries_is_just_the_header(alerts: ModuleType) -> None:
    assert alerts.truncate_listing(HEADER, [], 1000) == HEADER


def test_entries_that_do_not_fit_are_counted_in_the_footer(alerts: ModuleType) -> None:
    listed = entries(10)
    footer = "... and 7 more\n"
    # Room for the header, three entries and the longest footer ("... and 10 more\n"), no more
    max_bytes = len(HEADER) + 3 * 10 + len("... and 10 more\n")

    body = alerts.truncate_listing(HEADER, listed, max_bytes)

    assert body == HEADER + "".join(listed[:3]) + footer
    assert len(body.encode("utf-8")) <= max_bytes


def test_one_byte_less_drops_one_more_entry(alerts: ModuleType) -> None:
    listed = entries(10)
    max_bytes = len(HEADER) + 3 * 10 + len("... and 10 more\n") - 1

    body = alerts.truncate_listing(HEADER, listed, max_bytes)

    assert body == HEADER + "".join(listed[:2]) + "... and 8 more\n"


def test_the_footer_prefix_goes_before_the_footer_and_is_budgeted(alerts: ModuleType) -> None:
    listed = [f"\n- entry {index}\n" for index in range(50)]

    body = alerts.truncate_listing(HEADER, listed, 200, footer_prefix="\n")

    assert len(body.encode("utf-8")) <= 200
    kept = body.count("\n- entry ")
    assert 0 < kept < 50
    assert body.endswith(f"\n\n... and {50 - kept} more\n")


def test_the_budget_counts_utf8_bytes_not_characters(alerts: ModuleType) -> None:
    listed = ["é" * 10 + "\n"] * 10  # 21 bytes, 11 characters each

    body = alerts.truncate_listing("", listed, 100)

    assert len(body.encode("utf-8")) <= 100
    assert body == "".join(listed[:4]) + "... and 6 more\n"


def test_the_listing_stops_at_the_first_entry_that_does_not_fit(alerts: ModuleType) -> None:
    # A short entry after a long one is not listed: the order of the listing is kept
    listed = ["short\n", "x" * 500 + "\n", "tiny\n"]

    body = alerts.truncate_listing("", listed, 100)

    assert body == "short\n... and 2 more\n"


@pytest.mark.parametrize("max_bytes", [0, len(HEADER)])
def test_a_budget_without_room_for_entries_lists_none(alerts: ModuleType, max_bytes: int) -> None:
    body = alerts.truncate_listing(HEADER, entries(2), max_bytes)

    assert body == HEADER + "... and 2 more\n"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("report.csv", '"report.csv"', id="plain"),
        pytest.param("déjà vu/✓ 😀.txt", '"déjà vu/✓ 😀.txt"', id="printable-unicode-kept"),
        pytest.param("invoice\u202efdp.exe", '"invoice\\u202efdp.exe"', id="format-rlo"),
        pytest.param("a\u200bb\u200dc\ufeff", '"a\\u200bb\\u200dc\\ufeff"', id="format-zero-width"),
        pytest.param("a\u2028b\u2029c", '"a\\u2028b\\u2029c"', id="line-and-paragraph-separators"),
        pytest.param("nul\x00del\x7fnel\x85", '"nul\\u0000del\\u007fnel\\u0085"', id="control"),
        pytest.param("tag\U000e0041", '"tag\\udb40\\udc41"', id="beyond-the-bmp-as-a-surrogate-pair"),
        pytest.param("lone\ud800", '"lone\\ud800"', id="lone-surrogate"),
        pytest.param("private\ue000", '"private\\ue000"', id="private-use"),
        pytest.param('quote" back\\slash', '"quote\\" back\\\\slash"', id="json-escapes"),
        pytest.param("hangul\u3164filler", '"hangul\\u3164filler"', id="default-ignorable-letter"),
        pytest.param("a\ufe0fb\u034fc", '"a\\ufe0fb\\u034fc"', id="default-ignorable-marks"),
        pytest.param("vs\U000e0100", '"vs\\udb40\\udd00"', id="default-ignorable-beyond-the-bmp"),
    ],
)
def test_display_text_escapes_every_invisible_character(alerts: ModuleType, text: str, shown: str) -> None:
    displayed = alerts.display_text(text)

    assert displayed == shown
    assert json.loads(displayed) == text
    assert not any(alerts.is_escaped(char) for char in displayed)
    assert all(unicodedata.category(char) not in alerts.ESCAPED_CATEGORIES for char in displayed)
    displayed.encode("utf-8")  # publishable: no lone surrogate left


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        pytest.param("uploads-bucket", "uploads-bucket", id="plain-ascii-as-is"),
        pytest.param("2026-01-15T10:20:30.123Z", "2026-01-15T10:20:30.123Z", id="timestamp-as-is"),
        pytest.param("evil\u202ebucket", '"evil\\u202ebucket"', id="invisible-escaped"),
        pytest.param("new\nline", '"new\\nline"', id="control-escaped"),
        pytest.param("café", '"café"', id="non-ascii-quoted"),
    ],
)
def test_display_name_keeps_plain_names_and_quotes_the_rest(
    alerts: ModuleType, name: str, shown: str
) -> None:
    assert alerts.display_name(name) == shown
