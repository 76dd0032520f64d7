"""A synthetic but plausible world collection, for demos and scale tests (``encore world sample``).

The vectors live in the default encoder's own space. musicnn's tag head is one dense layer over its
200-d penultimate embedding ``h`` (``tags = sigmoid(h @ kernel + bias)``), and ``h`` leaves a batch
normalisation whose learnt ``beta``/``gamma`` give its typical mean and spread. So:

1. each genre of ``encore/data/genres.json`` gets a centre ``h_g``: the point nearest the typical
   embedding (in units of the typical spread) whose tags come out as the genre's tag profile
   (a ridge-regularised least-squares fit);
2. each artist is drawn around its genre's centre, and each track around its artist;
3. a track's tags are what the tag head says of its embedding, so text and mood queries in the
   ``tags`` space, audio queries in the ``musicnn`` space and the payload all agree.

Years follow each genre's era (1950-2025, skewed to recent), tempo, energy and danceability
follow the genre with per-artist offsets and lean with the tags (party and metal tracks are more
energetic, mellow ones less). Artists have several tracks and one or two albums each.

Generation is vectorised and deterministic: track ``i`` of seed ``s`` is the same whatever the
batch size or how often it is regenerated, which is what makes an interrupted ingest resumable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from encore.encoders.taghead import TagHead
from encore.errors import BadInput
from encore.world import WorldTrack, world_id

YEAR_MIN, YEAR_MAX = 1950, 2025


@dataclass(frozen=True, slots=True)
class Genre:
    name: str
    share: float
    tags: dict[str, float]
    tempo: tuple[float, float]
    energy: tuple[float, float]
    danceability: tuple[float, float]
    years: tuple[float, float]


@dataclass(frozen=True, slots=True)
class GenreProfiles:
    base_tag: float
    genres: tuple[Genre, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.genres)


def load_genres(path: str | Path | None = None) -> GenreProfiles:
    """Read the genre profiles (default: ``encore/data/genres.json``, shipped with the package)."""
    if path is None:
        text = resources.files("encore").joinpath("data/genres.json").read_text(encoding="utf-8")
        where = "encore/data/genres.json"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    try:
        raw = json.loads(text)
        genres = tuple(
            Genre(name=name.casefold(), share=float(g["share"]), tags={k: float(v) for k, v in g["tags"].items()},
                  tempo=tuple(g["tempo"]), energy=tuple(g["energy"]), danceability=tuple(g["danceability"]),
                  years=tuple(g["years"]))
            for name, g in raw["genres"].items()
        )
        profiles = GenreProfiles(base_tag=float(raw.get("base_tag", 0.04)), genres=genres)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"{where}: not a valid genre profile file ({exc})") from None
    if not genres:
        raise BadInput(f"{where}: no genres")
    return profiles


@dataclass(frozen=True, slots=True)
class SampleParams:
    """How spread out the sample is, in units of the embedding's typical spread."""

    mean_tracks_per_artist: float = 8.0
    artist_spread: float = 0.45
    track_spread: float = 0.35
    genre_fit: float = 30.0
    """Weight of hitting the genre's tag profile against staying near the typical embedding."""
    batch: int = 1000


def genre_centres(head: TagHead, profiles: GenreProfiles, *, fit: float = 30.0, reach: float = 3.0) -> np.ndarray:
    """Centres ``h_g`` [shape=(n_genres, dim)] whose tags approach each genre's tag profile.

    With ``h = mean + std * u``, solves ``min |u|^2 + fit * |A u - r|^2`` for ``u`` between the
    embedding's floor and ``reach`` typical spreads above its mean, where ``A = (kernel * std)^T``
    and ``r`` is the target logits less the typical embedding's: the least unusual embedding
    the network itself would tag like the genre.
    """
    from scipy.optimize import lsq_linear

    lookup = {n.casefold(): i for i, n in enumerate(head.names)}
    a = (head.kernel * head.std[:, None]).T  # (n_tags, dim)
    system = np.vstack([np.sqrt(fit) * a, np.eye(head.dim)])
    lower = (head.floor - head.mean) / head.std
    out = np.empty((len(profiles.genres), head.dim))
    for gi, genre in enumerate(profiles.genres):
        target = np.full(len(head.names), profiles.base_tag)
        for tag, p in genre.tags.items():
            if tag.casefold() not in lookup:
                raise BadInput(f"genre {genre.name!r}: unknown tag {tag!r} (known: {', '.join(head.names)})")
            target[lookup[tag.casefold()]] = p
        target = np.clip(target, 1e-3, 1 - 1e-3)
        r = np.log(target / (1 - target)) - head.bias - head.mean @ head.kernel
        rhs = np.concatenate([np.sqrt(fit) * r, np.zeros(head.dim)])
        u = lsq_linear(system, rhs, bounds=(lower, np.full(head.dim, reach))).x
        out[gi] = head.mean + head.std * u
    return out


