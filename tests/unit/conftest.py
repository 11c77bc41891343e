"""Unit tests run against fake credentials only; moto (in-process) stands in for AWS."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fake_aws_credentials(aws_credentials: None) -> None:
    """Fake credentials first, for every unit test, before any client exists."""
