"""The shared key validator: every rule, accepted and rejected, and the S3 key decoding."""

from __future__ import annotations

import unicodedata
from types import ModuleType

import pytest

ACCEPTED_KEYS = [
    pytest.param("report.csv", id="plain"),
    pytest.param("incoming/2026/01/report.csv", id="nested"),
    pytest.param("my file+v2.csv", id="space-and-plus"),
    pytest.param("déjà vu/✓.txt", id="unicode"),
    pytest.param("😀 emoji.txt", id="four-byte-utf8"),
    pytest.param("a..b/c.d", id="dots-inside-a-segment"),
    pytest.param("...", id="three-dots"),
    pytest.param(".hidden/.env", id="leading-dot-names"),
    pytest.param("dir/%2E%2Ex", id="encoded-dots-plus-text"),
    pytest.param("100%/50%", id="lone-percent"),
    pytest.param("folder/", id="folder-marker"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("x" * 1024, id="1024-ascii-bytes"),
    pytest.param("é" * 512, id="1024-utf8-bytes"),
    pytest.param("no\u00a0break space.csv", id="no-break-space"),
    pytest.param("مرحبا/שלום.txt", id="right-to-left-scripts"),
]

REJECTED_KEYS = [
    pytest.param("", "key is empty", id="empty"),
    pytest.param("x" * 1025, "1025 bytes in UTF-8; the maximum is 1024", id="1025-ascii-bytes"),
    pytest.param("é" * 513, "1026 bytes in UTF-8", id="1026-utf8-bytes"),
    pytest.param("a\x00b", "control character U+0000 at position 1", id="nul"),
    pytest.param("line\nbreak", "control character U+000A", id="newline"),
    pytest.param("tab\there", "control character U+0009", id="tab"),
    pytest.param("del\x7f", "control character U+007F", id="del"),
    pytest.param("nel\x85", "control character U+0085", id="c1-control"),
    pytest.param("dir\\file", "backslash", id="backslash"),
    pytest.param("/etc/passwd", "starts with '/'", id="leading-slash"),
    pytest.param(".", "'.' path segment", id="dot"),
    pytest.param("..", "'..' path segment", id="dot-dot"),
    pytest.param("a/../b", "'..' path segment", id="dot-dot-inside"),
    pytest.param("a/./b", "'.' path segment", id="dot-inside"),
    pytest.param("a/..", "'..' path segment", id="dot-dot-last"),
    pytest.param("%2E%2E/x", "becomes a dot segment when percent-decoded again", id="encoded-dot-dot"),
    pytest.param("a/%2e%2e/b", "becomes a dot segment", id="encoded-dot-dot-lowercase"),
    pytest.param("%2e./x", "becomes a dot segment", id="half-encoded-dot-dot"),
    pytest.param("x/.%2E", "becomes a dot segment", id="other-half-encoded"),
    pytest.param("x/%2E", "becomes a dot segment", id="encoded-dot"),
    pytest.param("bad\ud800surrogate", "unpaired surrogate at position 3", id="lone-surrogate"),
    pytest.param(
        "invoice\u202efdp.exe",
        "key contains format character U+202E (RIGHT-TO-LEFT OVERRIDE) at position 7",
        id="right-to-left-override",
    ),
    pytest.param(
        "a\u200bb", "format character U+200B (ZERO WIDTH SPACE) at position 1", id="zero-width-space"
    ),
    pytest.param(
        "a\u200db", "format character U+200D (ZERO WIDTH JOINER) at position 1", id="zero-width-joiner"
    ),
    pytest.param(
        "\ufeffreport.csv", "format character U+FEFF (ZERO WIDTH NO-BREAK SPACE) at position 0", id="bom"
    ),
    pytest.param("x\u2066y", "format character U+2066 (LEFT-TO-RIGHT ISOLATE)", id="bidi-isolate"),
    pytest.param("x\U000e0041", "format character U+E0041 (TAG LATIN CAPITAL LETTER A)", id="tag-character"),
    pytest.param("a\u2028b", "key contains line separator U+2028 (LINE SEPARATOR) at position 1", id="zl"),
    pytest.param(
        "a\u2029b", "key contains paragraph separator U+2029 (PARAGRAPH SEPARATOR) at position 1", id="zp"
    ),
]


@pytest.mark.parametrize("key", ACCEPTED_KEYS)
def test_accepts_ordinary_keys(key_validation: ModuleType, key: str) -> None:
    assert key_validation.validate_key(key) == key


@pytest.mark.parametrize(("key", "reason_part"), REJECTED_KEYS)
def test_rejects_unsafe_keys_with_a_reason(key_validation: ModuleType, key: str, reason_part: str) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(key)

    assert reason_part in caught.value.reason
    assert caught.value.key == key
    assert isinstance(caught.value, ValueError)


def test_rejects_a_non_string(key_validation: ModuleType) -> None:
    with pytest.raises(key_validation.InvalidKeyError, match="key must be a string, got int"):
        key_validation.validate_key(42)


def test_error_message_names_the_key_and_the_reason(key_validation: ModuleType) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key("a/../b")

    assert str(caught.value) == "rejected S3 object key 'a/../b': key contains a '..' path segment"


def test_error_message_shortens_a_huge_key_but_keeps_it_whole_in_the_attribute(
    key_validation: ModuleType,
) -> None:
    key = "k" * 2000
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(key)

    assert len(str(caught.value)) < 400
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        pytest.param("report.csv", "report.csv", id="unencoded"),
        pytest.param("my+file%2Bv2.csv", "my file+v2.csv", id="plus-is-space-and-encoded-plus"),
        pytest.param("d%C3%A9j%C3%A0+vu%2F%E2%9C%93.txt", "déjà vu/✓.txt", id="unicode"),
        pytest.param("a%2520b", "a%20b", id="decoded-exactly-once"),
    ],
)
def test_decodes_keys_as_s3_notifications_encode_them(
    key_validation: ModuleType, raw: str, decoded: str
) -> None:
    assert key_validation.decode_s3_key(raw) == decoded


