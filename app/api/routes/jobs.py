"""Background ingest jobs: ``POST /v1/catalog/jobs``, ``POST /v1/world/jobs``, ``POST /v1/world/sample``,
and ``GET /v1/jobs/{job_id}`` to follow one.

A submission answers ``202`` as soon as the files are on the server's disk; the work runs on the
facade's job workers (:mod:`encore.jobs`), never on the event loop, so identify and search keep
answering meanwhile.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import UPLOAD_CHUNK_BYTES, ApiKeyDep, EncoreDep, SettingsDep, safe_filename
from app.api.errors import error_responses
from encore.config import Settings
from encore.errors import TooLarge
from encore.jobs import JobFile, Tier
from schemas.jobs import JobAccepted, JobPublic, JobsPublic, SampleJobRequest

router = APIRouter(tags=["jobs"])

#: Routes whose body is a job's many files: held to ``max_job_upload_bytes`` rather than
#: ``max_upload_bytes`` by :class:`app.main.UploadLimitMiddleware`.
JOB_UPLOAD_PATHS = ("/v1/catalog/jobs", "/v1/world/jobs")
#: Room for the multipart envelope of up to 1000 parts (Starlette's limit) around a job's files.
JOB_MULTIPART_OVERHEAD_BYTES = 1024 * 1024
#: Folders kept from an uploaded file's name (``album/cd1/song.mp3``), so metadata rows keyed by
#: such a path match.
MAX_NAME_DEPTH = 8

_NOT_FOUND = {404: {"description": "No such job, or one forgotten since (the last `ENCORE_JOBS_KEPT` are kept).",
                    "content": {"application/json": {"example": {"detail": "no job '0f8e...'"}}}}}
_ACCEPTED = {202: {"description": "The job is queued; follow it at `status_url` (also the `Location` header).",
                   "headers": {"Location": {"description": "The job's status URL.", "schema": {"type": "string"}}}}}

FilesForm = Annotated[list[UploadFile], File(
    description="Audio files, any format ffmpeg decodes; several `files` parts. A name may keep its folders "
                "(`album/song.mp3`), which metadata rows can use.")]
MetadataForm = Annotated[UploadFile | None, File(
    description="Optional CSV (with a header) or JSONL keyed by `file` (the name as uploaded), with any of "
                "title, artist, album, year, genre. Rows for files not uploaded are ignored; files without a row "
                "fall back to their tags, then their name.")]


def upload_name(filename: str | None) -> str:
    """An uploaded file's name with its folders, each part harmless here (``../x`` and ``C:\\`` lose their tricks)."""
    parts = [p for p in re.split(r"[/\\]", filename or "") if p.strip() not in ("", ".", "..")]
    parts = [safe_filename(p) for p in parts[-MAX_NAME_DEPTH:]]
    return "/".join(parts) or "upload"


async def _copy(upload: UploadFile, path: Path, *, file_limit: int, used: int, total_limit: int) -> int:
    """Stream one part to ``path``; returns the job's upload bytes so far. TooLarge past either limit."""
    await run_in_threadpool(path.parent.mkdir, parents=True, exist_ok=True)
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
            size += len(chunk)
            used += len(chunk)
            if size > file_limit:
                raise TooLarge(f"{path.name}: the upload is larger than the limit of {file_limit} bytes")
            if used > total_limit:
                raise TooLarge(f"the job's upload is larger than the limit of {total_limit} bytes")
            await run_in_threadpool(out.write, chunk)
    return used


async def _submit_files(
    tier: Tier,
    *,
    request: Request,
    response: Response,
    encore: EncoreDep,
    settings: Settings,
    files: list[UploadFile],
    metadata: UploadFile | None,
) -> JobAccepted:
    workdir = Path(await run_in_threadpool(tempfile.mkdtemp, prefix="encore-job-"))
    request.state.upload_dir = str(workdir)  # error messages lose this folder (app.api.errors)
    try:
        items, used = [], 0
        for i, upload in enumerate(files):
            name = upload_name(upload.filename)
            # One folder per part: two uploads called song.mp3 stay two files.
            path = workdir / "files" / f"{i:04d}" / name
            used = await _copy(upload, path, file_limit=settings.max_upload_bytes, used=used,
                               total_limit=settings.max_job_upload_bytes)
            items.append(JobFile(name=name, path=path))
        metadata_path = None
        if metadata is not None:
            metadata_path = workdir / "metadata" / safe_filename(metadata.filename)
            used = await _copy(metadata, metadata_path, file_limit=settings.max_upload_bytes, used=used,
                               total_limit=settings.max_job_upload_bytes)
    except BaseException:
        await run_in_threadpool(shutil.rmtree, workdir, ignore_errors=True)
        raise
    finally:
        for upload in [*files, *([metadata] if metadata is not None else [])]:
            await upload.close()
    # From here the job owns the folder: it removes it when it ends, or now if it is refused.
    job = await run_in_threadpool(lambda: encore.jobs.submit_files(tier, items, metadata=metadata_path, workdir=workdir))
    response.headers["Location"] = job.status_url
    return JobAccepted(job_id=job.job_id, status=job.status, status_url=job.status_url)


