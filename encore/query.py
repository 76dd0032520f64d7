"""Query interpretation: what a typed (or transcribed) search means, explainably.

``interpret("80s rock but not Queen", vocabulary=...)`` finds, in this order, so that earlier
readings keep their words:

1. artists behind a trigger, fuzzily matched against the collection's artists: ``like X`` /
   ``sounds like X`` / ``similar to X`` (sounds like the artist's centroid), ``by X`` / ``from X``
   (only that artist), ``not X`` / ``but not X`` / ``no X`` / ``without X`` / ``except X`` (left
   out). "like daft punk" is the artist, so "punk" is not also read as a genre;
2. tempo in bpm ("over 120 bpm", "under 90 bpm", "around 128 bpm", "100-120 bpm");
3. years: decades ("80s", "eighties", "'90s", "1990s", "early 80s"), ranges ("from 1985 to 1990",
   "between 1970 and 1975"), bounds ("before 1970", "after 2000", "since 2010"), single years.
   Tempos and years may be said in words, as a voice transcript has them: "over one hundred
   twenty bpm", "a hundred and forty bpm", "one twenty eight bpm", "nineteen eighty five",
   "two thousand ten", "twenty ten", "the nineteen eighties", "the twenty tens";
4. an artist's name on its own (an exact match only): that artist;
5. words and phrases, longest first: genres and their synonyms, the mood table
   (``encore/data/moods.json``: moods, activities, tempo words, instruments, vocals) and era words
   ("recent", "oldies"); each may be negated ("not sad", "no vocals", "without guitar", "no metal");
6. what is left, stopwords removed, is free text.

Every reading adds one line to ``Interpretation.explanations``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path

from encore.encoders.musicnn import MSD_TAGS
from encore.errors import BadInput
from encore.world import artist_key, genre_key
from schemas.search import Interpretation

__all__ = ["MoodEntry", "QueryParams", "QueryVocabulary", "interpret", "load_vocabulary", "normalize", "phrasings"]

_KINDS = ("mood", "activity", "tempo", "instrument", "vocals")
_RANGE_NAMES = ("energy", "danceability", "tempo")
_TARGET_NAMES = ("energy", "danceability", "tempo", "year")
_NEGATIONS = frozenset({"not", "no", "without", "except", "excluding", "minus", "never", "nothing", "non", "nor",
                        "dont", "avoid", "skip", "but"})
_STRONG_NEGATIONS = _NEGATIONS - {"but"}
#: Words allowed between a negation and what it negates ("not too sad", "without any vocals").
_NEGATION_FILLERS = frozenset({"too", "so", "very", "any", "much", "really", "overly", "the", "a", "more", "anything",
                               "including"})
#: Triggers of artist readings, longest first within each kind.
_ARTIST_TRIGGERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("like", ("sounds like", "sound like", "something like", "similar to", "in the style of", "reminiscent of",
              "inspired by", "style of", "like")),
    ("not", ("but not", "anything but", "other than", "except for", "except", "excluding", "without", "minus",
             "not", "no")),
    ("by", ("songs by", "music by", "tracks by", "by", "from", "of")),
)
_DECADE_WORDS = {"fifties": 1950, "sixties": 1960, "seventies": 1970, "eighties": 1980, "nineties": 1990,
                 "noughties": 2000, "aughts": 2000, "two thousands": 2000, "thirties": 1930, "forties": 1940,
                 # said with the century, as a recognizer writes "the 1980s" and "the 2010s"
                 **{f"nineteen {word}": 1900 + 10 * k for k, word in enumerate(
                     ("twenties", "thirties", "forties", "fifties", "sixties", "seventies", "eighties", "nineties"), 2)},
                 "twenty tens": 2010, "two thousand tens": 2010, "twenty twenties": 2020, "two thousand twenties": 2020}
#: The words around a tempo in bpm ("over 120 bpm", "120 bpm or more") and around years
#: ("before 1970", "2015 onwards"), by what they mean. The patterns below are built from them, and
#: encore.speech builds the voice recognizer's language model from them (see :func:`phrasings`).
_TEMPO_PHRASES: dict[str, tuple[str, ...]] = {
    "above": ("over", "above", "more than", "faster than", "at least", "min", "minimum", "greater than"),
    "above_after": ("plus", "or more", "or faster", "and up", "and above", "or above"),
    "below": ("under", "below", "less than", "slower than", "at most", "max", "maximum", "up to"),
    "below_after": ("or less", "or slower", "and below", "or below"),
    "around": ("around", "about", "roughly", "approximately", "near", "close to", "at", "circa"),
    "range_start": ("between", "from"),
    "range_to": ("to", "and"),
}
_YEAR_PHRASES: dict[str, tuple[str, ...]] = {
    "range_start": ("from", "between"),
    "range_to": ("to", "and", "until", "till", "through", "thru"),
    "before": ("before", "pre", "prior to", "older than", "earlier than"),
    "until": ("until", "till", "up to", "up until", "through"),
    "after": ("after", "post", "newer than", "later than"),
    "since": ("since", "from", "starting", "starting from", "starting in"),
    "later": ("on", "onwards", "onward", "and later", "or later", "and after", "and newer", "or newer", "and up"),
    "in": ("in", "from"),
    "part": ("early", "mid", "late"),
    "last": ("last", "past", "previous"),
}
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
                 "twenty": 20}


@dataclass(frozen=True, slots=True)
class QueryParams:
    """How loosely queries are read."""

    current_year: int | None = None
    """The year "recent" counts back from (None: today's)."""
    recent_years: int = 5
    """"recent" / "new" means released in the last this many years (from ``current_year - recent_years``)."""
    old_before: int = 1970
    """"old" / "oldies" means released before this year."""
    around_bpm: float = 6.0
    """"around 128 bpm" means 128 ± this, with 128 as the tempo target."""
    artist_cutoff: float = 0.84
    """Least ``difflib`` ratio for a misspelt artist name to count (an exact name always does)."""
    fuzzy_min_chars: int = 5
    """Shorter names only match exactly (fuzzy "abba" would match half the alphabet)."""

    def year(self) -> int:
        return self.current_year if self.current_year is not None else date.today().year


@dataclass(frozen=True, slots=True)
class MoodEntry:
    """One entry of the mood table (see ``_schema`` in ``encore/data/moods.json``)."""

    name: str
    kind: str
    words: tuple[str, ...]
    tags: dict[str, float] = field(default_factory=dict)
    energy: tuple[float | None, float | None] | None = None
    danceability: tuple[float | None, float | None] | None = None
    tempo: tuple[float | None, float | None] | None = None
    targets: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    when_negated: MoodEntry | str | None = None
    """Another entry's name, a partial entry, or None: the negation cannot be expressed."""
    negation_given: bool = False


@dataclass(frozen=True, slots=True)
class QueryVocabulary:
    """What queries are read against: the collection's genres and artists, tag names, the mood table."""

    genres: tuple[str, ...]
    artists: tuple[str, ...]
    tag_names: tuple[str, ...]
    moods: tuple[MoodEntry, ...]
    synonyms: dict[str, str]
    """Normalized phrase → genre (only genres in :attr:`genres`)."""
    era_words: dict[str, str] = field(default_factory=dict)
    """Normalized phrase → ``recent`` or ``old``."""
    stopwords: frozenset[str] = frozenset()
    _phrases: dict[tuple[str, ...], tuple[str, object]] = field(default_factory=dict, repr=False)
    _artist_keys: dict[str, str] = field(default_factory=dict, repr=False)
    _artist_words: int = field(init=False, default=0, repr=False)
    """Words in the longest artist name (once here, not at each query: a 1M-track world has ~100k)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_artist_words", max((len(k.split()) for k in self._artist_keys), default=0))

    def mood(self, name: str) -> MoodEntry:
        for entry in self.moods:
            if entry.name == name:
                return entry
        raise BadInput(f"unknown mood {name!r}; known: {', '.join(e.name for e in self.moods)}")


def normalize(text: str) -> str:
    """How query words are compared: lower case, no accents or apostrophes, ``&`` as "and",
    hyphens and other punctuation as spaces ("Hip-Hop" → "hip hop", "R&B" → "r and b")."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"['’‘`´]", "", text)
    text = text.replace("&", " and ")
    return " ".join(re.findall(r"[0-9a-z]+", text))


def phrasings() -> dict[str, tuple[str, ...]]:
    """The fixed phrasings :func:`interpret` reads, by role: what a speech recognizer must be able
    to hear for every reading to be reachable by voice.

    ``like``, ``by``, ``not``: the artist triggers ("sounds like", "songs by", "but not");
    ``negation``: the words that negate a genre, mood or instrument ("without guitar");
    ``tempo_*``: the words around a tempo in bpm ("over", "or more", "around");
    ``years_*``: the words around years ("before", "onwards"; ``years_count``: the numbers of
    "last ten years"); ``decade_part``: "early" / "mid" / "late"; ``decades``: the decades as
    words ("eighties", "nineteen eighties").
    """
    out = {kind: tuple(triggers) for kind, triggers in _ARTIST_TRIGGERS}
    out["negation"] = tuple(sorted(_STRONG_NEGATIONS))
    out.update({f"tempo_{role}": words for role, words in _TEMPO_PHRASES.items()})
    out.update({f"years_{role}": words for role, words in _YEAR_PHRASES.items() if role != "part"})
    out["years_count"] = tuple(_NUMBER_WORDS)  # "last ten years"
    out["decade_part"] = _YEAR_PHRASES["part"]
    out["decades"] = tuple(_DECADE_WORDS)
    return out


def _artist_match_key(name: str) -> str:
    key = artist_key(name)
    return key[4:] if key.startswith("the ") and len(key) > 4 else key


# --- loading ------------------------------------------------------------------------------------


def _range(value: object, where: str) -> tuple[float | None, float | None] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise BadInput(f"{where}: a range is [min, max] (null for open), not {value!r}")
    lo, hi = (None if v is None else float(v) for v in value)
    if lo is not None and hi is not None and lo > hi:
        raise BadInput(f"{where}: min {lo} is above max {hi}")
    return lo, hi


def _entry(name: str, raw: dict, *, where: str, tags: dict[str, str], kind: str | None = None) -> MoodEntry:
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: an entry is an object, not {raw!r}")
    unknown = set(raw) - {"kind", "words", "tags", "energy", "danceability", "tempo", "targets", "note",
                          "when_negated"}
    if unknown:
        raise BadInput(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    kind = raw.get("kind", kind)
    if kind not in _KINDS:
        raise BadInput(f"{where}: kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    weights: dict[str, float] = {}
    for tag, weight in (raw.get("tags") or {}).items():
        if tags and tag.casefold() not in tags:
            raise BadInput(f"{where}: unknown tag {tag!r} (known: {', '.join(tags.values())})")
        weights[tags.get(tag.casefold(), tag)] = float(weight)
    targets = {str(k): float(v) for k, v in (raw.get("targets") or {}).items()}
    if set(targets) - set(_TARGET_NAMES):
        raise BadInput(f"{where}: targets are {', '.join(_TARGET_NAMES)}, not {', '.join(targets)}")
    words = tuple(dict.fromkeys(normalize(w) for w in [name, *raw.get("words", [])]))
    if not all(words):
        raise BadInput(f"{where}: an empty word")
    negated = raw.get("when_negated", ...)
    if isinstance(negated, dict):
        negated = _entry(f"not {name}", negated, where=f"{where}.when_negated", tags=tags, kind=kind)
    elif negated is not None and negated is not ... and not isinstance(negated, str):
        raise BadInput(f"{where}: when_negated is an entry name, an object or null")
    return MoodEntry(
        name=name, kind=kind, words=words, tags=weights,
        energy=_range(raw.get("energy"), f"{where}.energy"),
        danceability=_range(raw.get("danceability"), f"{where}.danceability"),
        tempo=_range(raw.get("tempo"), f"{where}.tempo"),
        targets=targets, note=raw.get("note"),
        when_negated=None if negated is ... else negated, negation_given=negated is not ...,
    )


def load_vocabulary(
    *,
    artists: Iterable[str] = (),
    genres: Iterable[str] = (),
    tag_names: Sequence[str] = MSD_TAGS,
    path: str | Path | None = None,
) -> QueryVocabulary:
    """The query vocabulary: ``genres`` (the collection's) plus ``encore/data/genres.json``'s,
    ``artists`` (display names, the collection's), and the mood table at ``path`` (default
    ``encore/data/moods.json``), checked against ``tag_names``.

    Raises
    ------
    BadInput
        The mood table is malformed: unknown tag, bad range, a phrase claimed by two entries...
    """
    if path is None:
        text = resources.files("encore").joinpath("data/moods.json").read_text(encoding="utf-8")
        where = "encore/data/moods.json"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("moods"), dict):
        raise BadInput(f"{where}: needs a 'moods' object")
    tags = {t.casefold(): t for t in tag_names}
    try:
        moods = tuple(_entry(name, e, where=f"{where}: moods.{name}", tags=tags) for name, e in raw["moods"].items())
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{where}: not a valid mood table ({exc})") from None
    names = {m.name for m in moods}
    for m in moods:
        if isinstance(m.when_negated, str) and m.when_negated not in names:
            raise BadInput(f"{where}: moods.{m.name}.when_negated names no entry ({m.when_negated!r})")

    shipped = json.loads(resources.files("encore").joinpath("data/genres.json").read_text(encoding="utf-8"))
    all_genres = tuple(dict.fromkeys(genre_key(g) for g in [*shipped.get("genres", {}), *genres] if g and g.strip()))
    synonyms: dict[str, str] = {}
    for genre, phrases in (raw.get("genre_synonyms") or {}).items():
        if genre_key(genre) not in all_genres:
            continue  # a synonym of a genre this collection lacks means nothing here
        for phrase in phrases:
            synonyms[normalize(phrase)] = genre_key(genre)
    era_words = {normalize(w): era for era, words in (raw.get("era_words") or {}).items() for w in words}
    if set(era_words.values()) - {"recent", "old"}:
        raise BadInput(f"{where}: era_words are 'recent' and 'old'")

    phrases: dict[tuple[str, ...], tuple[str, object]] = {}
    for word, era in era_words.items():
        phrases[tuple(word.split())] = ("era", era)
    for m in moods:
        for word in m.words:
            key = tuple(word.split())
            if key in phrases and phrases[key][0] == "mood":
                raise BadInput(f"{where}: {word!r} is in both moods.{phrases[key][1].name} and moods.{m.name}")
            phrases[key] = ("mood", m)
    for word, genre in synonyms.items():
        phrases[tuple(word.split())] = ("genre", genre)
    for genre in all_genres:
        phrases[tuple(normalize(genre).split())] = ("genre", genre)
    for tag in tag_names:  # a tag's own name ("ambient") where no genre, mood or era word claims it
        phrases.setdefault(tuple(normalize(tag).split()), ("tag", tag))
    artist_list = tuple(dict.fromkeys(a.strip() for a in artists if a and a.strip()))
    return QueryVocabulary(
        genres=all_genres, artists=artist_list, tag_names=tuple(tag_names), moods=moods, synonyms=synonyms,
        era_words=era_words, stopwords=frozenset(normalize(w) for w in raw.get("stopwords", [])),
        _phrases=phrases, _artist_keys={_artist_match_key(a): a for a in artist_list},
    )


# --- reading ------------------------------------------------------------------------------------


class _Tokens:
    """The query's words (normalized, with the typed spelling kept), and which are taken."""

    def __init__(self, text: str) -> None:
        text = unicodedata.normalize("NFKC", text)
        text = re.sub(r"(?<=\d)\s*[-–—]\s*(?=\d)", " to ", text)  # "100-120 bpm", "1985-1990"
        text = re.sub(r"(?i)(?<=\d)\s*\+\s*bpm\b", " bpm plus", text)  # "120+ bpm"
        text = re.sub(r"(?<=\d)\s*\+", " plus ", text)
        text = re.sub(r"~\s*(?=\d)", " around ", text)
        text = re.sub(r">\s*(?=\d)", " over ", text)
        text = re.sub(r"<\s*(?=\d)", " under ", text)
        text = re.sub(r"(?i)(?<=\d)\s*bpm\b", " bpm", text)
        text = re.sub(r"(?i)\bbeats per minute\b", "bpm", text)
        raw = [w for w in re.split(r"[\s,;:!?()\"/]+|\.(?!\d)", text) if w]
        self.raw = [re.sub(r"['’‘`´.]+$", "", w) or w for w in raw]
        self.shown: list[str] = []  # the typed word, or its piece where one word became several
        self.norm: list[str] = []
        self.origin: list[int] = []  # which typed word each word comes from
        for k, word in enumerate(raw):
            pieces = normalize(word).split()
            for piece in pieces:
                self.norm.append(piece)
                self.origin.append(k)
                self.shown.append(self.raw[k] if len(pieces) == 1 else piece)
        self.taken = [False] * len(self.norm)

    def __len__(self) -> int:
        return len(self.norm)

    def span(self, i: int, j: int) -> str:
        """Words ``i:j`` as typed ("Hip-Hop", not "hip hop", where the span covers the whole word)."""
        out: list[str] = []
        for k in range(i, j):
            whole = self.origin.count(self.origin[k]) == sum(1 for m in range(i, j) if self.origin[m] == self.origin[k])
            if not whole:
                out.append(self.shown[k])
            elif not out or k == i or self.origin[k - 1] != self.origin[k]:
                out.append(self.raw[self.origin[k]])
        return " ".join(out)

    def free(self, i: int, j: int) -> bool:
        return 0 <= i <= j <= len(self) and not any(self.taken[i:j])

    def take(self, i: int, j: int) -> None:
        for k in range(i, j):
            self.taken[k] = True

    def finditer(self, pattern: re.Pattern[str]):
        """Matches of ``pattern`` over the free words, as ``(match, first word, end word)``."""
        text = " ".join("\x00" if t else w for w, t in zip(self.norm, self.taken, strict=True))
        starts, pos = [], 0  # where each word starts in ``text`` (a taken word is one character there)
        for w, t in zip(self.norm, self.taken, strict=True):
            starts.append(pos)
            pos += (1 if t else len(w)) + 1
        for m in _whole_words(pattern.pattern).finditer(text):
            try:
                i = starts.index(m.start())
            except ValueError:
                continue
            j = i
            while j < len(starts) and starts[j] < m.end():
                j += 1
            if self.free(i, j):
                yield m, i, j


@functools.lru_cache(maxsize=64)
def _whole_words(pattern: str) -> re.Pattern[str]:
    """``pattern`` matching whole words only (so "on" never matches the start of "onwards")."""
    return re.compile(rf"(?<![^ ])(?:{pattern})(?![^ ])")


@dataclass
class _Reading:
    """What has been understood so far (mutable while reading, then an ``Interpretation``)."""

    year_min: int | None = None
    year_max: int | None = None
    genres: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)
    tags: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, list[float | None]] = field(default_factory=lambda: {n: [None, None] for n in _RANGE_NAMES})
    explicit: set[str] = field(default_factory=set)
    targets: dict[str, list[float]] = field(default_factory=dict)
    like: list[str] = field(default_factory=list)
    by: list[str] = field(default_factory=list)
    not_: list[str] = field(default_factory=list)
    excluded_genres: list[str] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)

    def say(self, at: int, line: str) -> None:
        self.notes.append((at, line))

    def years(self, lo: int | None, hi: int | None) -> str | None:
        """Narrow the years to ``lo..hi``; a reason when that would leave none (then nothing changes)."""
        new_lo = lo if self.year_min is None else (self.year_min if lo is None else max(lo, self.year_min))
        new_hi = hi if self.year_max is None else (self.year_max if hi is None else min(hi, self.year_max))
        if new_lo is not None and new_hi is not None and new_lo > new_hi:
            return f"ignored: clashes with years {_years(self.year_min, self.year_max)}"
        self.year_min, self.year_max = new_lo, new_hi
        return None

    def bound(self, name: str, lo: float | None, hi: float | None, *, explicit: bool) -> bool:
        """Narrow a descriptor range; False (and no change) when that would leave it empty.
        Explicit numbers ("under 90 bpm") replace what mood words implied."""
        cur_lo, cur_hi = self.ranges[name]
        if explicit and name not in self.explicit:
            cur_lo, cur_hi = None, None
            self.explicit.add(name)
        elif not explicit and name in self.explicit:
            return False
        new_lo = lo if cur_lo is None else (cur_lo if lo is None else max(lo, cur_lo))
        new_hi = hi if cur_hi is None else (cur_hi if hi is None else min(hi, cur_hi))
        if new_lo is not None and new_hi is not None and new_lo > new_hi:
            return False
        self.ranges[name] = [new_lo, new_hi]
        return True


