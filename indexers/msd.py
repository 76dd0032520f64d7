"""Read the Million Song Dataset's HDF5 files into :class:`MsdTrack` records.

The MSD (Bertin-Mahieux et al., 2011) ships as HDF5 files written by PyTables
(``hdf5_utils.py`` / ``hdf5_getters.py`` of the MSongsDB code). One reader serves its three layouts:

* **Per-track files** (``TRAAAAW128F429D538.h5``): groups ``/metadata``, ``/analysis`` and
  ``/musicbrainz``, each holding a one-row compound table ``songs``, plus variable-length arrays:
  ``/metadata/artist_terms`` (with ``artist_terms_freq`` and ``artist_terms_weight``),
  ``/analysis/segments_timbre`` ``(n_segments, 12)``, ``/musicbrainz/artist_mbtags`` (with
  ``artist_mbtags_count``) and more.
* **Aggregate files**: the same layout with one row per track; a track's part of each array runs
  from the ``idx_*`` column of its row (``idx_segments_timbre``, ``idx_artist_terms``,
  ``idx_artist_mbtags``) to the next row's.
* **The summary file** (``msd_summary_file.h5``): the three ``songs`` tables, one row per track
  (a million rows), and no arrays, so ``timbre`` is None and ``terms`` empty.

A folder is walked recursively for ``*.h5`` files, in sorted order. Tables are read in blocks of
rows and only the columns used here, so the summary file streams in bounded memory.

Conventions of the MSD that the reader undoes: strings are fixed-length UTF-8 bytes (decoded; an
empty string is None), an unknown year is 0 and an unknown tempo, duration, energy or
danceability is 0.0 (None here; energy and danceability are 0 in almost every MSD track),
``key`` is a pitch class number (0 = C) and ``mode`` 1 for major, 0 for minor.

Requires ``h5py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from encore.errors import BadInput, BadMetadata, EncoreError
from indexers.describe import MODES, PITCH_CLASSES

if TYPE_CHECKING:
    import h5py

#: The genres Encore knows; MSD terms are mapped onto these.
GENRES = ("rock", "pop", "hip-hop", "jazz", "electronic", "metal", "classical", "country", "folk", "blues",
          "r&b", "reggae", "punk", "soul", "latin")

#: Term -> genre rules, tried in this order on a normalised term (lower case, ``-``/``_``/``/``
#: as spaces): the first that matches wins, so the specific comes before the general
#: ("pop punk" is punk, "blues rock" blues, "trip hop" electronic, "reggaeton" latin).
_GENRE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((genre, re.compile(pattern)) for genre, pattern in (
    ("r&b", r"\br ?& ?b\b|\brnb\b|\brhythm (?:and|n) blues\b|\bnew jack swing\b|\bdoo wop\b|\bquiet storm\b"),
    ("metal", r"metal|\bgrindcore\b|\bthrash\b|\bdjent\b"),
    ("hip-hop", r"\bhip ?hop\b|\brap\b|\bgangsta\b|\bcrunk\b|\bgrime\b|\bturntablism\b|\bg funk\b|\bdirty south\b"),
    ("punk", r"punk|\bemo\b|\bscreamo\b"),
    ("reggae", r"\breggae\b|\bdancehall\b|\bska\b|\bdub\b|\brocksteady\b|\bragga\b"),
    ("latin", r"\blatin|\bsalsa\b|\breggaeton\b|\bmerengue\b|\bbachata\b|\bcumbia\b|\btango\b|\bbossa nova\b"
              r"|\bsamba\b|\bmpb\b|\branchera\b|\bmariachi\b|\btejano\b|\bflamenco\b|\bbolero\b|\bmambo\b"
              r"|\bnorte[nñ]o\b|\bvallenato\b"),
    ("blues", r"\bblues\b"),
    ("country", r"\bcountry\b|\bbluegrass\b|\bhonky tonk\b|\bamericana\b|\bwestern swing\b"),
    ("folk", r"\bfolk|\bsinger songwriter\b|\bceltic\b"),
    ("jazz", r"\bjazz\b|\bbebop\b|\bhard bop\b|\bswing\b|\bbig band\b|\bdixieland\b|\bragtime\b"),
    ("soul", r"\bsoul\b|\bmotown\b|\bfunk\b|\bgospel\b"),
    ("classical", r"\bclassical\b|\bbaroque\b|\bopera\b|\borchestra|\bsymphon|\bchamber music\b|\bchoral\b"
                  r"|\bmedieval\b|\brenaissance\b|\bromantic era\b"),
    ("electronic", r"\belectronic|\btechno\b|\bhouse\b|\btrance\b|\bdrum (?:and|n) bass\b|\bdnb\b|\bjungle\b"
                   r"|\bdubstep\b|\bambient\b|\bidm\b|\belectro\b|\bedm\b|\bdowntempo\b|\btrip hop\b"
                   r"|\bbreakbeat\b|\bbig beat\b|\bchill ?out\b|\bindustrial\b|\beurodance\b|\bhardstyle\b"
                   r"|\bhappy hardcore\b|\bgabber\b|\bsynthwave\b|\bchiptune\b|\bglitch\b|\buk garage\b"),
    ("pop", r"\bpop\b|\bsynthpop\b|\belectropop\b|\beuropop\b|\bdisco\b|\bboy band\b|\bgirl group\b"),
    ("rock", r"rock\b|\bgrunge\b|\balternative\b|\bindie\b|\bpsychedelic\b|\bshoegaze\b|\bnew wave\b"
             r"|\brockabilly\b|\bbritpop\b"),
))

#: Rows read from each table at a time.
BATCH_ROWS = 4096


@dataclass(frozen=True, slots=True)
class MsdTrack:
    """One MSD track, in Encore's terms. Unknown values are None."""

    #: Echo Nest track id (``TRAAAAW128F429D538``).
    track_id: str
    title: str | None
    artist: str | None
    #: The MSD's ``release``.
    album: str | None
    year: int | None
    #: One of :data:`GENRES`, from the track's tags (see :func:`genre_from_terms`).
    genre: str | None
    #: Beats per minute.
    tempo: float | None
    #: Echo Nest loudness, dB.
    loudness: float | None
    #: Tonic pitch class, one of ``indexers.describe.PITCH_CLASSES``.
    key: str | None
    #: ``"major"`` or ``"minor"``.
    mode: str | None
    #: Seconds.
    duration: float | None
    #: Echo Nest energy and danceability, 0-1 (None where the MSD has 0, i.e. nearly always).
    energy: float | None
    danceability: float | None
    #: Mean of the Echo Nest segment timbre vectors, ``[shape=(12,), dtype=float32]``; None in the
    #: summary file or for a track without segments.
    timbre: np.ndarray | None
    #: The artist's Echo Nest terms, highest weight first (then highest frequency); empty in the summary file.
    terms: tuple[str, ...]
    #: Echo Nest song id and the artist's MusicBrainz id.
    song_id: str | None = None
    artist_mbid: str | None = None


