"""The one place where Encore's exception tree becomes HTTP status codes.

Every error answer has the body ``{"detail": message}``. Request validation (422) stays FastAPI's.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from encore.errors import (
    BadAudio,
    BadInput,
    BadMetadata,
    Busy,
    Conflict,
    EncoreError,
    NotAudio,
    NotFound,
    SchemaMismatch,
    ServiceUnavailable,
    StorageError,
    TooLarge,
    Unauthorized,
)

log = logging.getLogger(__name__)

#: Most specific class first; an error takes the code of the first class it is an instance of.
STATUS_CODES: tuple[tuple[type[EncoreError], int], ...] = (
    (NotAudio, 415),
    (TooLarge, 413),
    (BadAudio, 400),
    (BadMetadata, 400),
    (BadInput, 400),
    (NotFound, 404),
    (Unauthorized, 401),
    (Conflict, 409),
    (Busy, 429),  # QueueFull too
    (SchemaMismatch, 500),
    (StorageError, 503),
    (ServiceUnavailable, 503),
    (EncoreError, 500),
)


def status_code_for(err: EncoreError) -> int:
    """The HTTP status code answering ``err``."""
    for cls, code in STATUS_CODES:
        if isinstance(err, cls):
            return code
    return 500


def error_body(message: str) -> dict[str, str]:
    return {"detail": message}


def public_message(request: Request, exc: Exception) -> str:
    """The error's message, without the server's temporary upload folder in it."""
    message = str(exc)
    upload_dir = getattr(request.state, "upload_dir", None)
    if upload_dir:
        message = message.replace(f"{upload_dir}{os.sep}", "").replace(upload_dir, "")
    return message


async def encore_error_handler(request: Request, exc: Exception) -> JSONResponse:
    code = status_code_for(exc) if isinstance(exc, EncoreError) else 500
    if code >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
    if isinstance(exc, Busy):
        return busy_response(public_message(request, exc), retry_after=exc.retry_after)
    headers = {"WWW-Authenticate": "X-API-Key"} if code == 401 else None
    if isinstance(exc, ServiceUnavailable) and exc.retry_after:
        headers = {"Retry-After": str(exc.retry_after)}
    return JSONResponse(status_code=code, content=error_body(public_message(request, exc)), headers=headers)


def busy_response(message: str, *, retry_after: int | None) -> JSONResponse:
    """429 with ``Retry-After`` (seconds) when it is known."""
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONResponse(status_code=429, content=error_body(message), headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EncoreError, encore_error_handler)


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI descriptions of the error answers a route can give, for ``responses=``."""
    described = {
        400: "Bad input: empty, too short, silent, truncated or corrupt audio, bad metadata or bad filters.",
        401: "Missing or wrong X-API-Key.",
        404: "No such track.",
        413: "The upload or the audio is past the configured limit.",
        415: "The file is not audio ffmpeg can decode.",
        429: "Busy: too many requests from this client, or as much work running and waiting as the service "
             "takes. Try again after the Retry-After header's seconds (when given).",
        503: "The vector store failed, or the clip's analysis was interrupted (a worker process stopped and is "
             "restarting) or the service is shutting down: try again after the Retry-After header's seconds.",
    }
    return {
        code: {
            "description": described[code],
            "content": {"application/json": {"example": {"detail": described[code]}}},
        }
        for code in codes
    }
