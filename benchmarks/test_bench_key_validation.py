"""Key validation: ``decode_s3_key`` + ``validate_key``, the per-key work both handlers do.

Each call decodes and validates a batch of 100 distinct keys as S3 notifications deliver them
(form-URL-encoded); the per-key cost is listed at the end of the run. Every call's result is
checked against the keys it was built from, so a validator that accepts or rejects the wrong keys
cannot produce a number.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import pytest

BATCH = 100
MAX_KEY_BYTES = 1024


def encoded(key: str) -> str:
    """The key as an S3 event notification carries it."""
    return quote_plus(key, safe="/")


def short_ascii_keys(count: int) -> list[str]:
    return [f"incoming/2026/01/{index % 28 + 1:02d}/report-{index:05d}.csv" for index in range(count)]


def unicode_keys(count: int) -> list[str]:
    templates = (
        "eingang/Müller & Söhne/Qualitätsbericht {index:03d}.csv",
        "incoming/déjà vu/✓ résumé {index}.txt",
        "アップロード/報告書_{index:04d}.csv",
        "inbox/2026 photos/😀 party {index}.jpg",
    )
    return [templates[index % len(templates)].format(index=index) for index in range(count)]


def max_length_keys(count: int, *, multibyte: bool) -> list[str]:
    """Keys of exactly 1024 UTF-8 bytes, ASCII or mostly two-byte characters (3 KB once encoded)."""
    keys = []
    for index in range(count):
        prefix = f"archive/{index:04d}/"
        room = MAX_KEY_BYTES - len(prefix)
        keys.append(prefix + ("é" * (room // 2) + "a" * (room % 2) if multibyte else "a" * room))
    return keys


def mixed_max_length_keys(count: int) -> list[str]:
    ascii_keys = max_length_keys(count, multibyte=False)
    multibyte_keys = max_length_keys(count, multibyte=True)
    return [(ascii_keys if index % 2 == 0 else multibyte_keys)[index] for index in range(count)]


# (raw key as S3 sends it) templates that the validator must reject, one per rule.
REJECTED_TEMPLATES = (
    "incoming/{index}/%2E%2E/etc/passwd",  # '..' segment
    "incoming/{index}/%252E%252E/x.csv",  # '..' once decoded again
    "incoming/report-{index}%0A.csv",  # control character
    "incoming/invoice-{index}%E2%80%AEfdp.exe",  # format character (U+202E)
    "incoming/line-{index}%E2%80%A8.csv",  # line separator (U+2028)
    "incoming%5Creport-{index}.csv",  # backslash
    "%2Fabsolute/report-{index}.csv",  # leading '/'
    "incoming/bad-utf8-{index}-%FF%FE.csv",  # not UTF-8 once percent-decoded
    "incoming/{index:04d}/" + "x" * MAX_KEY_BYTES,  # 1025+ bytes
    "incoming/{index}/.",  # '.' segment
)


def rejected_raw_keys(count: int) -> list[str]:
    return [REJECTED_TEMPLATES[index % len(REJECTED_TEMPLATES)].format(index=index) for index in range(count)]


def batch(kind: str) -> list[tuple[str, str | None]]:
    """``BATCH`` pairs (raw key, expected decoded key or None when it must be rejected)."""
    accepted: dict[str, Callable[[int], list[str]]] = {
        "short-ascii": short_ascii_keys,
        "encoded-unicode": unicode_keys,
        "1024-bytes-ascii": lambda count: max_length_keys(count, multibyte=False),
        "1024-bytes-2-byte-utf8": lambda count: max_length_keys(count, multibyte=True),
    }
    if kind in accepted:
        return [(encoded(key), key) for key in accepted[kind](BATCH)]
    if kind == "rejected":
        return [(raw, None) for raw in rejected_raw_keys(BATCH)]
    # A realistic upload mix: mostly short ASCII, some non-ASCII names, a few huge keys and rejects.
    assert kind == "mix"
    return (
        [(encoded(key), key) for key in short_ascii_keys(70)]
        + [(encoded(key), key) for key in unicode_keys(20)]
        + [(encoded(key), key) for key in mixed_max_length_keys(5)]
        + [(raw, None) for raw in rejected_raw_keys(5)]
    )


def make_validate_all(key_validation: ModuleType) -> Callable[[list[str]], tuple[list[str], int]]:
    decode_s3_key = key_validation.decode_s3_key
    validate_key = key_validation.validate_key
    invalid_key_error = key_validation.InvalidKeyError

    def validate_all(raw_keys: list[str]) -> tuple[list[str], int]:
        accepted: list[str] = []
        rejected = 0
        for raw in raw_keys:
            try:
                accepted.append(validate_key(decode_s3_key(raw)))
            except invalid_key_error:
                rejected += 1
        return accepted, rejected

    return validate_all


@pytest.mark.parametrize(
    "kind",
    ["short-ascii", "encoded-unicode", "1024-bytes-ascii", "1024-bytes-2-byte-utf8", "rejected", "mix"],
)
def test_decode_and_validate(
    benchmark: Any, per_unit: Callable[[int, str], None], key_validation: ModuleType, kind: str
) -> None:
    benchmark.group = f"key validation: decode_s3_key + validate_key, {BATCH} keys per call"
    pairs = batch(kind)
    assert len(pairs) == BATCH
    assert len({raw for raw, _ in pairs}) == BATCH, "keys of a batch must be distinct"
    raw_keys = [raw for raw, _ in pairs]
    expected_accepted = [key for _, key in pairs if key is not None]

    accepted, rejected = benchmark(make_validate_all(key_validation), raw_keys)

    assert accepted == expected_accepted
    assert rejected == BATCH - len(expected_accepted)
    if kind.startswith("1024-bytes"):
        assert all(len(key.encode("utf-8")) == MAX_KEY_BYTES for key in accepted)
    per_unit(BATCH, "key")