def _years(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo}" if lo == hi else f"{lo}-{hi}"
    if lo is not None:
        return f"{lo} or later"
    return f"{hi} or earlier"


def _num(value: float) -> str:
    return f"{value:g}"


def _range_text(name: str, lo: float | None, hi: float | None) -> str:
    unit = " bpm" if name == "tempo" else ""
    if lo is not None and hi is not None:
        return f"{name} {_num(lo)}-{_num(hi)}{unit}"
    if lo is not None:
        return f"{name} ≥ {_num(lo)}{unit}"
    return f"{name} ≤ {_num(hi)}{unit}"


# artists -----------------------------------------------------------------------------------------


def _resolve_artist(words: list[str], vocab: QueryVocabulary, params: QueryParams) -> str | None:
    phrase = " ".join(words)
    key = _artist_match_key(phrase)
    if key in vocab._artist_keys:
        return vocab._artist_keys[key]
    if (len(key) < params.fuzzy_min_chars or any(w.isdigit() for w in words) or phrase in vocab.stopwords
            or all(w in _SPOKEN or w in ("hundred", "thousand", "and") for w in words)
            or tuple(words) in vocab._phrases or words[0] in vocab.stopwords or words[-1] in vocab.stopwords):
        return None  # a vocabulary word is never taken for a misspelt artist ("not sad" is not Sade)
    close = difflib.get_close_matches(key, list(vocab._artist_keys), n=1, cutoff=params.artist_cutoff)
    return vocab._artist_keys[close[0]] if close else None


