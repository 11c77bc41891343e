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
    pytest.param("Müller & Söhne/Qualitätsbericht.csv", id="precomposed-accents"),
    pytest.param("re\u0301sume\u0301.txt", id="combining-acute-accent"),
    pytest.param("हिन्दी/ภาษาไทย.txt", id="combining-marks-devanagari-thai"),
    pytest.param("שָׁלוֹם.txt", id="hebrew-points"),
    pytest.param("アップロード/報告書_0001.csv", id="cjk"),
    pytest.param("보고서.csv", id="hangul-syllables"),
    pytest.param("👍🏽 🇩🇪.jpg", id="emoji-skin-tone-and-flag"),
    pytest.param("my report.csv", id="interior-space"),
    pytest.param("報告\u3000書.csv", id="interior-ideographic-space"),
    pytest.param(" report.csv ", id="spaces-around-text"),
    pytest.param("dir/ /x.csv", id="space-only-segment"),
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
        pytest.param("Co", ["\ue000", "\uf8ff", "\U000f0000", "\U0010fffd"], id="private-use"),
        pytest.param("Cn", ["\u0378", "\ufffe", "\U0001fffe", "\U0010ffff"], id="unassigned"),
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
        assert "at position 4" in caught.value.reason


def test_the_error_message_shows_an_invisible_character_escaped(key_validation: ModuleType) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key("invoice\u202efdp.exe")

    assert "\u202e" not in str(caught.value)
    assert str(caught.value).startswith("rejected S3 object key 'invoice\\u202efdp.exe': ")


# --- whitespace-only keys ------------------------------------------------------------------------

# Unicode's White_Space property (PropList.txt; unchanged since Unicode 6.3, when U+180E left it).
WHITE_SPACE = [
    *map(chr, range(0x0009, 0x000E)),
    "\u0020",
    "\u0085",
    "\u00a0",
    "\u1680",
    *map(chr, range(0x2000, 0x200B)),
    "\u2028",
    "\u2029",
    "\u202f",
    "\u205f",
    "\u3000",
]


@pytest.mark.parametrize(
    ("key", "spaces"),
    [
        pytest.param(" ", "U+0020 (SPACE)", id="one-space"),
        pytest.param("     ", "U+0020 (SPACE)", id="several-spaces"),
        pytest.param("\u00a0", "U+00A0 (NO-BREAK SPACE)", id="no-break-space-alone"),
        pytest.param("\u3000", "U+3000 (IDEOGRAPHIC SPACE)", id="ideographic-space"),
        pytest.param("\u1680", "U+1680 (OGHAM SPACE MARK)", id="ogham-space-mark"),
        pytest.param("\u2007\u2007", "U+2007 (FIGURE SPACE)", id="figure-spaces"),
        pytest.param("\u202f", "U+202F (NARROW NO-BREAK SPACE)", id="narrow-no-break-space"),
        pytest.param("\u205f", "U+205F (MEDIUM MATHEMATICAL SPACE)", id="medium-mathematical-space"),
        pytest.param(
            " \u3000 \u00a0",
            "U+0020 (SPACE), U+3000 (IDEOGRAPHIC SPACE), U+00A0 (NO-BREAK SPACE)",
            id="mixed",
        ),
    ],
)
def test_rejects_a_key_that_is_only_whitespace(key_validation: ModuleType, key: str, spaces: str) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(key)

    assert caught.value.reason == f"key is blank: it is only whitespace ({spaces})"


@pytest.mark.parametrize("char", WHITE_SPACE, ids=lambda char: f"U+{ord(char):04X}")
def test_every_white_space_character_alone_is_rejected(key_validation: ModuleType, char: str) -> None:
    """A space separator (Zs) as ``blank``; the others (tab, newline, U+2028...) by category first."""
    assert char.isspace()
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(char * 3)

    category = unicodedata.category(char)
    if category == "Zs":
        assert caught.value.reason.startswith("key is blank: it is only whitespace (U+")
    else:
        kind = key_validation.REJECTED_CATEGORIES[category]
        assert caught.value.reason.startswith(f"key contains {kind} U+{ord(char):04X}")


@pytest.mark.parametrize(
    ("char", "reason"),
    [
        pytest.param("\ufeff", "format character U+FEFF (ZERO WIDTH NO-BREAK SPACE)", id="bom"),
        pytest.param("\u200b", "format character U+200B (ZERO WIDTH SPACE)", id="zero-width-space"),
        pytest.param(
            "\u180e", "format character U+180E (MONGOLIAN VOWEL SEPARATOR)", id="former-white-space"
        ),
        pytest.param("\u3164", "invisible (default-ignorable) character U+3164 (HANGUL FILLER)", id="filler"),
    ],
)
def test_invisible_characters_that_are_not_white_space_are_rejected_anywhere(
    key_validation: ModuleType, char: str, reason: str
) -> None:
    """Not Unicode White_Space, so not trimmed as a space: refused alone and inside text alike."""
    assert not char.isspace()
    for key, position in ((char, 0), (f"a {char} b.csv", 2)):
        with pytest.raises(key_validation.InvalidKeyError) as caught:
            key_validation.validate_key(key)
        assert caught.value.reason == f"key contains {reason} at position {position}"


