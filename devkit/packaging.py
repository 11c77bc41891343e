"""Build reproducible Lambda zips: identical sources give identical bytes.

Each ``dist/<folder>.zip`` (the functions: functions.json, devkit/functions.py) holds the function
folder's files at its root (``index.py``), each of its shared packages whole (``lambda_common/``, so
``from lambda_common.<module> import`` works in the zip as in the repository) and the pinned runtime libraries of
``requirements-lambda.txt`` (Powertools), with sorted entries, a fixed timestamp and fixed
permissions, so that ``source_code_hash`` and therefore ``terraform plan`` only change when the
code does. boto3 comes from the Lambda runtime.

Usage: python -m devkit.packaging [--dist DIR] [function ...]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from devkit.functions import FUNCTIONS, Function

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-lambda.txt"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
EXCLUDED_DIRS = {"__pycache__", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


class PackagingError(RuntimeError):
    """A zip could not be built; the message says why."""


def _files(base: Path) -> dict[str, Path]:
    """Relative POSIX name -> path of every file under base, minus caches."""
    found: dict[str, Path] = {}
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if path.is_dir() or set(rel.parts) & EXCLUDED_DIRS or path.suffix in EXCLUDED_SUFFIXES:
            continue
        found[rel.as_posix()] = path
    return found


def vendor_dir(build_dir: Path) -> Path:
    """The runtime libraries, installed once per content of requirements-lambda.txt."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    target = build_dir / "vendor" / digest
    marker = target / ".complete"
    if marker.is_file():
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            "--requirement",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PackagingError(f"pip could not install {REQUIREMENTS.name}:\n{result.stderr}")
    marker.write_text(digest)
    return target


def _runtime_file(name: str) -> bool:
    """Library files a function needs at run time.

    Console scripts (``bin/``) carry the installing interpreter's path in their shebang, and the
    installer's bookkeeping (``RECORD`` hashes those scripts) would make the zip depend on where
    the repository is checked out; neither is imported by a function.
    """
    parts = name.split("/")
    if parts[0] in {"bin", ".complete"}:
        return False
    return not (
        parts[0].endswith(".dist-info")
        and parts[-1] in {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    )


def contents(function: Function, vendor: Path) -> dict[str, Path]:
    """Every entry of the function's zip: libraries first, then code (code wins on a clash)."""
    entries = {name: path for name, path in _files(vendor).items() if _runtime_file(name)}
    for package in function.shared_packages:
        shared = ROOT / package
        if not (shared / "__init__.py").is_file():
            raise PackagingError(f"{shared}/__init__.py is missing: {package} must be a package")
        entries.update({f"{package}/{name}": path for name, path in _files(shared).items()})
    source = ROOT / function.folder
    if not (source / "index.py").is_file():
        raise PackagingError(f"{source}/index.py is missing")
    entries.update(_files(source))
    return entries


def write_zip(entries: dict[str, Path], destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o100644 << 16  # regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode above is honoured
            archive.writestr(info, entries[name].read_bytes())
    partial.replace(destination)


def build(names: list[str] | None, dist: Path, build_dir: Path) -> list[Path]:
    wanted = [f for f in FUNCTIONS if not names or f.folder in names]
    unknown = set(names or ()) - {f.folder for f in FUNCTIONS}
    if unknown:
        raise PackagingError(f"unknown function(s): {', '.join(sorted(unknown))}")
    vendor = vendor_dir(build_dir)
    built = []
    for function in wanted:
        destination = dist / function.zip_name
        write_zip(contents(function, vendor), destination)
        built.append(destination)
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.packaging", description=__doc__.split("\n\n")[0])
    parser.add_argument("functions", nargs="*", help="function folders to package (default: all)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build")
    args = parser.parse_args(argv)
    try:
        for path in build(args.functions, args.dist, args.build_dir):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  sha256={digest}")
    except PackagingError as error:
        print(f"package: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
