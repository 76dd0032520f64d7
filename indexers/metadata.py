"""Track metadata: from a metadata file, else the file's tags, else its name.

The metadata file (see the contract) is CSV with a header, or JSON Lines. The column or key ``file``
holds an audio file's name or its path as given; the others any of ``title``, ``artist``, ``album``,
``year``, ``genre`` (unknown columns are ignored). A malformed file raises :class:`BadMetadata`
naming the line, before anything is indexed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePath
from typing import Any

import mutagen

from encore.errors import BadMetadata, EncoreError
from indexers.decode import probe

TEXT_FIELDS = ("title", "artist", "album", "genre")
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
#: Control characters (and the Unicode line separators): never part of a title or a name.
_CONTROL = re.compile(r"\s*[\x00-\x1f\x7f-\x9f\u2028\u2029]+\s*")


def clean_text(value: str | None) -> str | None:
    """``value`` stripped, each run of control characters (a newline in a file name, a NUL in a tag)
    made one space, so that a title prints on one line; None when nothing is left."""
    if value is None:
        return None
    return _CONTROL.sub(" ", value).strip() or None


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """What is known about one track; any field may be missing."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    year: int | None = None
    genre: str | None = None

    def filled_from(self, other: TrackInfo) -> TrackInfo:
        """This info, with the fields it lacks taken from ``other``."""
        return replace(self, **{f.name: getattr(other, f.name) for f in fields(self) if getattr(self, f.name) is None})

    @property
    def complete(self) -> bool:
        return all(getattr(self, f.name) is not None for f in fields(self))


@dataclass(frozen=True, slots=True)
class MetadataRow:
    """One row of a metadata file: the ``file`` it describes, where it was, and what it says."""

    file: str
    line: int
    info: TrackInfo


class MetadataTable:
    """Rows of a metadata file, looked up by the audio file they describe.

    A row's ``file`` matches a path when it is the same file (an absolute path, or one relative to the
    metadata file's folder or to the working folder), or when it names the path's last components
    (``song.mp3``, ``album/song.mp3``). The longest match wins. Keys never open a file, so a key such
    as ``../../etc/passwd`` can only fail to match.
    """

    def __init__(self, rows: Iterable[MetadataRow], *, base_dir: Path | None = None, source: str = "metadata") -> None:
        self.source = source
        self.rows: list[MetadataRow] = []
        self._by_abs: dict[str, MetadataRow] = {}
        self._by_tail: dict[tuple[str, ...], MetadataRow] = {}
        seen: dict[str, MetadataRow] = {}
        for row in rows:
            key = os.path.normpath(row.file)
            if key in seen:
                raise BadMetadata(
                    f"{source} line {row.line}: a second row for {row.file!r} (the first is on line {seen[key].line})"
                )
            seen[key] = row
            self.rows.append(row)
            parts = PurePath(key).parts
            if PurePath(key).is_absolute():
                self._by_abs[os.path.normpath(key)] = row
                continue
            if ".." not in parts:
                self._by_tail[parts] = row
            for base in {base_dir, Path.cwd()} - {None}:
                self._by_abs.setdefault(os.path.normpath(os.path.join(os.path.abspath(base), key)), row)

    def __len__(self) -> int:
        return len(self.rows)

    def lookup(self, path: str | Path) -> MetadataRow | None:
        """The row describing ``path``, or None."""
        absolute = os.path.normpath(os.path.abspath(path))
        if absolute in self._by_abs:
            return self._by_abs[absolute]
        parts = PurePath(absolute).parts
        for n in range(len(parts), 0, -1):
            row = self._by_tail.get(parts[-n:])
            if row is not None:
                return row
        return None