def genre_from_terms(terms: Iterable[str]) -> str | None:
    """The genre of the first term, in the order given, that maps to one of :data:`GENRES`.

    Terms that name no genre (``"british"``, ``"00s"``, ``"female vocalist"``) are passed over.
    """
    for term in terms:
        text = " ".join(re.sub(r"[-_/]", " ", term.lower()).split())
        for genre, pattern in _GENRE_RULES:
            if pattern.search(text):
                return genre
    return None


def read_msd(path: str | Path, *, batch_rows: int = BATCH_ROWS) -> Iterator[MsdTrack]:
    """Tracks of an MSD file (per-track, aggregate or summary) or of a folder of them.

    Parameters
    ----------
    path : an ``.h5`` file, or a folder searched recursively for ``*.h5`` (hidden entries skipped)
    batch_rows : table rows read at a time

    Returns
    -------
    tracks : iterator of MsdTrack, in file order (folders: files in sorted path order)

    Raises
    ------
    BadInput
        at once, when ``path`` does not exist or a folder holds no ``.h5`` file.
    BadMetadata
        while iterating, naming the file, when a file is not HDF5, is truncated, or lacks the MSD's tables.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.h5")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise BadInput(f"{path}: no .h5 files in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise BadInput(f"{path}: no such file or folder")
    return _read_files(files, batch_rows=max(1, int(batch_rows)))


def _read_files(files: Sequence[Path], *, batch_rows: int) -> Iterator[MsdTrack]:
    h5py = _h5py()
    for file in files:
        try:
            h5 = h5py.File(file, "r")
        except OSError as err:
            raise BadMetadata(f"{file.name}: not a readable HDF5 file ({_reason(err)})") from None
        with h5:
            try:
                yield from _read_file(h5, name=file.name, batch_rows=batch_rows)
            except (OSError, KeyError, ValueError, TypeError) as err:
                raise BadMetadata(f"{file.name}: unreadable MSD file ({_reason(err)})") from None


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise EncoreError("reading Million Song Dataset files needs h5py: pip install h5py") from None
    return h5py


def _reason(err: BaseException) -> str:
    """One line from an h5py/HDF5 error ("Unable to open file (file signature not found)" -> the parenthesis)."""
    text = " ".join(str(err).split()) or type(err).__name__
    inner = re.search(r"\(([^()]+)\)\s*$", text)
    return inner.group(1) if inner else text


_METADATA = ("title", "artist_name", "release", "song_id", "artist_mbid", "genre", "idx_artist_terms")
_ANALYSIS = ("track_id", "tempo", "loudness", "key", "mode", "duration", "energy", "danceability",
             "idx_segments_timbre")
_MUSICBRAINZ = ("year", "idx_artist_mbtags")


def _table(h5: h5py.File, group: str, *, name: str, required: bool) -> Any:
    node = h5.get(f"/{group}/songs")
    if node is None or node.dtype.names is None:
        if required:
            raise BadMetadata(f"{name}: not a Million Song Dataset file (no /{group}/songs table)")
        return None
    return node


def _read_file(h5: h5py.File, *, name: str, batch_rows: int) -> Iterator[MsdTrack]:
    metadata = _table(h5, "metadata", name=name, required=True)
    analysis = _table(h5, "analysis", name=name, required=True)
    musicbrainz = _table(h5, "musicbrainz", name=name, required=False)
    if "track_id" not in analysis.dtype.names:
        raise BadMetadata(f"{name}: not a Million Song Dataset file (/analysis/songs has no track_id column)")
    n = analysis.shape[0]
    for table, group in ((metadata, "metadata"), (musicbrainz, "musicbrainz")):
        if table is not None and table.shape[0] != n:
            raise BadMetadata(f"{name}: /{group}/songs has {table.shape[0]} rows, /analysis/songs {n}")

    timbre = _Ragged(h5, analysis, "idx_segments_timbre", ("/analysis/segments_timbre",))
    terms = _Ragged(h5, metadata, "idx_artist_terms",
                    ("/metadata/artist_terms", "/metadata/artist_terms_weight", "/metadata/artist_terms_freq"))
    mbtags = _Ragged(h5, musicbrainz, "idx_artist_mbtags",
                     ("/musicbrainz/artist_mbtags", "/musicbrainz/artist_mbtags_count"))

    for start in range(0, n, batch_rows):
        stop = min(n, start + batch_rows)
        meta = _rows(metadata, _METADATA, start, stop)
        ana = _rows(analysis, _ANALYSIS, start, stop)
        mb = _rows(musicbrainz, _MUSICBRAINZ, start, stop)
        for j in range(stop - start):
            row = start + j
            track_terms = _ranked_terms(*terms.part(row))
            tags = _ranked_terms(*mbtags.part(row))
            own_genre = _text(meta["genre"][j])
            segments = timbre.part(row)
            vectors = segments[0] if segments else None
            yield MsdTrack(
                track_id=_text(ana["track_id"][j]) or "",
                title=_text(meta["title"][j]),
                artist=_text(meta["artist_name"][j]),
                album=_text(meta["release"][j]),
                year=_positive_int(mb["year"][j]),
                genre=genre_from_terms([*([own_genre] if own_genre else []), *track_terms, *tags]),
                tempo=_positive(ana["tempo"][j]),
                loudness=_finite(ana["loudness"][j]),
                key=_key(ana["key"][j]),
                mode=_mode(ana["mode"][j]),
                duration=_positive(ana["duration"][j]),
                energy=_positive(ana["energy"][j]),
                danceability=_positive(ana["danceability"][j]),
                timbre=(vectors.reshape(-1, 12).mean(axis=0).astype(np.float32)
                        if vectors is not None and vectors.size else None),
                terms=tuple(track_terms),
                song_id=_text(meta["song_id"][j]),
                artist_mbid=_text(meta["artist_mbid"][j]),
            )


class _Ragged:
    """Arrays that hold every row's values back to back, cut per row by an ``idx_*`` column."""

    def __init__(self, h5: h5py.File, table: Any, idx_column: str, paths: tuple[str, ...]) -> None:
        self.arrays = [h5.get(p) for p in paths]
        present = table is not None and all(a is not None for a in self.arrays)
        if not present or idx_column not in table.dtype.names:
            self.starts = None
            return
        starts = np.asarray(table.fields(idx_column)[:], dtype=np.int64)
        total = min(a.shape[0] for a in self.arrays)
        self.starts = np.append(starts, total)

    def part(self, row: int) -> list[np.ndarray]:
        """Each array's values for ``row`` (an empty list when the file has no such arrays)."""
        if self.starts is None:
            return []
        a, b = int(self.starts[row]), int(self.starts[row + 1])
        return [arr[a:b] if b > a else arr[0:0] for arr in self.arrays]


