"""Configuration: the function's environment, read and validated once at load.

A setting that cannot be used is a :class:`ConfigurationError` at load, never a guess: a typo in
the declared exemptions must not exempt or hide anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from lambda_common.errors import ConfigurationError
from security_monitor.classify import DEFAULT_EXEMPTION_TAG_KEY, ExemptionRules

MAX_TAG_KEY_CHARS: Final = 128
DEFAULT_SCAN_CONCURRENCY: Final = 16
MAX_SCAN_CONCURRENCY: Final = 64


@dataclass(frozen=True)
class MonitorConfig:
    alert_topic_arn: str
    scan_regions: tuple[str, ...]
    exemption_tag_key: str = DEFAULT_EXEMPTION_TAG_KEY
    scan_concurrency: int = DEFAULT_SCAN_CONCURRENCY
    exemptions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Declared exemptions: bucket or table name -> reason (``security_scan_exemptions``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitorConfig:
        topic = environ.get("ALERT_TOPIC_ARN")
        if not topic:
            raise ConfigurationError("environment variable ALERT_TOPIC_ARN is not set")
        return cls(
            alert_topic_arn=topic,
            scan_regions=parse_regions(environ),
            exemption_tag_key=parse_exemption_tag_key(environ),
            scan_concurrency=parse_scan_concurrency(environ),
            exemptions=parse_scan_exemptions(environ),
        )

    @property
    def exemption_rules(self) -> ExemptionRules:
        return ExemptionRules(declared=self.exemptions, tag_key=self.exemption_tag_key)


def parse_regions(environ: Mapping[str, str]) -> tuple[str, ...]:
    """SCAN_REGIONS (comma-separated, duplicates dropped) or, when empty, the function's own region."""
    regions = dict.fromkeys(part.strip() for part in environ.get("SCAN_REGIONS", "").split(","))
    regions.pop("", None)
    if regions:
        return tuple(regions)
    own_region = environ.get("AWS_REGION")
    if not own_region:
        raise ConfigurationError("SCAN_REGIONS is empty and AWS_REGION is not set")
    return (own_region,)


def parse_scan_concurrency(environ: Mapping[str, str]) -> int:
    """SCAN_CONCURRENCY: how many checks run at once, 1 to 64; 16 when unset or empty."""
    text = environ.get("SCAN_CONCURRENCY", "").strip()
    if not text:
        return DEFAULT_SCAN_CONCURRENCY
    if not text.isdecimal() or not 1 <= int(text) <= MAX_SCAN_CONCURRENCY:
        raise ConfigurationError(
            f"SCAN_CONCURRENCY must be a whole number from 1 to {MAX_SCAN_CONCURRENCY}, got {text!r}"
        )
    return int(text)


def parse_exemption_tag_key(environ: Mapping[str, str]) -> str:
    """EXEMPTION_TAG_KEY: the tag reported on undeclared resources (it exempts nothing);
    SecurityScanExemption when unset or empty."""
    key = environ.get("EXEMPTION_TAG_KEY", "").strip() or DEFAULT_EXEMPTION_TAG_KEY
    if len(key) > MAX_TAG_KEY_CHARS:
        raise ConfigurationError(f"EXEMPTION_TAG_KEY is {len(key)} characters; a tag key has at most 128")
    return key


def parse_scan_exemptions(environ: Mapping[str, str]) -> Mapping[str, str]:
    """SECURITY_SCAN_EXEMPTIONS: a JSON object, bucket or table name -> the reason it is exempted;
    none when unset or empty. Anything else (not JSON, not an object, an empty name, a reason that
    is not a string or is blank) is a :class:`ConfigurationError`: a typo must not exempt or hide."""
    text = environ.get("SECURITY_SCAN_EXEMPTIONS", "").strip()
    if not text:
        return MappingProxyType({})
    try:
        declared = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigurationError(f"SECURITY_SCAN_EXEMPTIONS is not valid JSON: {err}") from err
    if not isinstance(declared, dict):
        raise ConfigurationError(
            f"SECURITY_SCAN_EXEMPTIONS must be a JSON object of name -> reason, got {type(declared).__name__}"
        )
    for name, reason in declared.items():
        if not name.strip():
            raise ConfigurationError("SECURITY_SCAN_EXEMPTIONS has an empty resource name")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError(
                f"SECURITY_SCAN_EXEMPTIONS: the reason for {name!r} must be a non-empty string, got {reason!r}"
            )
    return MappingProxyType(dict(declared))