def _artist_at(tokens: _Tokens, start: int, vocab: QueryVocabulary, params: QueryParams,
               longest: int) -> tuple[str, int] | None:
    """The artist whose name starts at word ``start`` (longest name first): (artist, end word)."""
    best: tuple[float, int, str] | None = None
    for n in range(min(longest + 1, len(tokens) - start), 0, -1):
        if not tokens.free(start, start + n):
            continue
        words = tokens.norm[start:start + n]
        artist = _resolve_artist(words, vocab, params)
        if artist is None:
            continue
        score = difflib.SequenceMatcher(None, _artist_match_key(" ".join(words)), _artist_match_key(artist)).ratio()
        if best is None or score > best[0]:
            best = (score, start + n, artist)
        if score == 1.0:
            break
    return None if best is None else (best[2], best[1])


def _read_artists(tokens: _Tokens, vocab: QueryVocabulary, params: QueryParams, r: _Reading) -> None:
    if not vocab.artists:
        return
    longest = vocab._artist_words + 1  # + 1: a leading "the"
    triggers = sorted(((tuple(t.split()), kind) for kind, ts in _ARTIST_TRIGGERS for t in ts),
                      key=lambda item: -len(item[0]))
    i = 0
    while i < len(tokens):
        for trigger, kind in triggers:
            j = i + len(trigger)
            if tuple(tokens.norm[i:j]) != trigger or not tokens.free(i, j):
                continue
            found = _artist_at(tokens, j, vocab, params, longest)
            if found is None:
                continue
            names, end = [found[0]], found[1]
            while end < len(tokens) and tokens.norm[end] in ("and", "or", "nor") and tokens.free(end, end + 1):
                more = _artist_at(tokens, end + 1, vocab, params, longest)
                if more is None:
                    break
                names.append(more[0])
                end = more[1]
            target = {"like": r.like, "by": r.by, "not": r.not_}[kind]
            what = {"like": "sounds like artist", "by": "only artist", "not": "leaving out artist"}[kind]
            for name in names:
                if name not in target:
                    target.append(name)
            r.say(i, f"{tokens.span(i, end)} → {what} {' and '.join(names)}")
            tokens.take(i, end)
            i = end - 1
            break
        i += 1


