"""ListObjectVersions honours ``encoding-type=url``, as S3 does.

moto 5.2.5 URL-encodes key names for ListObjects(V2) when asked, but ignores ``encoding-type`` for
ListObjectVersions and returns raw names. botocore asks for ``EncodingType=url`` on its own and then
URL-decodes every name and marker, so a key with a ``+`` (``my file+v2.csv``) came back as
``my file v2.csv``: hashicorp/aws 5.x (``force_destroy``) deleted a version that does not exist and
looped on ``BucketNotEmpty`` forever, and a paginating client sent a wrong ``KeyMarker``. When the
request asks for it, the response's keys, prefixes, delimiter and markers are URL-encoded and
``EncodingType`` is set, as S3 answers; moto's objects themselves are never changed.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from emulator.patch import Patch

_ENCODED_FIELDS = ("Prefix", "Delimiter", "KeyMarker", "NextKeyMarker")


def _encode(value: Any) -> Any:
    return urllib.parse.quote(value) if isinstance(value, str) and value else value


def encode_result(result: dict[str, Any]) -> None:
    """URL-encode, in place, what S3 encodes in a ListObjectVersions result."""
    result["EncodingType"] = "url"  # tells clients (botocore does) to decode the names
    for name in _ENCODED_FIELDS:
        if name in result:
            result[name] = _encode(result[name])
    for entry in (*result.get("Versions", []), *result.get("DeleteMarkers", [])):
        entry["Key"] = _encode(entry["Key"])
    for common in result.get("CommonPrefixes", []):
        common["Prefix"] = _encode(common["Prefix"])


def _list_object_versions_response(original: Any) -> Any:
    def list_object_versions(self: Any) -> Any:
        if self.querystring.get("encoding-type", [None])[0] == "url":
            serialize = self.serialized  # this response object serves this one request only

            def serialized_with_encoding(action_result: Any) -> Any:
                if isinstance(action_result.result, dict):
                    encode_result(action_result.result)
                return serialize(action_result)

            self.serialized = serialized_with_encoding
        return original(self)

    return list_object_versions


_WHY = (
    "moto ignores encoding-type=url on ListObjectVersions; botocore URL-decodes names and markers"
    " anyway, so hashicorp/aws 5.x force_destroy never deletes a key with '+' and pages go wrong"
)
PATCHES = [
    Patch("moto.s3.responses.S3Response.list_object_versions", _WHY, _list_object_versions_response),
]
