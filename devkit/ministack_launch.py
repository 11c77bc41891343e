"""MiniStack's server, plus a log of every request it denies. Runs in MiniStack's own venv.

Started by ``devkit.ministack`` as ``<.tools/ministack>/bin/python -I devkit/ministack_launch.py``
(``-I``: this repository's modules stay out of MiniStack's way). MiniStack answers a denied request
through ``ministack.core.iam_actions.access_denied_response`` (imported at call time by each caller);
the wrapper below appends one JSON line per denial to ``$MINISTACK_DENIALS_LOG`` and returns the
response unchanged. ``make iam-proof`` reads the file: that is how it knows which request a removed
grant made fail.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from ministack import app  # type: ignore[import-not-found]  # only in MiniStack's venv
from ministack.core import iam_actions  # type: ignore[import-not-found]

_LOCK = threading.Lock()
_ORIGINAL = iam_actions.access_denied_response


def _logged_denial(service: str, action: str, principal_arn: str, request_id: str, **kwargs: Any) -> Any:
    response = _ORIGINAL(service, action, principal_arn, request_id, **kwargs)
    path = os.environ.get("MINISTACK_DENIALS_LOG")
    if path:
        body = response[2] if isinstance(response, tuple) and len(response) == 3 else b""
        record = {
            "time": time.time(),
            "service": service,
            "action": action,
            "principal": principal_arn,
            "resource": kwargs.get("resource_arn", "*"),
            "explicit_deny": bool(kwargs.get("explicit_deny")),
            "error_code": kwargs.get("error_code", ""),
            "message": body.decode("utf-8", errors="replace")[:2000] if isinstance(body, bytes) else "",
        }
        with _LOCK, open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
    return response


iam_actions.access_denied_response = _logged_denial

if __name__ == "__main__":
    app.main()