def _read_bare_artists(tokens: _Tokens, vocab: QueryVocabulary, r: _Reading) -> None:
    if not vocab.artists:
        return
    longest = vocab._artist_words + 1
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            words = tokens.norm[i:i + n]
            if not tokens.free(i, i + n) or words[0] in vocab.stopwords and n == 1 or tuple(words) in vocab._phrases:
                continue
            artist = vocab._artist_keys.get(_artist_match_key(" ".join(words)))
            if artist is not None:
                if artist not in r.by:
                    r.by.append(artist)
                r.say(i, f"{tokens.span(i, i + n)} → only artist {artist}")
                tokens.take(i, i + n)
                i += n - 1
                break
        i += 1


# tempo and years -------------------------------------------------------------------------------

def _alt(phrases: Iterable[str]) -> str:
    """A regex alternation of ``phrases``, longest first (so "up to" is tried before "up")."""
    return "(?:" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)) + ")"


# Spoken numbers, as a recognizer writes them: tempos ("one hundred twenty", "a hundred and forty",
# "one twenty") and years ("nineteen eighty five", "two thousand ten", "twenty ten").
_SPOKEN_ONES = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_SPOKEN_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                 "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_SPOKEN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                "ninety": 90}
_SPOKEN = {**_SPOKEN_ONES, **_SPOKEN_TEENS, **_SPOKEN_TENS, "a": 1, "oh": 0}
_ONES_RE, _TEENS_RE, _TENS_RE = (_alt(words) for words in (_SPOKEN_ONES, _SPOKEN_TEENS, _SPOKEN_TENS))
_UNDER_100 = rf"(?:{_TENS_RE}(?: {_ONES_RE})?|{_TEENS_RE}|{_ONES_RE})"
#: 20-299 as said before "bpm": "ninety", "one hundred twenty", "a hundred and forty", "one twenty eight".
_SPOKEN_BPM = (rf"(?:(?:a|one|two) hundred(?:(?: and)? {_UNDER_100})?|one (?:{_TENS_RE}(?: {_ONES_RE})?|{_TEENS_RE})"
               rf"|{_TENS_RE}(?: {_ONES_RE})?)")
