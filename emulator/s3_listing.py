"""ListObjectVersions honours ``encoding-type=url``, as S3 does.

moto 5.2.5 URL-encodes key names for ListObjects(V2) when asked, but ignores ``encoding-type`` for
ListObjectVersions and returns raw names. hashicorp/aws 5.x empties a bucket (``force_destroy``)
by listing versions with ``EncodingType=url`` and URL-decoding every key, so a key with a ``+``
(``my file+v2.csv``) came back as ``my file v2.csv``: the provider deleted a version that does not
exist and looped on ``BucketNotEmpty`` forever. While an Emulator runs, the listed versions and
delete markers carry URL-encoded names (``quote``, like moto's ListObjects) when the request asks
for them; moto's objects themselves are never changed.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

_REQUEST = threading.local()
_ORIGINALS: dict[str, Any] = {}


class _UrlEncodedName:
    """A read-only view of a moto key or delete marker whose ``name`` is URL-encoded."""

    def __init__(self, item: Any) -> None:
        self._item = item
        self.name = urllib.parse.quote(item.name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._item, attribute)


def _list_object_versions_response(self: Any) -> Any:
    from emulator import patches

    encoding = self.querystring.get("encoding-type", [None])[0]
    _REQUEST.url_encoded = patches.is_active() and encoding == "url"
    if _REQUEST.url_encoded:
        serialize = self.serialized  # this response object serves this one request only

        def serialized_with_encoding_type(action_result: Any) -> Any:
            result = action_result.result
            if isinstance(result, dict):
                result["EncodingType"] = "url"  # tells clients (boto3 does) to decode the names
            return serialize(action_result)

        self.serialized = serialized_with_encoding_type
    try:
        return _ORIGINALS["response"](self)
    finally:
        _REQUEST.url_encoded = False


def _list_object_versions_backend(self: Any, *args: Any, **kwargs: Any) -> Any:
    result = _ORIGINALS["backend"](self, *args, **kwargs)
    if not getattr(_REQUEST, "url_encoded", False):
        return result
    versions, common_prefixes, delete_markers, next_key_marker, next_version_id_marker = result
    return (
        [_UrlEncodedName(v) for v in versions],
        common_prefixes,
        [_UrlEncodedName(m) for m in delete_markers],
        next_key_marker,
        next_version_id_marker,
    )


def install() -> None:
    """Patch moto (idempotent); inert unless an Emulator is active in this process."""
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    if _ORIGINALS:
        return
    _ORIGINALS["response"] = S3Response.list_object_versions
    _ORIGINALS["backend"] = S3Backend.list_object_versions
    S3Response.list_object_versions = _list_object_versions_response  # type: ignore[method-assign]
    S3Backend.list_object_versions = _list_object_versions_backend  # type: ignore[method-assign]
