"""The bucket's object versions (ListObjectVersions), and which of them the trigger would ingest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from ingestion_reconcile.clients import pagination
from ingestion_reconcile.errors import aws_errors
from ingestion_reconcile.findings import Status
from ingestion_reconcile.progress import Progress
from lambda_common.contract import UploadRecord
from lambda_common.key_validation import InvalidKeyError, is_folder_marker, validate_key
from lambda_common.naming import execution_name, has_version_id, object_digest

REDRIVE_EVENT_NAME: Final = "ObjectCreated:Redrive"


@dataclass(frozen=True)
class ObjectVersion:
    """One object version of the bucket, as ListObjectVersions shows it."""

    bucket: str
    key: str
    version_id: str | None
    """None for S3's ``"null"`` version (written while versioning was off or suspended)."""
    last_modified: datetime
    etag: str | None
    size: int

    @property
    def has_version(self) -> bool:
        return self.version_id is not None

    @property
    def is_folder_marker(self) -> bool:
        """The trigger's rule, from the one place it is written (``lambda_common.key_validation``)."""
        return is_folder_marker(self.key, self.size)

    def name(self, attempt: int = 0) -> str:
        return execution_name(self.bucket, self.key, self.version_id, None, attempt=attempt)

    @property
    def digest(self) -> str:
        return object_digest(self.bucket, self.key, self.version_id)

    def upload_record(self) -> UploadRecord:
        """What the trigger would have started it with; LastModified stands in for the event time."""
        return UploadRecord(
            bucket=self.bucket,
            key=self.key,
            size=self.size,
            etag=self.etag,
            version_id=self.version_id,
            sequencer=None,
            event_time=iso_timestamp(self.last_modified),
            event_name=REDRIVE_EVENT_NAME,
        )


def iso_timestamp(moment: datetime) -> str:
    """``2026-01-15T10:20:30.000Z``: the format of an S3 event's eventTime."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def list_object_versions(
    s3: Any, bucket: str, progress: Progress, page_size: int | None = None
) -> list[ObjectVersion]:
    """Every object version of the bucket, those hidden by a delete marker included (still
    uploads); delete markers themselves are not objects."""
    progress.phase("listing object versions")
    versions: list[ObjectVersion] = []
    paginator = s3.get_paginator("list_object_versions")
    with aws_errors("s3:ListBucketVersions", f"bucket {bucket!r}"):
        for page in paginator.paginate(Bucket=bucket, PaginationConfig=pagination(page_size)):
            listed = page.get("Versions", [])
            versions.extend(
                ObjectVersion(
                    bucket=bucket,
                    key=entry["Key"],
                    version_id=entry["VersionId"] if has_version_id(entry.get("VersionId")) else None,
                    last_modified=entry["LastModified"],
                    etag=entry["ETag"].strip('"') if entry.get("ETag") else None,
                    size=int(entry.get("Size", 0)),
                )
                for entry in listed
            )
            progress.advance(len(listed))
    return versions


def ingestibility(obj: ObjectVersion) -> tuple[Status | None, str | None]:
    """(REJECTED, reason), (FOLDER_MARKER, None), or (None, None) for an ingestible version."""
    try:
        validate_key(obj.key)
    except InvalidKeyError as err:
        return Status.REJECTED, err.reason
    if obj.is_folder_marker:
        return Status.FOLDER_MARKER, None
    return None, None
