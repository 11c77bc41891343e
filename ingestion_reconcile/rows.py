"""What the metadata table holds (one consistent Scan), as far as reconciling goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingestion_reconcile.clients import pagination
from ingestion_reconcile.errors import aws_errors
from ingestion_reconcile.progress import Progress
from lambda_common.naming import has_version_id


@dataclass(frozen=True)
class Rows:
    """What the metadata table holds, as far as reconciling goes."""

    versions: frozenset[tuple[str, str | None]]
    """(Filename, VersionId) of every row; VersionId None when the row has none (or S3's "null").
    A version's row is found by these whatever its UploadTimestamp: the event time, LastModified,
    or either with the writer's tie-break suffix (``#`` and the version id or sequencer)."""
    anonymous_slots: frozenset[tuple[str, str]]
    """(Filename, UploadTimestamp) of the rows with neither VersionId nor Sequencer: the writer
    takes any version written under such a key for the one the row records, and keeps that row."""


def scan_rows(dynamodb: Any, table: str, progress: Progress, page_size: int | None = None) -> Rows:
    """One consistent Scan of the table, projected on the four attributes used."""
    progress.phase("reading the metadata table")
    versions: set[tuple[str, str | None]] = set()
    anonymous: set[tuple[str, str]] = set()
    paginator = dynamodb.get_paginator("scan")
    with aws_errors("dynamodb:Scan", f"table {table!r}"):
        for page in paginator.paginate(
            TableName=table,
            ProjectionExpression="#filename, #timestamp, #version, #sequencer",
            ExpressionAttributeNames={
                "#filename": "Filename",
                "#timestamp": "UploadTimestamp",
                "#version": "VersionId",
                "#sequencer": "Sequencer",
            },
            ConsistentRead=True,
            PaginationConfig=pagination(page_size),
        ):
            for item in page.get("Items", []):
                filename = item["Filename"]["S"]
                version = item.get("VersionId", {}).get("S")
                versions.add((filename, version if has_version_id(version) else None))
                if not has_version_id(version) and not item.get("Sequencer", {}).get("S"):
                    anonymous.add((filename, item["UploadTimestamp"]["S"]))
            progress.advance(len(page.get("Items", [])))
    return Rows(frozenset(versions), frozenset(anonymous))
