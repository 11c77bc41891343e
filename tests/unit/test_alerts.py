"""The shared alert formatting: listings cut to fit one SNS message, with a '... and N more' footer."""

from __future__ import annotations

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
