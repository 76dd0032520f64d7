"""Clip analysis beside the server process: decode, fingerprint and embed identify clips in a pool.

Why a pool of processes. Identify is CPU-bound: the upload is decoded (in-process through PyAV, or
by an ffmpeg subprocess: ``ENCORE_QUERY_DECODER``), then numpy analyses it (the landmark peaks
and band envelope of :func:`~indexers.fingerprint.analyze_query`) and runs musicnn on it (the
clip's embedding, for its world neighbours). The Python and numpy parts of that hold the GIL often
enough that one process used one core under load (BENCHMARKS.md, "Load"). The
embedded store can't be shared by several server processes (qdrant-edge: one process owns a shard),
so the store and every query stay in the server process, and only the analysis, which needs no
store, moves to worker processes.

A work item is a file path (the upload is already on this machine's disk) and whether to embed; the
answer, :class:`ClipAnalysis`, is small (peaks, envelope, a 200-d vector: ~20 kB for 10 s). The
worker runs :func:`analyze_clip` exactly as the server process would, so answers are identical with
or without the pool.

Workers start with the ``spawn`` method (a fresh interpreter): forking the server would copy a
process that runs threads and a Rust storage engine, whose locks a child could inherit held.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from encore.errors import ServiceUnavailable
from indexers.decode import Decoder, load_audio, resample, validate
from indexers.fingerprint import Analysis, FingerprintParams, analyze_query

if TYPE_CHECKING:
    from encore.encoders.musicnn import MusicnnEncoder

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often a worker checks that the server process that started it is still there.
PARENT_CHECK_S = 1.0
#: Seconds a restarted pool is told to take before a client tries again (``Retry-After``).
RESTART_RETRY_AFTER_S = 2


@dataclass(frozen=True, slots=True)
class ClipRecipe:
    """How the facade analyses an identify clip, for a process that has nothing else (picklable).

    fingerprint : the catalog's fingerprint parameters (its ``sr`` is the rate fingerprints use)
    encoder_sr : the audio encoder's sample rate
    musicnn_checkpoint, musicnn_max_patches : the encoder, as :func:`encore.service.build_encoder`
        builds it from the settings
    min_seconds : shorter clips are refused
    max_audio_seconds : a file declaring more is refused
    max_query_seconds : no more of a clip than this is analysed
    decoder : how the clip is decoded (:func:`indexers.decode.load_audio`): ``pyav`` in-process or
        ``ffmpeg`` in a subprocess, resolved from ``query_decoder`` by the facade
    """

    fingerprint: FingerprintParams
    encoder_sr: int
    musicnn_checkpoint: Path | None
    musicnn_max_patches: int
    min_seconds: float
    max_audio_seconds: float
    max_query_seconds: float
    decoder: Decoder = "ffmpeg"

    def decode_sr(self, *, embed: bool) -> int:
        """The rate a clip is decoded at: the higher of the stages that will see it."""
        return max(self.fingerprint.sr, self.encoder_sr) if embed else self.fingerprint.sr


@dataclass(frozen=True, slots=True)
class ClipAnalysis:
    """What identify needs from a clip before it asks the store anything.

    analysis : peaks and band envelope of the clip at ``fingerprint.sr``
    embedding : np.ndarray [shape=(dim,), dtype=float32] or None, the clip's audio embedding
        (computed only when asked for)
    """

    analysis: Analysis
    embedding: np.ndarray | None


def prepare_clip(y: np.ndarray, *, sr: int, min_seconds: float, max_query_seconds: float) -> np.ndarray:
    """Validate a clip and cut it to the part identify analyses."""
    y = validate(y, sr=sr, min_seconds=min_seconds, name="clip")
    return y[: int(max_query_seconds * sr)]


def fingerprint_clip(y: np.ndarray, *, sr: int, params: FingerprintParams) -> Analysis:
    """The query analysis of a prepared clip sampled at ``sr`` (resampled to ``params.sr``)."""
    return analyze_query(resample(y, orig_sr=sr, target_sr=params.sr), params=params)


def embed_clip(y: np.ndarray, *, sr: int, encoder: MusicnnEncoder) -> np.ndarray:
    """The audio embedding of a prepared clip sampled at ``sr``."""
    enc_sr = encoder.description.sample_rate
    return encoder.embed(resample(y, orig_sr=sr, target_sr=enc_sr), sr=enc_sr).vector


def analyze_clip_file(path: str | Path, *, recipe: ClipRecipe, embed: bool,
                      encoder: Callable[[], MusicnnEncoder]) -> ClipAnalysis:
    """Decode, validate and analyse an identify clip, as the facade does in its own process.

    Raises the decoder's errors (:class:`~encore.errors.NotAudio`, :class:`~encore.errors.BadAudio`,
    :class:`~encore.errors.TooLarge`) with the same messages.
    """
    sr = recipe.decode_sr(embed=embed)
    y, _ = load_audio(path, sr=sr, min_seconds=recipe.min_seconds, max_seconds=recipe.max_audio_seconds,
                      truncate_to=recipe.max_query_seconds, decoder=recipe.decoder)
    y = prepare_clip(y, sr=sr, min_seconds=recipe.min_seconds, max_query_seconds=recipe.max_query_seconds)
    return ClipAnalysis(analysis=fingerprint_clip(y, sr=sr, params=recipe.fingerprint),
                        embedding=embed_clip(y, sr=sr, encoder=encoder()) if embed else None)


# --- inside a worker process ---------------------------------------------------------------

#: The worker's encoders, built on first use and kept for the process's life (weights load once).
_encoders: dict[tuple[Path | None, int], MusicnnEncoder] = {}


def _worker_encoder(recipe: ClipRecipe) -> MusicnnEncoder:
    key = (recipe.musicnn_checkpoint, recipe.musicnn_max_patches)
    if key not in _encoders:
        from encore.encoders.musicnn import MusicnnEncoder, MusicnnParams

        _encoders[key] = MusicnnEncoder(checkpoint=recipe.musicnn_checkpoint,
                                        params=MusicnnParams(max_patches=recipe.musicnn_max_patches))
    return _encoders[key]


def _worker_analyze(path: str, recipe: ClipRecipe, embed: bool) -> ClipAnalysis:
    return analyze_clip_file(path, recipe=recipe, embed=embed, encoder=lambda: _worker_encoder(recipe))


def _worker_warm(recipe: ClipRecipe) -> int:
    """Load the encoder's weights (and PyAV, when it decodes) now, not on the first clip; answers
    the worker's pid."""
    _worker_encoder(recipe).load()
    if recipe.decoder == "pyav":
        import av  # noqa: F401
    return os.getpid()