_SYLLABLES = ("ka", "lo", "mi", "ra", "ve", "no", "sa", "tu", "el", "an", "ri", "do", "ba", "ne", "so", "ta",
              "li", "mo", "ze", "ga", "or", "in", "ju", "pe", "ha", "ly", "ca", "di", "fe", "qu")
_BAND_ADJ = ("Velvet", "Electric", "Silent", "Golden", "Midnight", "Crimson", "Hollow", "Neon", "Wild", "Paper",
             "Iron", "Lunar", "Broken", "Blue", "Static", "Wandering", "Glass", "Northern", "Secret", "Burning")
_BAND_NOUN = ("Owls", "Rivers", "Engines", "Lanterns", "Wolves", "Parades", "Machines", "Sparrows", "Tides",
              "Hearts", "Ghosts", "Satellites", "Foxes", "Kings", "Shadows", "Echoes", "Horizons", "Saints")
_TITLE_A = ("Summer", "Lonely", "Dancing", "Broken", "Golden", "Endless", "Last", "Secret", "Falling", "Electric",
            "Slow", "Burning", "Quiet", "Restless", "Midnight", "Open", "Little", "Faded", "Distant", "Sweet")
_TITLE_B = ("Road", "Heart", "Lights", "Rain", "Dream", "Fire", "Dance", "Song", "Night", "Sky", "Blues",
            "Train", "Morning", "Ocean", "City", "Letter", "Garden", "Echo", "Highway", "Shadow")


def _word(rng: np.random.Generator, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES, size=parts)).capitalize()


def _artist_name(rng: np.random.Generator, index: int) -> str:
    if rng.random() < 0.45:
        name = f"The {rng.choice(_BAND_ADJ)} {rng.choice(_BAND_NOUN)}"
    else:
        name = f"{_word(rng, int(rng.integers(2, 4)))} {_word(rng, int(rng.integers(2, 4)))}"
    # Names repeat in a large sample; a numbered suffix keeps artists apart, as real catalogues do.
    return name if index < 400 else f"{name} {index // 400 + 1}"


@dataclass(frozen=True, slots=True)
class _Roster:
    """Artists of a sample: genre, centre, descriptor offsets, era, name and albums, and track ownership."""

    genre: np.ndarray  # (n_artists,)
    centre: np.ndarray  # (n_artists, dim)
    offsets: np.ndarray  # (n_artists, 3): tempo, energy, danceability shifts
    year: np.ndarray  # (n_artists,)
    names: list[str]
    albums: list[list[str]]
    first_track: np.ndarray  # (n_artists + 1,): artist a owns tracks first_track[a]:first_track[a+1]


def _roster(count: int, *, seed: int, head: TagHead, profiles: GenreProfiles, params: SampleParams,
            centres: np.ndarray) -> _Roster:
    rng = np.random.default_rng([seed, 0])
    sizes: list[int] = []
    while sum(sizes) < count:
        sizes.append(int(min(40, 1 + rng.geometric(1.0 / params.mean_tracks_per_artist))))
    sizes[-1] -= sum(sizes) - count
    n = len(sizes)
    shares = np.array([g.share for g in profiles.genres])
    genre = rng.choice(len(profiles.genres), size=n, p=shares / shares.sum())
    centre = np.maximum(centres[genre] + rng.normal(0, params.artist_spread, (n, head.dim)) * head.std, head.floor)
    offsets = rng.normal(0, 1, (n, 3)) * np.array([8.0, 0.06, 0.05])
    centre_years = np.array([g.years[0] for g in profiles.genres])[genre]
    spread_years = np.array([g.years[1] for g in profiles.genres])[genre]
    # Skewed to recent: half a spread later on average than the genre's centre, never past 2025.
    year = np.clip(centre_years + spread_years * (rng.gamma(2.0, 0.5, n) - 0.5), YEAR_MIN, YEAR_MAX - 1)
    names, albums = [], []
    for a in range(n):
        names.append(_artist_name(rng, a))
        albums.append([f"{rng.choice(_TITLE_A)} {rng.choice(_TITLE_B)}" for _ in range(int(rng.integers(1, 3)))])
    first = np.concatenate([[0], np.cumsum(sizes)])
    return _Roster(genre=genre, centre=centre, offsets=offsets, year=year, names=names, albums=albums,
                   first_track=first)


