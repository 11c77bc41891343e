"""`python -m devkit.iam_proof` (`make iam-proof`): see the package's docstring."""

from __future__ import annotations

import sys

from devkit.iam_proof import main

if __name__ == "__main__":
    sys.exit(main())