#: A year said in words: "nineteen eighty five", "nineteen oh five", "two thousand (and) ten", "twenty ten".
_SPOKEN_YEAR = (rf"(?:(?:eighteen|nineteen) (?:hundred|oh {_ONES_RE}|{_TEENS_RE}|{_TENS_RE}(?: {_ONES_RE})?)"
                rf"|two thousand(?:(?: and)? {_UNDER_100})?|twenty (?:oh {_ONES_RE}|{_TEENS_RE}|twenty(?: {_ONES_RE})?))")


def _spoken_number(phrase: str) -> int:
    """The value of a number matched by ``_SPOKEN_BPM`` or ``_SPOKEN_YEAR``.

    With "hundred" or "thousand" it is a cardinal ("a hundred and forty" = 140, "two thousand
    ten" = 2010, "nineteen hundred" = 1900); otherwise it is said in pairs ("nineteen eighty
    five" = 19|85, "one twenty" = 1|20, "twenty oh five" = 20|05), or it is below a hundred.
    """
    words = [w for w in phrase.split() if w != "and"]
    if "hundred" in words or "thousand" in words:
        total = current = 0
        for w in words:
            if w == "hundred":
                current = (current or 1) * 100
            elif w == "thousand":
                total, current = total + (current or 1) * 1000, 0
            else:
                current += _SPOKEN[w]
        return total + current
    if len(words) > 1 and not (len(words) == 2 and words[0] in _SPOKEN_TENS and words[1] in _SPOKEN_ONES):
        return _SPOKEN[words[0]] * 100 + _spoken_number(" ".join(words[1:]))
    return sum(_SPOKEN[w] for w in words)