@pytest.mark.parametrize("raw", ["%FF.csv", "trunc%C3", "%C3%28"])
def test_rejects_keys_that_are_not_utf8_once_decoded(key_validation: ModuleType, raw: str) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.decode_s3_key(raw)

    assert caught.value.reason.startswith("key is not valid UTF-8")
    assert caught.value.key == raw


@pytest.mark.parametrize(
    ("category", "examples"),
    [
        pytest.param("Cc", ["\x00", "\x1f", "\x7f", "\x9f"], id="control"),
        pytest.param(
            "Cf", ["\u00ad", "\u061c", "\u200b", "\u200e", "\u202a", "\u2060", "\ufeff"], id="format"
        ),
        pytest.param("Zl", ["\u2028"], id="line-separator"),
        pytest.param("Zp", ["\u2029"], id="paragraph-separator"),
    ],
)
def test_every_character_of_a_rejected_category_is_rejected(
    key_validation: ModuleType, category: str, examples: list[str]
) -> None:
    kind = key_validation.REJECTED_CATEGORIES[category]
    for char in examples:
        assert unicodedata.category(char) == category
        with pytest.raises(key_validation.InvalidKeyError) as caught:
            key_validation.validate_key(f"dir/{char}name.csv")
        assert caught.value.reason.startswith(f"key contains {kind} U+{ord(char):04X}")
        assert caught.value.reason.endswith("at position 4")


def test_the_error_message_shows_an_invisible_character_escaped(key_validation: ModuleType) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key("invoice\u202efdp.exe")

    assert "\u202e" not in str(caught.value)
    assert str(caught.value).startswith("rejected S3 object key 'invoice\\u202efdp.exe': ")


@pytest.mark.parametrize(
    ("key", "size", "expected"),
    [
        pytest.param("reports/", 0, True, id="zero-byte-key-ending-in-slash"),
        pytest.param("a/b/c/", 0, True, id="nested-folder"),
        pytest.param("reports/", 2, False, id="slash-key-with-data"),
        pytest.param("reports/", None, False, id="size-not-stated"),
        pytest.param("reports", 0, False, id="empty-file-without-slash"),
        pytest.param("reports/x.csv", 0, False, id="empty-file-in-a-folder"),
    ],
)
def test_a_folder_marker_is_a_zero_byte_key_ending_in_a_slash(
    key_validation: ModuleType, key: str, size: int | None, expected: bool
) -> None:
    """The one rule the trigger ignores and the reconcile tool never re-drives."""
    assert key_validation.is_folder_marker(key, size) is expected