def _worker_start(parent: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the server shuts the pool down itself,
    # and a worker dying of the signal first would fail the requests still being answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="encore-parent-watch", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # A server killed outright (SIGKILL, OOM killer) never shuts its pool down, and an idle worker
    # would wait on its task queue forever: orphans holding memory. Re-parenting tells.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


# --- in the server process -----------------------------------------------------------------


class AnalysisPool:
    """``workers`` processes that run :func:`analyze_clip_file`, rebuilt when one dies.

    Parameters
    ----------
    recipe : how clips are analysed (the same in every worker)
    workers : processes; at least 1

    A worker killed mid-clip (SIGKILL, the OOM killer) breaks the whole executor: every clip in
    flight then fails with :class:`~encore.errors.ServiceUnavailable` (HTTP 503), the executor is
    replaced, and the next clip runs on fresh workers. Work is never retried by itself: a clip that
    kills its worker would take the others' work down with it again.
    """

    def __init__(self, recipe: ClipRecipe, *, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"an analysis pool needs at least 1 worker, not {workers}")
        self.recipe = recipe
        self.workers = workers
        self.restarts = 0
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise ServiceUnavailable("the service is shutting down; try again shortly",
                                         retry_after=RESTART_RETRY_AFTER_S)
            if self._executor is None:
                # Workers start on demand (spawn: a fresh interpreter each, ~1-2 s of imports).
                self._executor = ProcessPoolExecutor(max_workers=self.workers,
                                                     mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_worker_start, initargs=(os.getpid(),))
            return self._executor

    def warm_up(self) -> None:
        """Start every worker and load its weights (waits for them): the first clips then don't."""
        executor = self._current()
        # One task per worker, all submitted before any is waited for: each submit finding no idle
        # worker starts one. A fast worker may take two tasks; the other then loads on first use.
        futures = [executor.submit(_worker_warm, self.recipe) for _ in range(self.workers)]
        for future in futures:
            self._result(executor, future)

    def analyze_file(self, path: str | Path, *, embed: bool) -> ClipAnalysis:
        """:func:`analyze_clip_file` in a worker; its errors are raised here, as they were there."""
        executor = self._current()
        try:
            future = executor.submit(_worker_analyze, str(path), self.recipe, embed)
        except BrokenProcessPool as err:  # broken by another clip, not yet replaced
            self._replace(executor)
            raise self._lost() from err
        except RuntimeError as err:  # shut down since _current() (the app is closing)
            raise ServiceUnavailable("the service is shutting down; try again shortly",
                                     retry_after=RESTART_RETRY_AFTER_S) from err
        return self._result(executor, future)

    def _result(self, executor: ProcessPoolExecutor, future: Future[T]) -> T:
        try:
            return future.result()
        except BrokenProcessPool as err:
            self._replace(executor)
            raise self._lost() from err
        except CancelledError as err:  # close() cancelled it while it waited for a worker
            raise ServiceUnavailable("the service is shutting down; try again shortly",
                                     retry_after=RESTART_RETRY_AFTER_S) from err

    @staticmethod
    def _lost() -> ServiceUnavailable:
        return ServiceUnavailable("the clip's analysis was interrupted (a worker process stopped); "
                                  "the workers are restarting, try again shortly", retry_after=RESTART_RETRY_AFTER_S)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """Drop ``broken`` (once, whoever notices first); the next clip starts fresh workers."""
        with self._lock:
            if self._executor is not broken:
                return
            self._executor = None
            self.restarts += 1
        log.error("a clip-analysis worker process stopped unexpectedly; the pool of %d is restarted "
                  "(restart %d)", self.workers, self.restarts)
        # The executor has already terminated its other workers; this reaps them.
        broken.shutdown(wait=True, cancel_futures=True)

    def pids(self) -> list[int]:
        """The live workers' process ids (for operators and tests)."""
        with self._lock:
            executor = self._executor
        procs = dict(getattr(executor, "_processes", None) or {})
        return sorted(pid for pid, proc in procs.items() if proc.is_alive())

    def close(self) -> None:
        """Stop the workers, cancelling clips still waiting for one; waits for the running ones."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. under ``taskset`` or a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def serving_workers(configured: int | None) -> int:
    """Analysis workers for a server: as configured, else one per usable core.

    On a single core a pool would only add a process and its memory: the clip's analysis and the
    store's queries would still share that core.
    """
    if configured is not None:
        return configured
    cores = usable_cores()
    return cores if cores > 1 else 0
