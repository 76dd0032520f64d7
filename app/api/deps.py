"""Dependencies handlers take as plain arguments (``Annotated`` aliases, as in the FastAPI template).

The facade and the settings live on ``app.state`` (set by the lifespan in :mod:`app.main`); tests swap
them through ``app.dependency_overrides`` or by passing objects to :func:`app.main.create_app`.
"""

from __future__ import annotations

import hmac
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, File, Query, Request, UploadFile
from fastapi.security import APIKeyHeader
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from encore.config import Settings
from encore.errors import TooLarge, Unauthorized
from encore.service import Encore
from indexers.metadata import clean_text
from schemas.api import Filters, Preferences

#: Uploads are copied to disk in pieces of this size, so memory stays flat whatever the file.
UPLOAD_CHUNK_BYTES = 1024 * 1024


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_encore(request: Request) -> Encore:
    return request.app.state.encore


SettingsDep = Annotated[Settings, Depends(get_settings)]
EncoreDep = Annotated[Encore, Depends(get_encore)]

_api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Needed by write endpoints when the server sets ENCORE_API_KEY.",
)


def require_api_key(settings: SettingsDep, key: Annotated[str | None, Depends(_api_key_header)] = None) -> None:
    """Let the request through when no key is configured, or when ``X-API-Key`` matches it."""
    expected = settings.api_key.get_secret_value().encode() if settings.api_key is not None else b""
    if not expected:  # unset, or set to "" (as compose does for an empty ${ENCORE_API_KEY:-})
        return
    # compare_digest takes as long for a near miss as for a wild guess: no timing oracle.
    if key is None or not hmac.compare_digest(key.encode(), expected):
        raise Unauthorized("missing or wrong X-API-Key header")


ApiKeyDep = Annotated[None, Depends(require_api_key)]


def form_text(value: str | None) -> str | None:
    """A form field as given, stripped, control characters made spaces; blank means not given."""
    return clean_text(value)


def safe_filename(name: str | None) -> str:
    """The last component of an uploaded file's name, harmless as a file name here.

    Clients may send ``../../etc/passwd`` or ``C:\\x\\song.mp3``; only ``passwd`` and ``song.mp3`` survive.
    """
    base = re.split(r"[/\\]", name or "")[-1]
    base = re.sub(r"\s*[\x00-\x1f\x7f]+\s*", " ", base).strip()  # "new\nline.wav": one line, as the CLI shows it
    if base in ("", ".", ".."):
        return "upload"
    if len(base) > 200:
        suffix = Path(base).suffix[:16]
        base = base[: 200 - len(suffix)] + suffix
    return base


async def saved_upload(
    file: Annotated[UploadFile, File(description="An audio file ffmpeg decodes (wav, mp3, flac, ogg, m4a, ...).")],
    settings: SettingsDep,
    request: Request,
) -> AsyncIterator[Path]:
    """Stream the multipart ``file`` to a private temporary folder, enforcing ``max_upload_bytes``.

    Yields the path (named after the uploaded file, so error messages name it too); the folder is
    deleted when the request ends, whatever happens.
    """
    limit = settings.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="encore-upload-") as folder:
        # Error messages may quote the path (ffmpeg does); the error handler strips this folder.
        request.state.upload_dir = folder
        path = Path(folder) / safe_filename(file.filename)
        size = 0
        try:
            with path.open("wb") as out:
                while chunk := await file.read(UPLOAD_CHUNK_BYTES):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"{path.name}: the upload is larger than the limit of {limit} bytes")
                    await run_in_threadpool(out.write, chunk)
        finally:
            await file.close()
        yield path


UploadDep = Annotated[Path, Depends(saved_upload)]


class FilteredQuery(Filters, Preferences):
    """Query parameters of a discovery route: the contract's Filters, ``target_*`` preferences and ``limit``.

    One model for all of them, so that a misspelt parameter (``?yeer_min=1980``) is a 422 rather
    than a filter silently dropped.
    """

    limit: int | None = Field(default=None, ge=1, le=1000, description="How many tracks.")

    def filters(self) -> Filters:
        return Filters(**self.model_dump(include=set(Filters.model_fields)))

    def preferences(self) -> Preferences:
        return Preferences(**self.model_dump(include=set(Preferences.model_fields)))


FilteredQueryDep = Annotated[FilteredQuery, Query()]
