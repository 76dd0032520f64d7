"""Background ingest jobs: what ``POST /v1/catalog/jobs`` (and the other job routes) answer, and what
``GET /v1/jobs/{job_id}`` reports while a job runs and after it has ended."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.ingest import BatchReport, FileOutcome

#: ``queued``: waiting for a worker; ``running``; then one of ``succeeded`` (every item was tried,
#: some may be rejected), ``failed`` (stopped by an error: what was stored before it stays stored) or
#: ``cancelled`` (stopped between two items, on request or at shutdown).
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: What a job does: index uploaded files into the catalog or the world tier, or fill the world
#: tier with the synthetic sample collection.
JobKind = Literal["catalog_files", "world_files", "world_sample"]

_JOB_ID = "0f8e5c1a9b2d4e6f8a1c3e5b7d9f0a2c"
_EXAMPLE = {
    "job_id": _JOB_ID, "kind": "catalog_files", "tier": "catalog", "status": "running",
    "status_url": f"/v1/jobs/{_JOB_ID}", "progress": {"done": 2, "total": 3},
    "report": {"source": "upload", "added": 1, "exists": 0, "rejected": 1, "took_s": 0.0},
    "error": None, "created_at": "2025-05-04T10:15:02.114Z", "started_at": "2025-05-04T10:15:02.120Z",
    "finished_at": None,
}
_ITEMS = [
    {"path": "song.flac", "status": "added", "track_id": "6f1c3c0e-6a1b-5d0e-9a53-0b7c1f3d2e11",
     "title": "Battle Theme", "artist": "Wesnoth", "album": None, "reason": None},
    {"path": "notes.mp3", "status": "rejected", "track_id": None, "title": "notes", "artist": None, "album": None,
     "reason": "notes.mp3: not an audio file ffmpeg can decode"},
]


class JobProgress(BaseModel):
    """How far a job has got: items are files for a file job, tracks for a sample."""

    done: int = Field(ge=0, description="Items tried so far (added, already there, or rejected).")
    total: int = Field(ge=0, description="Items the job will try.")


class JobSummary(BaseModel):
    """A job without its per-item outcomes (``GET /v1/jobs`` lists these)."""

    model_config = ConfigDict(json_schema_extra={"example": _EXAMPLE})

    job_id: str
    kind: JobKind
    tier: Literal["catalog", "world"]
    status: JobStatus
    status_url: str = Field(description="Where to read the job: GET it until `finished_at` is set.")
    progress: JobProgress
    report: BatchReport = Field(
        description="Counts so far (`source` is `upload` or `sample`); final once the job has ended, with `took_s`.")
    error: str | None = Field(default=None, description="Why the job failed (status `failed`).")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = Field(default=None, description="Set once the job has ended, however it ended.")

    @property
    def ended(self) -> bool:
        return self.finished_at is not None


class JobPublic(JobSummary):
    """A job with the outcome of each file so far, in the order the files were given."""

    model_config = ConfigDict(json_schema_extra={"example": {**_EXAMPLE, "items": _ITEMS}})

    items: list[FileOutcome] = Field(
        default_factory=list,
        description="One per file tried: added, exists (the same audio was already indexed) or rejected with "
                    "the reason; `path` is the file's name as uploaded. Empty for a sample job.")


class JobsPublic(BaseModel):
    """Recent jobs, newest first."""

    results: list[JobSummary]
    count: int


class JobAccepted(BaseModel):
    """The answer to a job submission (``202 Accepted``; the ``Location`` header is ``status_url`` too)."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "job_id": _JOB_ID, "status": "queued", "status_url": f"/v1/jobs/{_JOB_ID}"}})

    job_id: str
    status: JobStatus
    status_url: str


class SampleJobRequest(BaseModel):
    """``POST /v1/world/sample``: the synthetic sample collection ``encore world sample`` stores."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"count": 5000, "seed": 0}})

    count: int = Field(ge=1, le=200_000_000, description="How many tracks.")
    seed: int = Field(default=0, ge=0, description="Same seed, same collection: a second run stores only what "
                                                    "is missing.")