# --- default-ignorable code points ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "described", "position"),
    [
        pytest.param("a\u034fb", "U+034F (COMBINING GRAPHEME JOINER)", 1, id="grapheme-joiner"),
        pytest.param("\u115f", "U+115F (HANGUL CHOSEONG FILLER)", 0, id="choseong-filler"),
        pytest.param("\u1160", "U+1160 (HANGUL JUNGSEONG FILLER)", 0, id="jungseong-filler"),
        pytest.param("\u3164", "U+3164 (HANGUL FILLER)", 0, id="hangul-filler"),
        pytest.param("\uffa0.csv", "U+FFA0 (HALFWIDTH HANGUL FILLER)", 0, id="halfwidth-hangul-filler"),
        pytest.param("x\u17b4", "U+17B4 (KHMER VOWEL INHERENT AQ)", 1, id="khmer-inherent-vowel"),
        pytest.param("x\u180b", "U+180B (MONGOLIAN FREE VARIATION SELECTOR ONE)", 1, id="mongolian-fvs"),
        pytest.param("x\u180f", "U+180F (MONGOLIAN FREE VARIATION SELECTOR FOUR)", 1, id="mongolian-fvs4"),
        pytest.param("x\ufe00", "U+FE00 (VARIATION SELECTOR-1)", 1, id="variation-selector-1"),
        pytest.param("\u2764\ufe0f.txt", "U+FE0F (VARIATION SELECTOR-16)", 1, id="emoji-presentation"),
        pytest.param("x\U000e0100", "U+E0100 (VARIATION SELECTOR-17)", 1, id="variation-selector-17"),
        pytest.param("x\U000e01ef", "U+E01EF (VARIATION SELECTOR-256)", 1, id="variation-selector-256"),
    ],
)
def test_rejects_invisible_default_ignorable_letters_and_marks(
    key_validation: ModuleType, key: str, described: str, position: int
) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(key)

    assert caught.value.reason == (
        f"key contains invisible (default-ignorable) character {described} at position {position}"
    )


def test_the_default_ignorable_table_is_unicodes(key_validation: ModuleType) -> None:
    """DerivedCoreProperties.txt: ``# Total code points: 4174`` (Unicode 15.1 and 18.0)."""
    ranges = key_validation.DEFAULT_IGNORABLE_RANGES

    assert sum(last - first + 1 for first, last in ranges) == 4174
    bounds = [bound for pair in ranges for bound in pair]
    assert bounds == sorted(bounds)
    assert all(first <= last for first, last in ranges)


def test_every_default_ignorable_code_point_is_rejected(key_validation: ModuleType) -> None:
    """Format and unassigned ones by category (which runs first), the rest as default-ignorable."""
    kinds = {"Cf": "format character", "Cn": "unassigned code point"}
    for first, last in key_validation.DEFAULT_IGNORABLE_RANGES:
        for code_point in range(first, last + 1):
            char = chr(code_point)
            kind = kinds.get(unicodedata.category(char), "invisible (default-ignorable) character")
            with pytest.raises(key_validation.InvalidKeyError) as caught:
                key_validation.validate_key(f"dir/{char}name.csv")
            assert caught.value.reason.startswith(f"key contains {kind} U+{code_point:04X}")
            assert "at position 4" in caught.value.reason


# --- private-use and unassigned code points ------------------------------------------------------


@pytest.mark.parametrize(
    "char", ["\ue000", "\uf8ff", "\U000f0000", "\U000ffffd", "\U00100000", "\U0010fffd"], ids=ascii
)
def test_rejects_private_use_characters(key_validation: ModuleType, char: str) -> None:
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(f"icons/{char}.png")

    assert caught.value.reason == f"key contains private-use character U+{ord(char):04X} at position 6"


@pytest.mark.parametrize(
    "char",
    [
        pytest.param("\u0378", id="reserved-greek"),
        pytest.param("\ufdd0", id="noncharacter-fdd0"),
        pytest.param("\uffff", id="noncharacter-ffff"),
        pytest.param("\U0010ffff", id="last-code-point"),
        pytest.param("\u2065", id="reserved-default-ignorable"),
        pytest.param("\U000e0000", id="reserved-tag-block"),
    ],
)
def test_rejects_unassigned_code_points_naming_the_unicode_version(
    key_validation: ModuleType, char: str
) -> None:
    assert unicodedata.category(char) == "Cn"
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(f"x{char}")

    assert caught.value.reason == (
        f"key contains unassigned code point U+{ord(char):04X} at position 1"
        f" (as of Unicode {unicodedata.unidata_version})"
    )
    assert unicodedata.unidata_version == key_validation.UNICODE_VERSION


# --- which reason wins ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param("\u3164\t", "control character U+0009 at position 1", id="category-before-ignorable"),
        pytest.param("\ue000\u3164", "private-use character U+E000 at position 0", id="first-by-position"),
        pytest.param(
            " \u034f ", "invisible (default-ignorable) character U+034F", id="ignorable-before-blank"
        ),
        pytest.param("\u3164/../x", "invisible (default-ignorable)", id="ignorable-before-dot-segment"),
        pytest.param("\ue000\\x", "private-use character", id="private-use-before-backslash"),
        pytest.param(" \t ", "control character U+0009 at position 1", id="tab-is-a-control-not-blank"),
        pytest.param(" /..", "'..' path segment", id="not-blank-when-anything-else"),
    ],
)
def test_a_key_breaking_several_rules_gets_the_first_ones_reason(
    key_validation: ModuleType, key: str, reason: str
) -> None:
    """Categories, then default-ignorable, then blank, then the path rules, as before."""
    with pytest.raises(key_validation.InvalidKeyError) as caught:
        key_validation.validate_key(key)

    assert reason in caught.value.reason


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
