"""How often query interpretation gets natural queries exactly right.

Each line of ``bench/queries.jsonl`` is a query and what it should be read as (fields left out are
expected empty). A query counts as right when every checked field matches: years, genres, moods,
tempo/energy/danceability ranges, artists (like, by, not), excluded genres, free text, the tags
steered away from, and the tags steered towards where the line gives them.

    .venv/bin/python bench/queries.py [--show]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encore.query import interpret, load_vocabulary  # noqa: E402
from schemas.search import Interpretation  # noqa: E402

ARTISTS = ("Queen", "Daft Punk", "Nina Simone", "Miles Davis", "The Beatles", "Taylor Swift", "Metallica",
           "Bob Marley", "Adele", "Kendrick Lamar", "Johnny Cash", "Radiohead")
CURRENT_YEAR = 2025
CHECKED = ("year_min", "year_max", "genres", "moods", "tempo_min", "tempo_max", "energy_min", "energy_max",
           "danceability_min", "danceability_max", "artists_like", "artists_by", "artists_not", "excluded_genres",
           "free_text", "tags_away")


def view(it: Interpretation, *, with_tags: bool) -> dict:
    """The checked fields of an interpretation (tags as the names steered away from / towards)."""
    out = {name: getattr(it, name, None) for name in CHECKED if name != "tags_away"}
    out["tags_away"] = sorted(t for t, w in it.tags.items() if w < 0)
    if with_tags:
        out["tags"] = sorted(t for t, w in it.tags.items() if w > 0)
    return out


def expected(expect: dict) -> dict:
    blank = view(Interpretation(text=""), with_tags="tags" in expect)
    out = {**blank, **expect}
    for name in ("tags_away", "tags"):
        if name in out:
            out[name] = sorted(out[name])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=Path(__file__).with_name("queries.jsonl"))
    parser.add_argument("--show", action="store_true", help="print every interpretation's explanations")
    args = parser.parse_args()
    vocabulary = load_vocabulary(artists=ARTISTS)
    cases = [json.loads(line) for line in args.cases.read_text(encoding="utf-8").splitlines() if line.strip()]
    misses = []
    for case in cases:
        it = interpret(case["query"], vocabulary=vocabulary, current_year=CURRENT_YEAR)
        want = expected(case["expect"])
        got = view(it, with_tags="tags" in case["expect"])
        got = {k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("year_min", "year_max")
               else v for k, v in got.items()}
        want = {k: float(v) if isinstance(v, int | float) and k not in ("year_min", "year_max") else v
                for k, v in want.items()}
        diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
        if diff:
            misses.append((case["query"], diff, it.explanations))
        if args.show:
            print(f"{case['query']}\n    " + "\n    ".join(it.explanations))
    right = len(cases) - len(misses)
    print(f"interpreted exactly right: {right}/{len(cases)} = {right / len(cases):.1%} (target 95%)")
    for query, diff, explanations in misses:
        print(f"MISS {query!r}")
        for name, (want, got) in diff.items():
            print(f"    {name}: expected {want!r}, got {got!r}")
        print("    read as: " + " | ".join(explanations))
    return 0 if right / len(cases) >= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