def _number(text: str) -> float:
    """A tempo or year as typed (digits) or as said (words)."""
    return float(text) if text[0].isdigit() else float(_spoken_number(text))


_BPM = rf"(\d{{2,3}}(?:\.\d+)?|{_SPOKEN_BPM})"
_TEMPO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("range", re.compile(rf"(?:{_alt(_TEMPO_PHRASES['range_start'])} )?{_BPM}(?: bpm)? "
                         rf"{_alt(_TEMPO_PHRASES['range_to'])} {_BPM} bpm")),
    ("min", re.compile(rf"{_alt(_TEMPO_PHRASES['above'])} {_BPM} bpm|{_BPM} bpm {_alt(_TEMPO_PHRASES['above_after'])}")),
    ("max", re.compile(rf"{_alt(_TEMPO_PHRASES['below'])} {_BPM} bpm|{_BPM} bpm {_alt(_TEMPO_PHRASES['below_after'])}")),
    ("around", re.compile(rf"(?:{_alt(_TEMPO_PHRASES['around'])} )?{_BPM} bpm")),
)


def _read_tempo(tokens: _Tokens, params: QueryParams, r: _Reading) -> None:
    for how, pattern in _TEMPO_PATTERNS:
        for m, i, j in list(tokens.finditer(pattern)):
            if not tokens.free(i, j):
                continue
            values = [_number(v) for v in m.groups() if v is not None]
            if how == "range" and m.group(1).endswith("hundred") and values[1] < 100 \
                    and m.string[m.end(1):m.start(2)] == " and ":
                continue  # "a hundred and forty bpm" is one tempo, which the patterns below read
            if how == "range":
                lo, hi = sorted(values)
            elif how == "min":
                lo, hi = values[0], None
            elif how == "max":
                lo, hi = None, values[0]
            else:
                lo, hi = values[0] - params.around_bpm, values[0] + params.around_bpm
                r.targets["tempo"] = [values[0]]
            r.bound("tempo", lo, hi, explicit=True)
            extra = f", aiming at {_num(values[0])} bpm" if how == "around" else ""
            r.say(i, f"{tokens.span(i, j)} → {_range_text('tempo', lo, hi)}{extra}")
            tokens.take(i, j)


_YEAR = rf"(1[89]\d\d|20\d\d|{_SPOKEN_YEAR})"
_DECADE = rf"(?:({'|'.join(_YEAR_PHRASES['part'])}) )?(?:the )?((?:19|20)?\d0s|{_alt(_DECADE_WORDS)})"


def _decade(word: str, current: int) -> int:
    if word in _DECADE_WORDS:
        return _DECADE_WORDS[word]
    digits = int(word[:-1])
    if digits >= 100:
        return digits
    return 2000 + digits if 2000 + digits <= current else 1900 + digits


def _decade_span(part: str | None, word: str, current: int) -> tuple[int, int]:
    start = _decade(word, current)
    lo, hi = {None: (0, 9), "early": (0, 3), "mid": (3, 6), "late": (6, 9)}[part]
    return start + lo, start + hi


