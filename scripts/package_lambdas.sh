#!/usr/bin/env bash
# Package every Lambda function of functions.json into reproducible zips under dist/.
# Uses the project venv's Python (created by `make venv`) unless PYTHON is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
  echo "package_lambdas: $PYTHON not found; run 'make venv' first (or set PYTHON)" >&2
  exit 1
fi
exec "$PYTHON" -m devkit.packaging "$@"