@router.post(
    "/catalog/jobs",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Add many files to the catalog, in the background",
    responses={**_ACCEPTED, **error_responses(400, 401, 413, 429)},
)
async def submit_catalog_job(
    request: Request,
    response: Response,
    encore: EncoreDep,
    settings: SettingsDep,
    _auth: ApiKeyDep,
    files: FilesForm,
    metadata: MetadataForm = None,
) -> JobAccepted:
    """Upload several audio files (and optionally a metadata file) to fingerprint into the catalog,
    as `encore catalog add` does. The answer comes once the upload is stored, before any file is
    read: follow the job at `status_url` for progress and each file's outcome (added, exists,
    rejected with the reason). A file that is not usable audio is rejected and the others still go
    in; a malformed metadata file refuses the whole job (400) before anything is stored.

        curl -H "X-API-Key: $KEY" -F files=@one.flac -F files=@two.mp3 -F metadata=@tracks.csv \\
             http://localhost:8000/v1/catalog/jobs
    """
    return await _submit_files("catalog", request=request, response=response, encore=encore, settings=settings,
                               files=files, metadata=metadata)


@router.post(
    "/world/jobs",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Add many files to the world tier, in the background",
    responses={**_ACCEPTED, **error_responses(400, 401, 413, 429)},
)
async def submit_world_job(
    request: Request,
    response: Response,
    encore: EncoreDep,
    settings: SettingsDep,
    _auth: ApiKeyDep,
    files: FilesForm,
    metadata: MetadataForm = None,
) -> JobAccepted:
    """Upload several audio files to embed, tag and describe into the world tier, as `encore world
    add` does; year and genre come from the metadata file or the files' tags. Answers at once;
    follow the job at `status_url`.

        curl -H "X-API-Key: $KEY" -F files=@a.flac -F files=@b.flac -F metadata=@tracks.jsonl \\
             http://localhost:8000/v1/world/jobs
    """
    return await _submit_files("world", request=request, response=response, encore=encore, settings=settings,
                               files=files, metadata=metadata)


@router.post(
    "/world/sample",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Fill the world tier with the sample collection, in the background",
    responses={**_ACCEPTED, **error_responses(401, 429)},
)
def submit_sample_job(body: SampleJobRequest, response: Response, encore: EncoreDep, _auth: ApiKeyDep) -> JobAccepted:
    """Store the synthetic sample collection `encore world sample` stores (genres, eras, artists
    with several tracks, vectors and tags in the audio encoder's space), for demos. Same seed, same
    collection: a second run stores only the tracks still missing. Progress counts tracks.

        curl -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"count": 5000, "seed": 0}' \\
             http://localhost:8000/v1/world/sample
    """
    job = encore.jobs.submit_sample(body.count, seed=body.seed)
    response.headers["Location"] = job.status_url
    return JobAccepted(job_id=job.job_id, status=job.status, status_url=job.status_url)


@router.get("/jobs", response_model=JobsPublic, summary="Recent jobs")
def list_jobs(
    encore: EncoreDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many jobs.")] = 50,
) -> JobsPublic:
    """Jobs still remembered, newest first, without their per-file outcomes: the running and queued
    ones, and the last `ENCORE_JOBS_KEPT` (100) that ended. Jobs live in memory, not across restarts.

        curl http://localhost:8000/v1/jobs
    """
    jobs = encore.jobs.recent(limit=limit)
    return JobsPublic(results=jobs, count=len(jobs))


@router.get("/jobs/{job_id}", response_model=JobPublic, summary="A job's status and outcomes", responses=_NOT_FOUND)
def get_job(job_id: str, encore: EncoreDep) -> JobPublic:
    """Where a job stands: `status` (queued, running, succeeded, failed, cancelled), `progress`
    (items done of total), counts in `report`, each file's outcome in `items`, `error` when it
    failed, and when it was created, started and finished. Poll it until `finished_at` is set.

        curl http://localhost:8000/v1/jobs/0f8e5c1a9b2d4e6f8a1c3e5b7d9f0a2c
    """
    return encore.jobs.get(job_id)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobPublic,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a job",
    responses={**_NOT_FOUND, **error_responses(401)},
)
def cancel_job(job_id: str, encore: EncoreDep, _auth: ApiKeyDep) -> JobPublic:
    """Cancel a job: a queued one at once, a running one when its current file (or batch of 1000
    sample tracks) is done; its `status` then turns `cancelled`. What it stored stays stored. An
    ended job is answered as it is.

        curl -X DELETE -H "X-API-Key: $KEY" http://localhost:8000/v1/jobs/0f8e5c1a9b2d4e6f8a1c3e5b7d9f0a2c
    """
    return encore.jobs.cancel(job_id)
