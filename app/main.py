"""The FastAPI application factory.

Nothing is built at import time. Run it with uvicorn's factory mode::

    uvicorn app.main:create_app --factory        # or: encore serve

The lifespan opens one :class:`~encore.service.Encore` at start-up (the store and models load once)
and closes it at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

import encore
from app.api.errors import error_body, install_error_handlers
from app.api.limits import HeavyLimiter, RateLimitMiddleware
from app.api.main import api_router
from app.api.routes.jobs import JOB_MULTIPART_OVERHEAD_BYTES, JOB_UPLOAD_PATHS
from encore.analysis import serving_workers
from encore.config import Settings, get_settings
from encore.service import Encore

STATIC_DIR = Path(__file__).parent / "static"

#: Room for the multipart envelope around a file of exactly ``max_upload_bytes``.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

DESCRIPTION = """
Encore identifies music: index the audio files you own, then send a few seconds of a recording
(noisy, from a phone, re-encoded) and get the track back with where in it the clip starts.

* `POST /v1/catalog/tracks` adds a file, `DELETE /v1/catalog/tracks/{track_id}` removes it.
* `POST /v1/identify` answers a clip with the matching track, or `"match": null`.
* `POST /v1/catalog/jobs` and `POST /v1/world/jobs` add many files in the background; follow a job at
  `GET /v1/jobs/{job_id}` (identify and search keep answering meanwhile).

Errors answer `{"detail": message}`: 400 bad input, 401 missing or wrong key, 404, 413 too large,
415 not audio, 422 malformed request, 429 busy (with `Retry-After`). When the server sets
`ENCORE_API_KEY`, write endpoints need the header `X-API-Key`.
"""


class UploadLimitMiddleware:
    """Refuse a request whose declared body is past the upload limit before reading any of it.

    Bodies without a Content-Length are still held to the limit while the upload is copied
    (:func:`app.api.deps.saved_upload`, and the job routes). Requests to ``job_paths`` carry a job's
    many files and are held to ``max_job_upload_bytes`` instead of ``max_upload_bytes``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_upload_bytes: int,
        max_job_upload_bytes: int | None = None,
        job_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_upload_bytes = max_upload_bytes
        self.max_job_upload_bytes = max_job_upload_bytes or max_upload_bytes
        self.job_paths = frozenset(job_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"].removeprefix(scope.get("root_path", ""))
            if path in self.job_paths:
                limit, allowed = self.max_job_upload_bytes, self.max_job_upload_bytes + JOB_MULTIPART_OVERHEAD_BYTES
            else:
                limit, allowed = self.max_upload_bytes, self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > allowed:
                response = JSONResponse(
                    status_code=413, content=error_body(f"the upload is larger than the limit of {limit} bytes")
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, encore_service: Encore | None = None) -> FastAPI:
    """Build the app.

    Parameters
    ----------
    settings : defaults to :func:`encore.config.get_settings` (the ``ENCORE_`` environment)
    encore_service : an already opened facade to serve instead of opening one; the caller keeps
        ownership and closes it
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = encore_service is None
        # Opening loads the store and the models: seconds of blocking work, off the event loop. The
        # store stays in this process (one process owns an embedded shard); identify clips are
        # analysed by a pool of worker processes, one per core unless configured.
        opening = partial(Encore.open, settings, analysis_workers=serving_workers(settings.analysis_workers))
        app.state.encore = await run_in_threadpool(opening) if owned else encore_service
        await run_in_threadpool(app.state.encore.warm_up)  # models load (and workers start) before the first request
        try:
            yield
        finally:
            if owned:
                await run_in_threadpool(app.state.encore.close)

    app = FastAPI(
        title="Encore",
        version=encore.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.heavy = HeavyLimiter(settings.max_heavy_requests, wait_s=settings.heavy_wait_seconds)
    install_error_handlers(app)
    app.add_middleware(
        UploadLimitMiddleware,
        max_upload_bytes=settings.max_upload_bytes,
        max_job_upload_bytes=settings.max_job_upload_bytes,
        job_paths=JOB_UPLOAD_PATHS,
    )
    # Outside the upload limit (a flooding client is refused before its body is read), inside CORS
    # (a refused browser request still carries the CORS headers that let the page read why).
    app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.include_router(api_router, prefix="/v1")

    # The page's script and style sheet (plain files, no build step); ``/`` serves the page itself.
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return app