def _read_years(tokens: _Tokens, params: QueryParams, r: _Reading) -> None:
    current = params.year()
    words = {role: _alt(phrases) for role, phrases in _YEAR_PHRASES.items()}
    start, to, later = f"(?:{words['range_start']} )?", words["range_to"], words["later"]
    when = rf"(?:{_YEAR}|{_DECADE})"  # groups: year, or (early/mid/late, decade)
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = (
        ("decades", re.compile(rf"{start}{_DECADE} {to} {_DECADE}")),
        ("range", re.compile(rf"{start}{_YEAR} {to} {_YEAR}")),
        ("before", re.compile(rf"{words['before']} {when}")),
        ("until", re.compile(rf"{words['until']} {when}")),
        ("after", re.compile(rf"{words['after']} {when}")),
        ("since", re.compile(rf"{words['since']} {when} {later}")),
        ("since", re.compile(rf"since {when}")),
        ("since", re.compile(rf"{when} {later}")),
        ("last", re.compile(rf"{words['last']} (\d{{1,2}}|{_alt(_NUMBER_WORDS)}) years")),
        ("this", re.compile(r"this year|last year")),
        ("decade", re.compile(_DECADE)),
        ("year", re.compile(rf"(?:{words['in']} )?{_YEAR}")),
    )
    found: list[tuple[int, int, int | None, int | None]] = []
    for how, pattern in patterns:
        for m, i, j in list(tokens.finditer(pattern)):
            if not tokens.free(i, j):
                continue
            g = m.groups()
            if how == "decades":
                lo, hi = _decade_span(g[0], g[1], current)[0], _decade_span(g[2], g[3], current)[1]
            elif how == "range":
                lo, hi = sorted((int(_number(g[0])), int(_number(g[1]))))
            elif how in ("before", "until", "after", "since"):
                first, last = (int(_number(g[0])),) * 2 if g[0] else _decade_span(g[1], g[2], current)
                lo, hi = {"before": (None, first - 1), "until": (None, last), "after": (last + 1, None),
                          "since": (first, None)}[how]
            elif how == "last":
                lo, hi = current - (int(g[0]) if g[0].isdigit() else _NUMBER_WORDS[g[0]]), None
            elif how == "this":
                lo = hi = current if m.group(0) == "this year" else current - 1
            elif how == "decade":
                lo, hi = _decade_span(g[0], g[1], current)
            else:
                if _number(g[0]) > current + 1:
                    continue
                lo = hi = int(_number(g[0]))
            found.append((i, j, lo, hi))
            tokens.take(i, j)
    for i, j, lo, hi in sorted(found):  # in the order typed, so that of two clashing the first stays
        clash = r.years(lo, hi)
        r.say(i, f"{tokens.span(i, j)} → " + (clash or f"years {_years(lo, hi)}"))


# words: genres, moods, eras -------------------------------------------------------------------


def _negated_before(tokens: _Tokens, i: int) -> int | None:
    """The first word of a negation right before word ``i`` ("not", "but not", "without any")."""
    k = i - 1
    fillers = 0
    while k >= 0 and not tokens.taken[k] and tokens.norm[k] in _NEGATION_FILLERS and fillers < 2:
        k, fillers = k - 1, fillers + 1
    if k > 0 and tokens.norm[k] == "but" and tokens.norm[k - 1] in ("anything", "everything") \
            and tokens.free(k - 1, k + 1):
        return k - 1  # "anything but sad"
    if k < 0 or tokens.taken[k] or tokens.norm[k] not in _STRONG_NEGATIONS:
        return None
    if k > 0 and not tokens.taken[k - 1] and tokens.norm[k - 1] == "but":
        return k - 1
    return k


def _apply_entry(entry: MoodEntry, r: _Reading) -> str:
    """Add a mood entry's tags, ranges and targets; what it did, for the explanation."""
    parts: list[str] = []
    for tag, weight in entry.tags.items():
        r.tags[tag] = r.tags.get(tag, 0.0) + weight
    if entry.tags:
        shown = ", ".join(f"{t} {w:+g}" for t, w in sorted(entry.tags.items(), key=lambda kv: -abs(kv[1])))
        parts.append(f"tags {shown}")
    for name in _RANGE_NAMES:
        bounds = getattr(entry, name)
        if bounds is None:
            continue
        if r.bound(name, *bounds, explicit=False):
            parts.append(_range_text(name, *bounds))
        else:
            parts.append(f"{_range_text(name, *bounds)} ignored (clashes with {name} asked for)")
    for name, value in entry.targets.items():
        if name == "tempo" and "tempo" in r.explicit:
            continue
        r.targets.setdefault(name, []).append(value)
        parts.append(f"target {name} {_num(value)}")
    return "; ".join(parts) or "nothing to search by"


