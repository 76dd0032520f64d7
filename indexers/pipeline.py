"""The ingest pipeline: find audio files, work out their metadata, add them, report what happened.

This is the one ingest stage with I/O and side effects; the stages it composes are plain functions.
A file that can't be used (not audio, silent, truncated, too long...) is rejected with its reason
and the run goes on; a storage failure stops it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from encore.catalog import TrackMeta
from encore.errors import BadInput
from indexers.metadata import MetadataTable, read_metadata, resolve_info
from schemas.ingest import FileOutcome, IngestReport

if TYPE_CHECKING:
    from encore.service import Encore

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
    started = time.perf_counter()
    table = read_metadata(metadata) if isinstance(metadata, str | Path) else metadata
    files = find_audio_files(paths)
    report = IngestReport(tier="catalog")
    with tqdm(files, desc="indexing", unit="file", file=sys.stderr, disable=None if progress else True) as bar:
        for path, refused in bar:
            bar.set_postfix_str(path.name[:40], refresh=False)
            if refused is not None:
                report.record(FileOutcome(path=str(path), status="rejected", reason=refused))
                continue
            report.record(_add_one(enc, path, table))
    report.took_s = round(time.perf_counter() - started, 3)
    return report


def _add_one(enc: Encore, path: Path, table: MetadataTable | None) -> FileOutcome:
    info = resolve_info(path, table=table)
    meta = TrackMeta(title=info.title or path.stem, artist=info.artist, album=info.album)
    try:
        created = enc.add_catalog_file(path, meta=meta)
    except BadInput as err:
        return FileOutcome(path=str(path), status="rejected", reason=str(err),
                           title=meta.title, artist=meta.artist, album=meta.album)
    return FileOutcome(
        path=str(path),
        status=created.status,
        track_id=created.track_id,
        title=created.title or meta.title,
        artist=created.artist if created.title else meta.artist,
        album=created.album if created.title else meta.album,
    )
