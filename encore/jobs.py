"""Background ingest jobs: a bounded pool of worker threads that index files or the sample collection.

Who owns it
    The facade: every :class:`~encore.service.Encore` has one :class:`JobManager`, ``enc.jobs``. A
    job writes through the facade's store, so its life is bound to that store's: ``Encore.close()``
    first shuts the manager down (queued jobs are cancelled, running ones stop between two items and
    are waited for), then closes the store. The HTTP app reaches the manager through the facade, so
    the same jobs can be submitted and read from Python::

        job = enc.jobs.submit_files("catalog", ["~/Music"], metadata="tracks.csv")
        job = enc.jobs.wait(job.job_id)          # or poll enc.jobs.get(job.job_id)

    No thread starts until the first job is submitted.

Why threads answer requests meanwhile
    A job runs on a worker thread, never on the server's event loop. Most of its time is spent where
    the GIL is released (the ffmpeg subprocess, numpy, torch, the Qdrant engine), and the embedded
    store takes its lock for one write at a time (one upsert of one file's points or of one batch
    of 1000 sample tracks), never for a whole job, while reads take no lock at all
    (:mod:`encore.storage.edge`). ``max_jobs`` (default 1) bounds how much CPU ingest takes from
    identify and search; ``max_queued_jobs`` bounds what waits, and past it :class:`QueueFull`.

What a job leaves behind
    Each item goes through the same idempotent steps as ``encore catalog add`` and ``encore world
    sample`` (:func:`indexers.pipeline.add_file`, :func:`indexers.pipeline.ingest_batches`): track ids
    derive from the audio, so an item is stored whole or not at all, and a job that fails or is
    cancelled part way leaves the items before it stored and nothing half-written; submitting it
    again adds only what is missing. A job's working folder (the uploaded files) is removed when the
    job ends, however it ends, or at once when the job is refused. Ended jobs stay readable until
    ``jobs_kept`` newer ones have ended; they are kept in memory only, not across restarts.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from encore.errors import BadInput, EncoreError, NotFound, QueueFull
from schemas.ingest import BatchReport, FileOutcome
from schemas.jobs import JobKind, JobProgress, JobPublic, JobStatus, JobSummary

if TYPE_CHECKING:
    from encore.service import Encore
    from indexers.metadata import MetadataTable

log = logging.getLogger(__name__)

Tier = Literal["catalog", "world"]


def job_status_url(job_id: str) -> str:
    """Where the HTTP API answers a job (``GET /v1/jobs/{job_id}``)."""
    return f"/v1/jobs/{job_id}"


@dataclass(frozen=True, slots=True)
class JobFile:
    """One file a job will index.

    ``name`` is how the outcome names it (the name as uploaded, or the path as given); ``refused``
    holds why it is rejected without being read (a link out of the folder given).
    """

    name: str
    path: Path
    refused: str | None = None


class _Cancelled(Exception):  # noqa: N818 - a control-flow signal inside the worker, never raised to callers
    pass


@dataclass(eq=False)
class _Job:
    """A job's mutable state; every field after ``work`` is read and written under the manager's lock."""

    job_id: str
    kind: JobKind
    tier: Tier
    total: int
    work: Callable[[_Job], None]
    workdir: Path | None
    report: BatchReport
    created_at: datetime
    status: JobStatus = "queued"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    done: int = 0
    items: list[FileOutcome] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)

    def scrub(self, text: str | None, file: JobFile | None = None) -> str | None:
        """``text`` without this server's working paths: a file's path becomes its name."""
        if text is None:
            return None
        if file is not None:
            text = text.replace(str(file.path), file.name)
        if self.workdir is not None:
            text = text.replace(f"{self.workdir}{os.sep}", "").replace(str(self.workdir), "")
        return text


class JobManager:
    """Queue, run and remember ingest jobs for one facade (see the module docstring).

    Parameters
    ----------
    enc : the facade jobs write through
    workers : jobs that run at once (``Settings.max_jobs``)
    max_queued : jobs that may wait for a worker (``Settings.max_queued_jobs``)
    keep : ended jobs that stay readable (``Settings.jobs_kept``)
    """

    def __init__(self, enc: Encore, *, workers: int = 1, max_queued: int = 8, keep: int = 100) -> None:
        if workers < 1 or max_queued < 0 or keep < 1:
            raise ValueError("workers and keep must be at least 1, max_queued at least 0")
        self._enc = enc
        self._workers = workers
        self._max_queued = max_queued
        self._keep = keep
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a job was queued, ended, or the manager closed
        self._jobs: dict[str, _Job] = {}  # in the order they were submitted
        self._pending: deque[_Job] = deque()
        self._ended: deque[str] = deque()
        self._running = 0
        self._threads: list[threading.Thread] = []
        self._closed = False

    # --- submitting -------------------------------------------------------------------------

    def submit_files(
        self,
        tier: Tier,
        files: Sequence[str | Path | JobFile],
        *,
        metadata: str | Path | MetadataTable | None = None,
        workdir: str | Path | None = None,
    ) -> JobPublic:
        """Queue a job that indexes audio files into ``tier``, as ``encore catalog add`` / ``world add`` do.

        Parameters
        ----------
        tier : "catalog" or "world"
        files : audio files and folders (walked recursively, as the CLI does), or :class:`JobFile` items
        metadata : a CSV or JSONL metadata file, or an already read table; read now, so a malformed
            one is refused before the job exists
        workdir : a folder the job owns from this call on: removed when the job ends, or at once if
            the job is refused

        Returns
        -------
        JobPublic
            the job as queued; read it again with :meth:`get` or :meth:`wait`.

        Raises
        ------
        BadInput
            a path does not exist, nothing was given, or the metadata is malformed (BadMetadata).
        QueueFull
            ``max_jobs`` jobs run and ``max_queued_jobs`` wait already.
        """
        try:
            if tier not in ("catalog", "world"):
                raise BadInput(f"unknown tier {tier!r}: catalog or world")
            from indexers.metadata import read_metadata
            from indexers.pipeline import find_audio_files

            table = read_metadata(metadata) if isinstance(metadata, str | Path) else metadata
            items = [f for f in files if isinstance(f, JobFile)]
            paths = [f for f in files if not isinstance(f, JobFile)]
            if paths:
                items += [JobFile(str(p), p, refused) for p, refused in find_audio_files(paths)]
            if not items:
                raise BadInput("no files given")
        except BaseException:
            _remove(workdir)
            raise

        def work(job: _Job) -> None:
            self._index_files(job, items, table)

        kind: JobKind = "catalog_files" if tier == "catalog" else "world_files"
        return self._submit(kind, tier, total=len(items), work=work, workdir=workdir, source="upload")

    def submit_sample(self, count: int, *, seed: int = 0) -> JobPublic:
        """Queue a job that stores the synthetic sample collection, as ``encore world sample`` does.

        Raises
        ------
        BadInput
            ``count`` is below 1.
        QueueFull
            the queue is full.
        """
        if count < 1:
            raise BadInput("count must be at least 1")

        def work(job: _Job) -> None:
            self._store_sample(job, count=count, seed=seed)

        return self._submit("world_sample", "world", total=count, work=work, workdir=None, source="sample")

    def _submit(
        self,
        kind: JobKind,
        tier: Tier,
        *,
        total: int,
        work: Callable[[_Job], None],
        workdir: str | Path | None,
        source: str,
    ) -> JobPublic:
        job = _Job(job_id=uuid.uuid4().hex, kind=kind, tier=tier, total=total, work=work,
                   workdir=Path(workdir) if workdir is not None else None, report=BatchReport(source=source),
                   created_at=_now())
        with self._lock:
            refusal = None
            if self._closed:
                refusal = EncoreError("the job manager is shut down: no new jobs")
            elif self._running + len(self._pending) >= self._workers + self._max_queued:
                refusal = QueueFull(
                    f"{self._running} job(s) running and {len(self._pending)} waiting, the most this service takes "
                    f"(ENCORE_MAX_JOBS={self._workers}, ENCORE_MAX_QUEUED_JOBS={self._max_queued}); "
                    "try again when one has finished")
            if refusal is None:
                self._jobs[job.job_id] = job
                self._pending.append(job)
                if len(self._threads) < self._workers:
                    thread = threading.Thread(target=self._worker, name=f"encore-job-{len(self._threads) + 1}",
                                              daemon=True)
                    self._threads.append(thread)
                    thread.start()
                self._changed.notify_all()
                snapshot = self._public(job)
        if refusal is not None:
            _remove(job.workdir)
            raise refusal
        log.info("job %s (%s, %d items) queued", job.job_id, kind, total)
        return snapshot

    # --- reading ----------------------------------------------------------------------------

    def get(self, job_id: str) -> JobPublic:
        """The job as it is now. Raises NotFound for an unknown id (or one forgotten long ago)."""
        with self._lock:
            return self._public(self._find(job_id))

    def recent(self, *, limit: int = 50) -> list[JobSummary]:
        """Recent jobs, newest first, without their per-item outcomes."""
        with self._lock:
            jobs = list(self._jobs.values())[::-1][:limit]
            return [self._summary(j) for j in jobs]

    def wait(self, job_id: str, *, timeout: float | None = None) -> JobPublic:
        """Block until the job has ended (or ``timeout`` seconds have passed); the job as it is then."""
        with self._changed:
            job = self._find(job_id)
            self._changed.wait_for(lambda: job.finished_at is not None, timeout)
            return self._public(job)

    def cancel(self, job_id: str) -> JobPublic:
        """Cancel a job: a queued one at once, a running one when its current item is done.

        An ended job is left as it is. What a cancelled job stored stays stored.
        """
        with self._lock:
            job = self._find(job_id)
            if job.status == "queued":
                self._pending.remove(job)
                self._end(job, "cancelled")
            elif job.status == "running":
                job.cancel.set()
            snapshot = self._public(job)
        if snapshot.status == "cancelled":
            _remove(job.workdir)
        return snapshot

    def shutdown(self, *, timeout: float | None = None) -> None:
        """Refuse new jobs, cancel the queued ones, stop the running ones between items and wait for them.

        Idempotent. ``timeout`` bounds the wait for each running job (None: as long as its current
        item takes).
        """
        with self._lock:
            self._closed = True
            dropped = list(self._pending)
            self._pending.clear()
            for job in dropped:
                self._end(job, "cancelled")
            for job in self._jobs.values():
                if job.status == "running":
                    job.cancel.set()
            self._changed.notify_all()
            threads = list(self._threads)
        for job in dropped:
            _remove(job.workdir)
        for thread in threads:
            thread.join(timeout)

    # --- the workers ------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending) or self._closed)
                if not self._pending:  # closed, nothing left
                    return
                job = self._pending.popleft()
                job.status, job.started_at = "running", _now()
                self._running += 1
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running -= 1

    def _run(self, job: _Job) -> None:
        log.info("job %s (%s) started", job.job_id, job.kind)
        started = time.perf_counter()
        # Whatever stops the work without an exception we expect still ends the job, as failed.
        status: JobStatus = "failed"
        error: str | None = "interrupted"
        try:
            job.work(job)
            status, error = "succeeded", None
        except _Cancelled:
            status, error = "cancelled", None
        except EncoreError as err:
            status, error = "failed", job.scrub(str(err))
            log.warning("job %s failed: %s", job.job_id, err)
        except Exception as err:  # noqa: BLE001 - a worker must record any failure, not die and leave the job running
            status, error = "failed", job.scrub(f"internal error: {type(err).__name__}: {err}")
            log.exception("job %s failed", job.job_id)
        finally:
            _remove(job.workdir)
            with self._lock:
                job.report.took_s = round(time.perf_counter() - started, 3)
                self._end(job, status, error=error)
        log.info("job %s %s: %s", job.job_id, status, job.report)

    def _check(self, job: _Job) -> None:
        if job.cancel.is_set():
            raise _Cancelled

    def _index_files(self, job: _Job, files: Sequence[JobFile], table: MetadataTable | None) -> None:
        from indexers.pipeline import add_file

        for file in files:
            self._check(job)
            if file.refused is not None:
                outcome = FileOutcome(path=file.name, status="rejected", reason=file.refused)
            else:
                outcome = add_file(self._enc, file.path, table, tier=job.tier)
                outcome = outcome.model_copy(update={"path": file.name, "reason": job.scrub(outcome.reason, file)})
            with self._lock:
                job.items.append(outcome)
                job.done += 1
                if outcome.status == "added":
                    job.report.added += 1
                elif outcome.status == "exists":
                    job.report.exists += 1
                else:
                    job.report.rejected += 1

    def _store_sample(self, job: _Job, *, count: int, seed: int) -> None:
        from indexers.pipeline import ingest_batches
        from indexers.sample import sample_batches

        enc = self._enc

        def on_batch(report: BatchReport) -> None:
            with self._lock:
                job.report = report.model_copy()
                job.done = report.added + report.exists + report.rejected
            self._check(job)

        self._check(job)
        batches = sample_batches(count, seed=seed, head=enc.tag_head, space=enc.encoder.description.name)
        ingest_batches(enc, batches, total=count, source="sample", progress=False, on_batch=on_batch)

    # --- bookkeeping (under the lock) -------------------------------------------------------

    def _find(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (jobs are kept until {self._keep} newer ones have ended)")
        return job

    def _end(self, job: _Job, status: JobStatus, *, error: str | None = None) -> None:
        job.status, job.error, job.finished_at = status, error, _now()
        self._ended.append(job.job_id)
        while len(self._ended) > self._keep:
            self._jobs.pop(self._ended.popleft(), None)
        self._changed.notify_all()

    def _summary(self, job: _Job) -> JobSummary:
        return JobSummary(**self._fields(job))

    def _public(self, job: _Job) -> JobPublic:
        return JobPublic(**self._fields(job), items=list(job.items))

    def _fields(self, job: _Job) -> dict[str, object]:
        return {
            "job_id": job.job_id, "kind": job.kind, "tier": job.tier, "status": job.status,
            "status_url": job_status_url(job.job_id), "progress": JobProgress(done=job.done, total=job.total),
            "report": job.report.model_copy(), "error": job.error, "created_at": job.created_at,
            "started_at": job.started_at, "finished_at": job.finished_at,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _remove(folder: str | Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
