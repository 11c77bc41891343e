"""List calls that page like AWS where moto 5.2.5 does not.

Measured against every list call the handlers, the demo, the tests and the provider make
(``tests/emulator/test_paging.py`` pages each one with more items than a page):

* **ListBuckets** with ``MaxBuckets`` returned that many buckets and no ``ContinuationToken``, so a
  paginating client (the security monitor) silently saw only the first page. Here: buckets in name
  order (as S3 lists them), at most ``MaxBuckets`` per page, a ``ContinuationToken`` while more
  remain, ``BucketRegion`` per bucket and ``Prefix`` echoed, as S3 answers a parameterized call.
* **KMS ListAliases** ignored ``Limit``/``Marker`` (one page of everything), and listed the
  AWS-managed aliases (``alias/aws/s3``...) with made-up ``TargetKeyId`` values. Here: pages of
  ``Limit`` (default 50, AWS's) with ``NextMarker``/``Truncated``, aliases in name order, and an
  AWS-managed alias carries a ``TargetKeyId`` only once its key exists (AWS creates the key on
  first use; before that, ListAliases shows the alias without a target).

* **GetExecutionHistory** ignored ``maxResults``/``nextToken``/``reverseOrder`` (every event in one
  answer). Here: pages of ``maxResults`` (default 100, AWS's) with ``nextToken``, newest first on
  ``reverseOrder``.

ListTables, ListExecutions, ListObjectsV2 (``MaxKeys``/``ContinuationToken``), DynamoDB
ListTagsOfResource (10 tags a page, ``NextToken``: the monitor reads a table's tags this way) and Scan
page correctly in moto; ListObjectVersions pages, and its markers are URL-encoded by
:mod:`emulator.s3_listing`. All of them are covered by the tests.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from emulator.patch import Patch

DEFAULT_ALIAS_LIMIT = 50
DEFAULT_HISTORY_LIMIT = 100


class InvalidTokenError(ValueError):
    """A continuation token or marker this emulator did not issue."""


def encode_token(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidTokenError(f"invalid token {token!r}") from exc


def page_after(names: list[str], after: str | None, limit: int) -> tuple[list[str], str | None]:
    """Names (sorted) after ``after``, at most ``limit``; and the last one returned if more remain."""
    remaining = [name for name in sorted(names) if after is None or name > after]
    page = remaining[:limit]
    return page, (page[-1] if len(remaining) > limit else None)


def _int_param(value: Any, default: int, low: int, high: int) -> int:
    try:
        number = int(value) if value is not None else default
    except (TypeError, ValueError):
        number = default
    return min(max(number, low), high)


def _all_buckets(_original: Any) -> Any:
    def all_buckets(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.s3.exceptions import S3ClientError

        self.data["Action"] = "ListAllMyBuckets"
        self._authenticate_and_authorize_s3_action()
        prefix = self._get_param("prefix")
        region = self._get_param("bucket-region")
        max_buckets = self._get_param("max-buckets")
        token = self._get_param("continuation-token")
        buckets = {
            name: bucket
            for name, bucket in self.backend.buckets.items()
            if (not prefix or name.startswith(prefix)) and (not region or bucket.region_name == region)
        }
        paged = max_buckets is not None or token is not None
        limit = _int_param(max_buckets, 10000, 1, 10000) if paged else len(buckets) or 1
        try:
            after = decode_token(token) if token else None
        except InvalidTokenError as exc:
            raise S3ClientError("InvalidArgument", str(exc)) from exc
        names, last = page_after(list(buckets), after, limit)
        listed = [
            {"Name": name, "CreationDate": buckets[name].creation_date_ISO8601}
            | ({"BucketRegion": buckets[name].region_name} if paged else {})
            for name in names
        ]
        result: dict[str, Any] = {
            "Owner": {"ID": "bcaf1ffd86f41161ca5fb16fd081034f", "DisplayName": "webfile"},
            "Buckets": listed,
        }
        if last is not None:
            result["ContinuationToken"] = encode_token(last)
        if prefix:
            result["Prefix"] = prefix
        self.data["Action"] = "ListBuckets"
        return self.serialized(ActionResult(result))

    return all_buckets


def _alias_entries(backend: Any, region: str, account_id: str, key_id: str | None) -> dict[str, dict]:
    from moto.kms.utils import RESERVED_ALIASES
    from moto.utilities.utils import get_partition

    entries: dict[str, dict] = {}
    for alias in backend.list_aliases(key_id=key_id):
        entries[alias.alias_name] = {
            "AliasArn": alias.alias_arn,
            "AliasName": alias.alias_name,
            "TargetKeyId": alias.target_key_id,
        }
    if key_id is None:
        for name in RESERVED_ALIASES:
            entries.setdefault(
                name,
                {
                    "AliasArn": f"arn:{get_partition(region)}:kms:{region}:{account_id}:{name}",
                    "AliasName": name,
                },
            )
    return entries


def _list_aliases(_original: Any) -> Any:
    def list_aliases(self: Any) -> str:
        from moto.kms.exceptions import ValidationException

        key_id = self._get_param("KeyId")
        if key_id is not None:
            self._validate_key_id(key_id)
            key_id = self.kms_backend.get_key_id(key_id)
        limit = _int_param(self._get_param("Limit"), DEFAULT_ALIAS_LIMIT, 1, 100)
        marker = self._get_param("Marker")
        entries = _alias_entries(self.kms_backend, self.region, self.current_account, key_id)
        try:
            after = decode_token(marker) if marker else None
        except InvalidTokenError as exc:
            raise ValidationException(str(exc)) from exc
        names, last = page_after(list(entries), after, limit)
        response: dict[str, Any] = {
            "Aliases": [entries[name] for name in names],
            "Truncated": last is not None,
        }
        if last is not None:
            response["NextMarker"] = encode_token(last)
        return json.dumps(response)

    return list_aliases


def _get_execution_history(_original: Any) -> Any:
    def get_execution_history(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.stepfunctions.exceptions import InvalidToken

        history = dict(self.stepfunction_backend.get_execution_history(self._get_param("executionArn")))
        events = list(history.get("events", []))
        if self._get_param("reverseOrder"):
            events.reverse()
        limit = _int_param(self._get_param("maxResults"), DEFAULT_HISTORY_LIMIT, 1, 1000)
        token = self._get_param("nextToken")
        try:
            start = int(decode_token(token)) if token else 0
        except (InvalidTokenError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc
        history["events"] = events[start : start + limit]
        history.pop("nextToken", None)
        if start + limit < len(events):
            history["nextToken"] = encode_token(str(start + limit))
        return ActionResult(history)

    return get_execution_history


PATCHES = [
    Patch(
        "moto.s3.responses.S3Response.all_buckets",
        "moto's ListBuckets with MaxBuckets returns one page and no ContinuationToken, so paginating"
        " clients miss every bucket after the first page",
        _all_buckets,
    ),
    Patch(
        "moto.kms.responses.KmsResponse.list_aliases",
        "moto's ListAliases ignores Limit/Marker and invents TargetKeyIds for AWS-managed aliases"
        " whose keys do not exist yet",
        _list_aliases,
    ),
    Patch(
        "moto.stepfunctions.responses.StepFunctionResponse.get_execution_history",
        "moto's GetExecutionHistory ignores maxResults, nextToken and reverseOrder",
        _get_execution_history,
    ),
]