def _rows(table: Any, wanted: tuple[str, ...], start: int, stop: int) -> dict[str, Sequence[Any]]:
    """Columns ``wanted`` of rows ``[start, stop)``; a column the table lacks reads as None."""
    missing: list[Any] = [None] * (stop - start)
    if table is None:
        return dict.fromkeys(wanted, missing)
    names = [c for c in wanted if c in table.dtype.names]
    if not names:
        return dict.fromkeys(wanted, missing)
    block = table.fields(names)[start:stop]
    return {c: block[c] if c in names else missing for c in wanted}


def _ranked_terms(terms: np.ndarray | None = None, weight: np.ndarray | None = None,
                  freq: np.ndarray | None = None) -> list[str]:
    """Terms (decoded, empty ones dropped), highest weight first, then highest frequency, then file order."""
    if terms is None or terms.size == 0:
        return []
    n = terms.shape[0]
    w = np.zeros(n) if weight is None else np.asarray(weight, dtype=np.float64)[:n]
    f = np.zeros(n) if freq is None else np.asarray(freq, dtype=np.float64)[:n]
    order = np.lexsort((np.arange(n), -f, -w))
    decoded = (_text(terms[i]) for i in order)
    return [t for t in decoded if t]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | np.bytes_):
        value = bytes(value).decode("utf-8", errors="replace")
    text = str(value).strip().strip("\x00")
    return text or None


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return x if np.isfinite(x) else None


def _positive(value: Any) -> float | None:
    x = _finite(value)
    return x if x is not None and x > 0 else None


def _positive_int(value: Any) -> int | None:
    return int(value) if value is not None and int(value) > 0 else None


def _key(value: Any) -> str | None:
    return PITCH_CLASSES[int(value)] if value is not None and 0 <= int(value) < 12 else None


def _mode(value: Any) -> str | None:
    if value is None or int(value) not in (0, 1):
        return None
    return MODES[0] if int(value) == 1 else MODES[1]
