"""The generated provider override is what `terraform fmt` would write, for every provider source.

`make lint` runs `terraform fmt -check -recursive .`, which also reaches the overrides that local
deploys leave in build/tf/ and in the repository root; an unformatted one failed the next run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devkit import overrides, toolchain


@pytest.mark.parametrize("version", ["5.100.0", "registry"])
@pytest.mark.parametrize("ca_bundle", [None, Path("/tmp/ministack-ca.pem")], ids=["http", "tls"])
def test_the_override_is_terraform_fmt_clean(version: str, ca_bundle: Path | None, tmp_path: Path) -> None:
    override = tmp_path / overrides.OVERRIDE_FILE
    override.write_text(overrides.provider_block("https://127.0.0.1:4566", version, ca_bundle))

    checked = subprocess.run(
        [str(toolchain.terraform_executable()), "fmt", "-check", "-diff", str(override)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "max_retries" in override.read_text()
