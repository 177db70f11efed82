"""File downloads: one shape for every CSV and workbook the API hands out."""

from __future__ import annotations

from fastapi import Response

CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def attachment(content: bytes, filename: str, media_type: str = CSV) -> Response:
    """The bytes as a download named `filename` (ids in names are plain hex, so no quoting issue)."""
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