def sample_batches(
    count: int,
    *,
    seed: int,
    head: TagHead,
    profiles: GenreProfiles | None = None,
    params: SampleParams | None = None,
    space: str = "musicnn",
) -> Iterator[list[WorldTrack]]:
    """Yield the sample collection of ``count`` tracks in batches of ``params.batch``.

    Track ``i`` has id ``world_id("sample", f"{seed}:{i}")`` and the same content whatever the
    batch size: its random draws come from a generator seeded with ``(seed, 1, i // 1000)``
    and it is the ``i % 1000``-th row of that block.
    """
    if count < 1:
        raise BadInput("--count must be at least 1")
    profiles = profiles or load_genres()
    params = params or SampleParams()
    centres = genre_centres(head, profiles, fit=params.genre_fit)
    roster = _roster(count, seed=seed, head=head, profiles=profiles, params=params, centres=centres)
    owner = np.repeat(np.arange(len(roster.names)), np.diff(roster.first_track))
    tag_index = {n.casefold(): i for i, n in enumerate(head.names)}
    lean = _descriptor_lean(head.names, tag_index)
    reference = head.reference()
    block = 1000
    pending: list[WorldTrack] = []
    for start in range(0, count, block):
        stop = min(start + block, count)
        rng = np.random.default_rng([seed, 1, start // block])
        m = stop - start
        artists = owner[start:stop]
        h = np.maximum(roster.centre[artists] + rng.normal(0, params.track_spread, (m, head.dim)) * head.std,
                       head.floor).astype(np.float32)
        probs = head.probabilities(h.astype(np.float64))
        g = roster.genre[artists]
        base = np.array([[*gen.tempo, *gen.energy, *gen.danceability] for gen in profiles.genres])[g]
        noise = rng.normal(0, 1, (m, 3))
        tempo = np.clip(base[:, 0] + roster.offsets[artists, 0] + base[:, 1] * 0.6 * noise[:, 0], 55, 210)
        energy = np.clip(base[:, 2] + roster.offsets[artists, 1] + probs @ lean[0] + base[:, 3] * 0.6 * noise[:, 1],
                         0.02, 0.99)
        dance = np.clip(base[:, 4] + roster.offsets[artists, 2] + probs @ lean[1] + base[:, 5] * 0.6 * noise[:, 2],
                        0.02, 0.99)
        years = np.clip(np.rint(roster.year[artists] + rng.normal(0, 3.0, m)), YEAR_MIN, YEAR_MAX).astype(int)
        album_pick = rng.integers(0, 2, m)
        titles = [f"{rng.choice(_TITLE_A)} {rng.choice(_TITLE_B)}" for _ in range(m)]
        durations = np.clip(rng.normal(225, 45, m), 90, 600)
        for j in range(m):
            i, a = start + j, int(artists[j])
            albums = roster.albums[a]
            pending.append(WorldTrack(
                track_id=world_id("sample", f"{seed}:{i}"),
                source="sample",
                title=titles[j],
                artist=roster.names[a],
                album=albums[int(album_pick[j]) % len(albums)],
                year=int(years[j]),
                genre=profiles.genres[int(g[j])].name,
                tempo=round(float(tempo[j]), 1),
                energy=round(float(energy[j]), 3),
                danceability=round(float(dance[j]), 3),
                duration_s=round(float(durations[j]), 1),
                tags={name: float(probs[j, k]) for k, name in enumerate(head.names)},
                vectors={space: h[j], "tags": (probs[j] - reference).astype(np.float32)},
            ))
            if len(pending) == params.batch:
                yield pending
                pending = []
    if pending:
        yield pending


def _descriptor_lean(names: tuple[str, ...], index: dict[str, int]) -> np.ndarray:
    """How tags push energy (row 0) and danceability (row 1), per unit of probability."""
    lean = np.zeros((2, len(names)))
    pushes = {
        0: {"party": 0.15, "heavy metal": 0.15, "hard rock": 0.1, "punk": 0.1, "dance": 0.08,
            "Mellow": -0.15, "chill": -0.12, "chillout": -0.1, "ambient": -0.15, "sad": -0.1, "easy listening": -0.1},
        1: {"dance": 0.15, "party": 0.12, "House": 0.1, "Hip-Hop": 0.08, "funk": 0.1, "sexy": 0.06,
            "ambient": -0.15, "experimental": -0.08, "sad": -0.08, "instrumental": -0.05},
    }
    for row, table in pushes.items():
        for tag, weight in table.items():
            if tag.casefold() in index:
                lean[row, index[tag.casefold()]] = weight
    return lean