def read_metadata(path: str | Path) -> MetadataTable:
    """Read a CSV or JSON Lines metadata file.

    Raises
    ------
    BadMetadata
        naming the file and line: not UTF-8, malformed CSV or JSON, no ``file`` column or key,
        a repeated file, a year that is not a positive integer.
    """
    path = Path(path)
    if path.is_dir():
        raise BadMetadata(f"{path}: a folder, not a metadata file (CSV or JSONL)")
    if not path.is_file():
        raise BadMetadata(f"{path}: no such metadata file")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise BadMetadata(f"{path.name}: binary data, not a CSV or JSONL metadata file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise BadMetadata(f"{path.name} line {line}: not UTF-8 text") from None
    if _looks_like_jsonl(path, text):
        rows = _read_jsonl(text, source=path.name)
    else:
        rows = _read_csv(text, source=path.name, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    return MetadataTable(rows, base_dir=path.parent, source=path.name)


def _looks_like_jsonl(path: Path, text: str) -> bool:
    if path.suffix.lower() in JSONL_SUFFIXES:
        return True
    if path.suffix.lower() in (".csv", ".tsv"):
        return False
    return text.lstrip().startswith("{")


def _read_csv(text: str, *, source: str, delimiter: str) -> list[MetadataRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[MetadataRow] = []
    try:
        header = next(reader, None)
        if header is None:
            raise BadMetadata(f"{source}: the metadata file is empty")
        columns = [name.strip().lower() for name in header]
        if "file" not in columns:
            found = clean_text(", ".join(columns)) or "nothing"
            found = found if len(found) <= 60 else found[:57] + "..."  # one readable line, not a whole file
            raise BadMetadata(f"{source} line 1: the header has no 'file' column (it has {found})")
        repeated = sorted({c for c in columns if columns.count(c) > 1 and c})
        if repeated:
            raise BadMetadata(f"{source} line 1: the header repeats column {repeated[0]!r}")
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise BadMetadata(f"{source} line {line}: {len(values)} fields, but the header has {len(columns)}")
            rows.append(_row(dict(zip(columns, values, strict=True)), line=line, source=source))
    except csv.Error as err:
        raise BadMetadata(f"{source} line {reader.line_num}: malformed CSV ({err})") from None
    return rows


def _read_jsonl(text: str, *, source: str) -> list[MetadataRow]:
    rows: list[MetadataRow] = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as err:
            raise BadMetadata(f"{source} line {line}: malformed JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise BadMetadata(f"{source} line {line}: expected a JSON object, got {type(record).__name__}")
        rows.append(_row({str(k).strip().lower(): v for k, v in record.items()}, line=line, source=source))
    return rows


def _row(record: Mapping[str, Any], *, line: int, source: str) -> MetadataRow:
    file = record.get("file")
    if not isinstance(file, str) or not file.strip():
        raise BadMetadata(f"{source} line {line}: 'file' is missing or empty")
    texts: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        value = record.get(name)
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int | float)):
            raise BadMetadata(f"{source} line {line}: {name} must be text, got {value!r}")
        texts[name] = _clean(str(value)) if value is not None else None
    return MetadataRow(
        file=file.strip(), line=line, info=TrackInfo(**texts, year=_year(record.get("year"), line=line, source=source))
    )


def _year(value: object, *, line: int, source: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        year = value
    elif isinstance(value, str) and value.strip().isdigit():
        year = int(value.strip())
    else:
        raise BadMetadata(f"{source} line {line}: year must be an integer, got {value!r}")
    if not 1 <= year <= 9999:
        raise BadMetadata(f"{source} line {line}: year {year} is out of range")
    return year


def _clean(value: str | None) -> str | None:
    return clean_text(value)


def read_tags(path: str | Path) -> TrackInfo:
    """The file's own tags (ID3, Vorbis comments, MP4 atoms, RIFF INFO...); empty when it has none."""
    values: dict[str, str] = {}
    try:
        audio = mutagen.File(path, easy=True)
        tags = audio.tags if audio is not None else None
    except Exception:  # noqa: BLE001 - tags are a best-effort fallback; a file mutagen chokes on may still decode
        tags = None
    if tags:
        for key in (*TEXT_FIELDS, "date"):
            found = [t for t in (clean_text(str(v)) for v in (tags.get(key) or [])) if t]
            if found:
                values[key] = found[0]
    if not values:
        try:
            values = {k: t for k, v in probe(path).tags.items() if (t := clean_text(v))}
        except EncoreError:
            return TrackInfo()
    year = re.match(r"\s*(\d{4})", values.get("date") or values.get("year") or "")
    return TrackInfo(
        title=values.get("title"),
        artist=values.get("artist") or values.get("album_artist"),
        album=values.get("album"),
        year=int(year.group(1)) if year else None,
        genre=values.get("genre"),
    )


def resolve_info(path: str | Path, *, table: MetadataTable | None = None) -> TrackInfo:
    """What to store for ``path``: its metadata row, fields it lacks from the tags, the title from the name."""
    row = table.lookup(path) if table is not None else None
    info = row.info if row is not None else TrackInfo()
    if not info.complete:
        info = info.filled_from(read_tags(path))
    if info.title is None:
        info = replace(info, title=clean_text(Path(path).stem) or "untitled")
    return info
