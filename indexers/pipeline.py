"""The ingest pipeline: find audio files, work out their metadata, add them, report what happened.

This is the one ingest stage with I/O and side effects; the stages it composes are plain functions.
A file that can't be used (not audio, silent, truncated, too long...) is rejected with its reason
and the run goes on; a storage failure stops it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from tqdm import tqdm

from encore.catalog import TrackMeta
from encore.errors import BadInput
from encore.world import TagSpace, WorldTrack, world_id
from indexers.metadata import MetadataTable, read_metadata, resolve_info
from schemas.ingest import BatchReport, FileOutcome, IngestReport

if TYPE_CHECKING:
    from encore.service import Encore
    from encore.world import TagSpace, WorldTrack

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif"}
)


def find_audio_files(paths: Iterable[str | Path]) -> list[tuple[Path, str | None]]:
    """Expand ``paths`` into the audio files to ingest, in a deterministic order.

    Files named explicitly are kept whatever their extension (ffmpeg decides). Folders are walked
    recursively in sorted order, keeping files with an audio extension and skipping hidden files and
    folders. A symbolic link in a folder that leads outside it is refused (its reason is returned),
    and symlinked folders are not followed.

    Returns
    -------
    files : list of (path, reason) where ``reason`` is None for a file to ingest, else why it is refused

    Raises
    ------
    BadInput
        when a path does not exist, or nothing at all is found.
    """
    given = [Path(p) for p in paths]
    if not given:
        raise BadInput("no paths given")
    missing = [p for p in given if not p.exists()]
    if missing:
        raise BadInput(f"{missing[0]}: no such file or folder")
    found: list[tuple[Path, str | None]] = []
    for path in given:
        if path.is_dir():
            found.extend(_walk(path))
        else:
            found.append((path, None))
    unique: dict[str, tuple[Path, str | None]] = {}
    for path, reason in found:
        unique.setdefault(os.path.realpath(path), (path, reason))
    if not unique:
        raise BadInput(f"no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in {', '.join(map(str, given))}")
    return list(unique.values())


def _walk(folder: Path) -> list[tuple[Path, str | None]]:
    root = os.path.realpath(folder)
    found: list[tuple[Path, str | None]] = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
                continue
            path = Path(current) / name
            target = os.path.realpath(path)
            if os.path.commonpath([root, target]) != root:
                found.append((path, f"a link to {target}, outside {folder}"))
            else:
                found.append((path, None))
    return found


def index_catalog(
    enc: Encore,
    paths: Iterable[str | Path],
    *,
    metadata: str | Path | MetadataTable | None = None,
    progress: bool = True,
) -> IngestReport:
    """Add audio files and folders (recursively) to the catalog tier.

    Parameters
    ----------
    enc : an opened facade
    paths : files and folders
    metadata : a metadata file (CSV or JSONL) or an already read table; read before anything is added,
        so a malformed one stores nothing
    progress : show a progress bar on stderr (when it is a terminal)

    Returns
    -------
    IngestReport
        counts and one outcome per file: added, exists (the same audio was already indexed) or
        rejected with the reason.

    Raises
    ------
    BadInput
        a path does not exist, nothing was found, or the metadata file is malformed (BadMetadata).
    EncoreError
        the store failed; files added before stay added.
    """
    return _index_files(enc, paths, tier="catalog", metadata=metadata, progress=progress)


def index_world(
    enc: Encore,
    paths: Iterable[str | Path],
    *,
    metadata: str | Path | MetadataTable | None = None,
    progress: bool = True,
) -> IngestReport:
    """Add audio files and folders to the world tier: embed, tag, describe, store.

    Year and genre come from the metadata file or the file's tags; the rest as for
    :func:`index_catalog`, which this mirrors (same report, same error behaviour).
    """
    return _index_files(enc, paths, tier="world", metadata=metadata, progress=progress)


def _index_files(
    enc: Encore,
    paths: Iterable[str | Path],
    *,
    tier: Literal["catalog", "world"],
    metadata: str | Path | MetadataTable | None,
    progress: bool,
) -> IngestReport:
    started = time.perf_counter()
    table = read_metadata(metadata) if isinstance(metadata, str | Path) else metadata
    files = find_audio_files(paths)
    report = IngestReport(tier=tier)
    with tqdm(files, desc=f"indexing ({tier})", unit="file", file=sys.stderr,
              disable=None if progress else True) as bar:
        for path, refused in bar:
            bar.set_postfix_str(path.name[:40], refresh=False)
            if refused is not None:
                report.record(FileOutcome(path=str(path), status="rejected", reason=refused))
                continue
            report.record(add_file(enc, path, table, tier=tier))
    report.took_s = round(time.perf_counter() - started, 3)
    return report


def add_file(enc: Encore, path: Path, table: MetadataTable | None, *, tier: str) -> FileOutcome:
    """Add one audio file to ``tier`` ("catalog" or "world"), its metadata resolved from ``table``.

    A file that can't be used is a ``rejected`` outcome with the reason (BadInput and its kin);
    any other error (the store failing) is raised, and what was stored before stays stored.
    """
    info = resolve_info(path, table=table)
    info = replace(info, title=info.title or path.stem)
    try:
        if tier == "catalog":
            created = enc.add_catalog_file(path, meta=TrackMeta(title=info.title, artist=info.artist,
                                                                album=info.album))
        else:
            created = enc.add_world_file(path, info=info)
    except BadInput as err:
        return FileOutcome(path=str(path), status="rejected", reason=str(err),
                           title=info.title, artist=info.artist, album=info.album)
    return FileOutcome(
        path=str(path),
        status=created.status,
        track_id=created.track_id,
        title=created.title or info.title,
        artist=created.artist if created.title else info.artist,
        album=created.album if created.title else info.album,
    )


def ingest_batches(
    enc: Encore,
    batches: Iterable[list[WorldTrack]],
    *,
    total: int | None,
    source: str,
    progress: bool = True,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> BatchReport:
    """Store ready-made world tracks batch by batch, skipping those already stored.

    Track ids are deterministic, so running an interrupted import again stores only what is
    missing: nothing is duplicated and nothing is lost.

    ``on_batch`` is called with the report so far after each batch is stored (background jobs
    read their progress from it); an exception it raises stops the run between two batches.
    """
    started = time.perf_counter()
    report = BatchReport(source=source)
    with tqdm(total=total, desc=f"world ({source})", unit="track", file=sys.stderr,
              disable=None if progress else True) as bar:
        for batch in batches:
            added = enc.add_world_tracks(batch)
            report.added += added
            report.exists += len(batch) - added
            bar.update(len(batch))
            if on_batch is not None:
                on_batch(report)
    report.took_s = round(time.perf_counter() - started, 3)
    return report


def msd_batches(path: str | Path, *, tag_space: TagSpace, batch: int = 1000) -> Iterator[list[WorldTrack]]:
    """Million Song Dataset tracks as world tracks, in batches.

    The MSD has no audio, so no audio embedding: a track's ``msd_timbre`` vector is the mean of
    its segments' 12 Echo Nest timbre coefficients (per-track files; the summary file has none),
    its ``tags`` come from its artist's terms that are also encoder tags (weighted by rank), and
    tempo and loudness from the Echo Nest analysis. Ids derive from the MSD track id, so a
    re-import after an interruption adds only what is missing.
    """
    from indexers.msd import read_msd

    names = {n.casefold(): n for n in tag_space.names}
    pending: list[WorldTrack] = []
    for t in read_msd(path):
        ranked = [names[term.casefold()] for term in t.terms if term.casefold() in names]
        tags = {name: round(1.0 - 0.5 * i / max(1, len(ranked)), 3) for i, name in enumerate(ranked)}
        vectors: dict[str, np.ndarray] = {}
        if t.timbre is not None and np.any(t.timbre):
            vectors["msd_timbre"] = np.asarray(t.timbre, dtype=np.float32)
        if tags:
            probs = np.array([tags.get(n, 0.0) for n in tag_space.names], dtype=np.float32)
            vectors["tags"] = tag_space.vector(probs)
        pending.append(WorldTrack(
            track_id=world_id("msd", t.track_id), source="msd", title=t.title, artist=t.artist, album=t.album,
            year=t.year, genre=t.genre, tempo=t.tempo, energy=t.energy, danceability=t.danceability,
            loudness=t.loudness, key=t.key, mode=t.mode, duration_s=t.duration, tags=tags or None, vectors=vectors,
        ))
        if len(pending) == batch:
            yield pending
            pending = []
    if pending:
        yield pending
