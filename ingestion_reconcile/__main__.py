"""``python -m ingestion_reconcile``: the same command as ``.venv/bin/ingestion-reconcile``."""

import sys

from ingestion_reconcile.cli import main

sys.exit(main(prog="python -m ingestion_reconcile"))