def _read_words(tokens: _Tokens, vocab: QueryVocabulary, params: QueryParams, r: _Reading) -> None:
    longest = max((len(k) for k in vocab._phrases), default=1)
    current = params.year()
    i = 0
    while i < len(tokens):
        hit = None
        for n in range(min(longest, len(tokens) - i), 0, -1):
            found = vocab._phrases.get(tuple(tokens.norm[i:i + n]))
            if found is not None and tokens.free(i, i + n):
                hit = (n, found)
                break
        if hit is None:
            i += 1
            continue
        n, (kind, value) = hit
        neg = _negated_before(tokens, i)
        start = i if neg is None else neg
        said = tokens.span(start, i + n)
        if kind == "genre":
            target = r.excluded_genres if neg is not None else r.genres
            if value not in target:
                target.append(value)
            r.say(start, f"{said} → {'leaving out genre' if neg is not None else 'genre'} {value}")
        elif kind == "tag":
            weight = -1.0 if neg is not None else 1.0
            r.tags[value] = r.tags.get(value, 0.0) + weight
            r.say(start, f"{said} → {'away from ' if neg is not None else ''}tag {value} {weight:+g}")
        elif kind == "era":
            if value == "recent":
                lo, hi = (None, current - params.recent_years - 1) if neg is not None else (current - params.recent_years, None)
            else:
                lo, hi = (params.old_before, None) if neg is not None else (None, params.old_before - 1)
            clash = r.years(lo, hi)
            r.say(start, f"{said} → " + (clash or f"years {_years(lo, hi)}"))
        else:
            entry: MoodEntry = value  # type: ignore[assignment]
            if neg is None:
                if entry.name not in r.moods:
                    r.moods.append(entry.name)
                note = f" ({entry.note})" if entry.note else ""
                r.say(start, f"{said} → {entry.kind} {entry.name}: {_apply_entry(entry, r)}{note}")
            else:
                r.say(start, f"{said} → {_negate(entry, vocab, r)}")
        tokens.take(start, i + n)
        i += n


def _negate(entry: MoodEntry, vocab: QueryVocabulary, r: _Reading) -> str:
    if entry.negation_given and entry.when_negated is None:
        return f"nothing to steer away from for {entry.name}{f' ({entry.note})' if entry.note else ''}; ignored"
    if isinstance(entry.when_negated, str):
        other = vocab.mood(entry.when_negated)
        if other.name not in r.moods:
            r.moods.append(other.name)
        return f"{other.kind} {other.name}: {_apply_entry(other, r)}"
    if isinstance(entry.when_negated, MoodEntry):
        return f"not {entry.name}: {_apply_entry(entry.when_negated, r)}"
    if not entry.tags:
        return f"nothing to steer away from for {entry.name}; ignored"
    strongest = max(abs(w) for w in entry.tags.values())
    away = {t: -w for t, w in entry.tags.items() if abs(w) == strongest}
    for tag, weight in away.items():
        r.tags[tag] = r.tags.get(tag, 0.0) + weight
    return "away from " + ", ".join(f"tag {t} {w:+g}" for t, w in away.items())


# --- the entry point -----------------------------------------------------------------------------


def interpret(
    text: str,
    *,
    vocabulary: QueryVocabulary,
    params: QueryParams | None = None,
    current_year: int | None = None,
) -> Interpretation:
    """What a natural-language music query asks for, with one explanation per thing understood.

    Parameters
    ----------
    text : str
        The query as typed or transcribed ("sad piano music from the nineties").
    vocabulary : QueryVocabulary
        From :func:`load_vocabulary`: the collection's genres and artists and the mood table.
    params : QueryParams, optional
        How loosely to read; ``current_year`` overrides ``params.current_year`` (for "recent").

    Raises
    ------
    BadInput
        The query is empty (or only punctuation).
    """
    params = params or QueryParams()
    if current_year is not None:
        params = replace(params, current_year=current_year)
    if not isinstance(text, str) or not text.strip():
        raise BadInput("the search query is empty; say what to look for, e.g. \"chill electronic for studying\"")
    tokens = _Tokens(text)
    if not len(tokens):
        raise BadInput(f"the search query has no words: {text!r}")
    r = _Reading()
    _read_artists(tokens, vocabulary, params, r)
    _read_tempo(tokens, params, r)
    _read_years(tokens, params, r)
    _read_bare_artists(tokens, vocabulary, r)
    _read_words(tokens, vocabulary, params, r)

    rest = [tokens.shown[k] for k in range(len(tokens))
            if not tokens.taken[k] and tokens.norm[k] not in vocabulary.stopwords]
    free_text = " ".join(rest)
    if free_text:
        r.say(len(tokens), f"{free_text} → free text")
    tags = {t: round(w, 3) for t, w in r.tags.items() if round(w, 3) != 0.0}
    targets = {k: round(sum(v) / len(v), 3) for k, v in r.targets.items() if v}
    ranges = {f"{name}_{end}": r.ranges[name][k] for name in _RANGE_NAMES for k, end in enumerate(("min", "max"))}
    # Bounds from mood words, not typed numbers ("over 120 bpm" replaced the mood's tempo): soft.
    implied = [b for b, v in ranges.items() if v is not None and b.rsplit("_", 1)[0] not in r.explicit]
    return Interpretation(
        text=text, year_min=r.year_min, year_max=r.year_max, genres=r.genres, moods=r.moods, tags=tags,
        targets=targets, artists_like=r.like, artists_by=r.by, artists_not=r.not_,
        excluded_genres=r.excluded_genres, implied=implied, free_text=free_text,
        explanations=[line for _, line in sorted(r.notes, key=lambda item: item[0])], **ranges,
    )
