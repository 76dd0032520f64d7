"""World-tier discovery benchmark: filtered nearest-neighbour search over a sample world.

Builds a world collection of ``--tracks`` sample tracks (``indexers.sample``) in a temporary
embedded store (qdrant-edge), optimizes it (HNSW + payload indexes), then for each filter case
times ``--queries`` top-20 approximate searches in the ``musicnn`` space and measures recall@10
against exact (brute-force, numpy) cosine search under the same filter.

Query vectors are the ``musicnn`` vectors of random stored tracks plus small Gaussian noise
(``--noise``, relative to the unit vector), so the query's own track is usually, but not
always, its nearest neighbour.

Filter cases (``schemas.api.Filters`` through ``encore.world.to_filter``):

* ``none``: no filter;
* ``genre=rock``;
* ``1980s+energy>=0.7``: year 1980-1989 and energy at least 0.7;
* ``selective``: one genre and a year range chosen to match about ``--selective`` (0.5%) of the
  tracks (reggae preferred); its measured selectivity is printed;
* ``1990s rock``: a genre and a decade (an era filter on a genre);
* ``rock, 1980s+energy>=0.7``: a genre, a decade and an energy bound;
* ``1960-1989+energy>=0.75``: three decades and an energy bound off a decile edge (the energy
  range stays beside the storage-order key's ranges);
* ``mood``: energy at least 0.7, danceability at least 0.6 and tempo at least 120 BPM (the ranges
  of a workout playlist, no genre or era).

Searches go through ``World.query`` as the service's do, so a year range with an energy bound is
answered through the storage-order key (``WorldParams.era_cells``). ``--plain-ranges`` runs those
cases with plain year and energy ranges as well, the two interleaved query by query. Unfiltered
searches on a world of more than 192k tracks are probed within the nearest track's genre
(``WorldParams.genre_probe``); ``--graph-only`` runs them without the probe as well.

Usage::

    python bench/discovery.py --tracks 100000 --queries 200 --seed 0

Prints a markdown table and writes ``bench/out/discovery.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

# Run as ``python bench/discovery.py``, this folder comes first on sys.path, where a sibling script
# could shadow an installed package; the repository root is what the imports below need.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from encore.config import Settings  # noqa: E402
from encore.service import Encore  # noqa: E402
from encore.storage.base import QuerySpec  # noqa: E402
from encore.world import WorldParams, to_filter, world_id  # noqa: E402
from indexers.pipeline import ingest_batches  # noqa: E402
from indexers.sample import sample_batches  # noqa: E402
from schemas.api import Filters  # noqa: E402

SPACE = "musicnn"
LIMIT = 20
RECALL_AT = 10
#: The numeric payload fields the cases filter on by range.
RANGED = ("year", "energy", "danceability", "tempo")
OUT = _HERE / "out" / "discovery.json"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def load_all(enc: Encore, page: int = 2000) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Every stored point's id, ``musicnn`` vector (unit length, as stored) and filter fields.

    The vectors go page by page into one float32 array (a list of Python floats per vector took
    15 GB at 1M tracks)."""
    ids: list[str] = []
    x = np.empty((max(enc.world.count(None), 1), enc.world.spec.dense[SPACE].dim), dtype=np.float32)
    genre: list[str | None] = []
    numbers: dict[str, list[float]] = {name: [] for name in RANGED}
    offset = None
    while True:
        records, offset = enc.store.scroll(enc.world.name, limit=page, offset=offset,
                                           with_payload=["genre", *RANGED], with_vectors=[SPACE])
        for r in records:
            v = (r.vectors or {}).get(SPACE)
            if v is None:
                continue
            if len(ids) == len(x):  # points added since the count
                x = np.resize(x, (2 * len(x), x.shape[1]))
            x[len(ids)] = v
            p = r.payload or {}
            ids.append(r.id)
            genre.append(p.get("genre"))
            for name, column in numbers.items():
                column.append(np.nan if p.get(name) is None else float(p[name]))
        if offset is None:
            break
    x = x[:len(ids)]
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    fields = {"genre": np.asarray(genre, dtype=object), **{k: np.asarray(v) for k, v in numbers.items()}}
    return ids, x, fields


def mask_for(filters: Filters | None, fields: dict[str, np.ndarray]) -> np.ndarray:
    """The numpy equivalent of ``to_filter(filters)`` for the fields the cases use (ranges inclusive)."""
    n = len(fields["year"])
    m = np.ones(n, dtype=bool)
    if filters is None:
        return m
    used = {k for k, v in filters.model_dump().items() if v not in (None, [])}
    unsupported = used - {"genre"} - {f"{name}_{end}" for name in RANGED for end in ("min", "max")}
    if unsupported:
        raise ValueError(f"mask_for: unsupported filter fields {sorted(unsupported)}")
    if filters.genre:
        m &= fields["genre"] == " ".join(filters.genre.casefold().split())
    for name in RANGED:
        lo, hi = getattr(filters, f"{name}_min"), getattr(filters, f"{name}_max")
        col = fields[name]
        if lo is not None:
            m &= col >= lo  # NaN compares False: a point without the field never matches a range
        if hi is not None:
            m &= col <= hi
    return m


def pick_selective(fields: dict[str, np.ndarray], target: float) -> Filters:
    """A genre + year-range filter whose match share is nearest ``target`` (reggae preferred on ties)."""
    n = len(fields["year"])
    best: tuple[float, int, Filters] | None = None
    genres = ["reggae"] + sorted({g for g in fields["genre"] if g and g != "reggae"})
    for rank, g in enumerate(genres):
        g_mask = fields["genre"] == g
        years = fields["year"][g_mask]
        if not len(years):
            continue
        for width in (3, 5, 10):
            for start in range(1950, 2026 - width + 1):
                share = np.count_nonzero((years >= start) & (years <= start + width - 1)) / n
                key = (abs(share - target) / target, rank)
                if best is None or key < best[:2]:
                    best = (key[0], key[1], Filters(genre=g, year_min=start, year_max=start + width - 1))
        if best is not None and best[0] < 0.05 and g == "reggae":
            break  # reggae gets within 5% of the target: keep it
    assert best is not None
    return best[2]


def exact_topk(x: np.ndarray, mask: np.ndarray, queries: np.ndarray, k: int) -> list[np.ndarray]:
    """Row indices (into ``x``) of the exact cosine top-``k`` among ``mask``, per query, best first."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return [np.empty(0, dtype=np.int64) for _ in queries]
    sub = x[idx]
    out = []
    for start in range(0, len(queries), 64):
        scores = queries[start:start + 64] @ sub.T  # (b, m)
        kk = min(k, sub.shape[0])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        for row, cand in zip(scores, part, strict=True):
            order = cand[np.argsort(-row[cand], kind="stable")]
            out.append(idx[order])
    return out


def run_case(enc: Encore, name: str, filters: Filters | None, *, queries: np.ndarray, ids: list[str],
             x: np.ndarray, fields: dict[str, np.ndarray], id_row: dict[str, int], warmup: int,
             hnsw_ef: int | None, acorn: bool, exact: bool = False,
             variants: Sequence[tuple[str, WorldParams]] = ()) -> list[dict]:
    """One row per variant of the world's parameters (``("", enc.world.params)`` when none are
    given), the variants' queries interleaved one by one so that they share the machine's noise."""
    flt = to_filter(filters)
    hnsw_ef = hnsw_ef or enc.world.params.search_ef(flt is not None)
    mask = mask_for(filters, fields)
    matches_np = int(mask.sum())
    t = time.perf_counter()
    matches_engine = enc.world.count(filters)
    count_ms = (time.perf_counter() - t) * 1000
    n = len(ids)
    own = enc.world.params
    variants = list(variants) or [("", own)]

    def spec(q: np.ndarray) -> QuerySpec:
        # The query World.search issues (its search parameters), without payload.
        return QuerySpec(using=SPACE, vector=q.tolist(), limit=LIMIT, filter=flt, with_payload=False,
                         hnsw_ef=None if exact else hnsw_ef, acorn=acorn and flt is not None and not exact,
                         exact=exact, oversampling=enc.world.params.oversampling)

    lat: list[list[float]] = [[] for _ in variants]
    results: list[list[list[str]]] = [[] for _ in variants]
    try:
        for k, q in enumerate(np.concatenate([queries[:warmup], queries])):
            for v, (_, params) in enumerate(variants):
                enc.world.params = params
                s = spec(q)
                t = time.perf_counter()
                hits = enc.world.query(s)  # as World.search runs it: planned, and redone exactly if short
                dt = time.perf_counter() - t
                if k >= warmup:
                    lat[v].append(dt)
                    results[v].append([h.id for h in hits])
    finally:
        enc.world.params = own

    t = time.perf_counter()
    truth = exact_topk(x, mask, queries, RECALL_AT)
    exact_s = time.perf_counter() - t

    rows = []
    for v, (suffix, _) in enumerate(variants):
        recalls, dup_results, short_results, violations = [], 0, 0, 0
        for got, want in zip(results[v], truth, strict=True):
            if len(set(got)) != len(got):
                dup_results += 1
            if len(got) < min(LIMIT, matches_np):
                short_results += 1
            violations += sum(1 for i in got if i not in id_row or not mask[id_row[i]])
            if len(want):
                want_ids = {ids[j] for j in want}
                recalls.append(len(want_ids & set(got[:RECALL_AT])) / len(want_ids))
        ms = np.asarray(lat[v]) * 1000
        rows.append({
            "case": name + suffix,
            "hnsw_ef": "exact" if exact else hnsw_ef,
            "acorn": acorn,
            "filters": None if filters is None else filters.model_dump(exclude_defaults=True),
            "matches": matches_engine,
            "matches_numpy": matches_np,
            "selectivity": matches_engine / n,
            "count_ms": round(count_ms, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3),
            "max_ms": round(float(ms.max()), 3),
            f"recall@{RECALL_AT}": round(float(np.mean(recalls)), 4) if recalls else None,
            f"min_recall@{RECALL_AT}": round(float(np.min(recalls)), 4) if recalls else None,
            "queries": len(queries),
            "results_with_duplicates": dup_results,
            "short_results": short_results,
            "filter_violations": violations,
            "exact_s": round(exact_s, 3),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="sample seed (queries use seed + 1)")
    ap.add_argument("--noise", type=float, default=0.1,
                    help="query noise: Gaussian of this total norm added to the track's unit vector")
    ap.add_argument("--selective", type=float, default=0.005, help="target match share of the selective case")
    ap.add_argument("--warmup", type=int, default=10, help="untimed queries per case first")
    ap.add_argument("--no-optimize", action="store_true", help="skip store.optimize() after loading")
    ap.add_argument("--reuse", action="store_true",
                    help="with --dir: skip the ingest when the store already holds --tracks tracks")
    ap.add_argument("--ef", type=int, nargs="+", default=None,
                    help="graph search widths to compare (default: WorldParams.search_ef)")
    ap.add_argument("--acorn", choices=["world", "on", "off", "both"], default="world",
                    help="ACORN for filtered searches: as WorldParams.acorn, on, off, or both compared")
    ap.add_argument("--exact", action="store_true",
                    help="also run each filtered case as an exact search (no graph), for comparison")
    ap.add_argument("--plain-ranges", action="store_true",
                    help="also run the cases answered through the storage-order key (WorldParams.era_cells) "
                         "with plain year and energy ranges, interleaved query by query, for comparison")
    ap.add_argument("--graph-only", action="store_true",
                    help="also run the unfiltered case without the genre probe (WorldParams.genre_probe), "
                         "interleaved query by query, for comparison")
    ap.add_argument("--dir", type=Path, default=None, help="data dir (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--quantization", choices=["int8", "none"], default="int8",
                    help="scalar quantization of the world vectors (ENCORE_WORLD_QUANTIZATION)")
    args = ap.parse_args()

    command = "python bench/discovery.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    machine = {"platform": platform.platform(), "python": platform.python_version(),
               "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
               "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
               "shared": True}
    print(f"command: {command}")
    print(f"machine: {machine['platform']}, {machine['cpu_count']} CPUs (shared with other work: "
          "timings are indicative)")

    tmp = args.dir or Path(tempfile.mkdtemp(prefix="encore-discovery-"))
    stages: dict[str, float] = {}
    total_t = time.perf_counter()
    try:
        t = time.perf_counter()
        enc = Encore.open(Settings(data_dir=tmp, qdrant_url=None, world_quantization=args.quantization))
        stages["open_s"] = time.perf_counter() - t

        t = time.perf_counter()
        if args.reuse and args.dir is not None and enc.world.count() >= args.tracks:
            report = None
            print(f"ingest: reusing the {enc.world.count()} tracks in {args.dir}", flush=True)
        else:
            report = ingest_batches(enc, sample_batches(args.tracks, seed=args.seed, head=enc.tag_head),
                                    total=args.tracks, source="sample", progress=not args.no_progress)
        stages["ingest_s"] = time.perf_counter() - t
        rss_ingest = peak_rss_mb()
        disk_before = enc.store.disk_bytes()
        print(f"ingest: {report.added if report else 0} added, {report.exists if report else args.tracks} existed, "
              f"{stages['ingest_s']:.1f} s "
              f"({args.tracks / stages['ingest_s']:.0f} tracks/s), disk {disk_before / 1e6:.1f} MB, "
              f"peak RSS {rss_ingest:.0f} MiB", flush=True)

        optimize = getattr(enc.store, "optimize", None)
        if optimize is not None and not args.no_optimize:
            t = time.perf_counter()
            optimize()
            stages["optimize_s"] = time.perf_counter() - t
            print(f"optimize: {stages['optimize_s']:.1f} s", flush=True)
        else:
            stages["optimize_s"] = 0.0
            print("optimize: skipped", flush=True)
        disk = enc.store.disk_bytes()
        rss_optimize = peak_rss_mb()

        t = time.perf_counter()
        ids, x, fields = load_all(enc)
        stages["scroll_all_s"] = time.perf_counter() - t
        id_row = {i: r for r, i in enumerate(ids)}
        print(f"scroll all: {len(ids)} points with vectors in {stages['scroll_all_s']:.1f} s", flush=True)

        # Query vectors: stored musicnn vectors of random tracks plus noise.
        rng = np.random.default_rng(args.seed + 1)
        picks = rng.choice(args.tracks, size=args.queries, replace=args.queries > args.tracks)
        qids = [world_id("sample", f"{args.seed}:{int(i)}") for i in picks]
        t = time.perf_counter()
        recs = {r.id: r for r in enc.store.retrieve(enc.world.name, qids, with_payload=False,
                                                     with_vectors=[SPACE])}
        base = np.asarray([recs[i].vectors[SPACE] for i in qids], dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        noise = rng.normal(0.0, 1.0, base.shape).astype(np.float32) * (args.noise / np.sqrt(base.shape[1]))
        queries = base + noise
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        stages["queries_s"] = time.perf_counter() - t

        selective = pick_selective(fields, args.selective)
        cases: list[tuple[str, Filters | None]] = [
            ("none", None),
            ("genre=rock", Filters(genre="rock")),
            ("1980s+energy>=0.7", Filters(year_min=1980, year_max=1989, energy_min=0.7)),
            (f"selective: {selective.genre} {selective.year_min}-{selective.year_max}", selective),
            ("1990s rock", Filters(genre="rock", year_min=1990, year_max=1999)),
            ("rock, 1980s+energy>=0.7", Filters(genre="rock", year_min=1980, year_max=1989, energy_min=0.7)),
            ("1960-1989+energy>=0.75", Filters(year_min=1960, year_max=1989, energy_min=0.75)),
            ("mood: energy>=0.7, danceability>=0.6, tempo>=120",
             Filters(energy_min=0.7, danceability_min=0.6, tempo_min=120)),
        ]
        rows = []
        t = time.perf_counter()
        acorns = {"world": [enc.world.params.acorn], "on": [True], "off": [False], "both": [False, True]}[args.acorn]
        for ef in args.ef or [None]:  # None: the world's own widths (WorldParams.search_ef)
            for acorn in acorns:
                for name, filters in cases:
                    variants = []
                    flt = to_filter(filters)
                    if args.plain_ranges and enc.world.plan(flt) != flt:
                        variants = [("", enc.world.params),
                                    (" (plain ranges)", replace(enc.world.params, era_cells=False))]
                    if args.graph_only and flt is None:
                        variants = [("", enc.world.params),
                                    (" (graph only)", replace(enc.world.params, genre_probe=False))]
                    for row in run_case(enc, name, filters, queries=queries, ids=ids, x=x, fields=fields,
                                        id_row=id_row, warmup=min(args.warmup, len(queries)), hnsw_ef=ef,
                                        acorn=acorn, variants=variants):
                        rows.append(row)
                        print(f"  ef {ef}, acorn {acorn}, {row['case']}: {row['matches']} matches, p50 {row['p50_ms']} "
                              f"ms, p95 {row['p95_ms']} ms, recall@{RECALL_AT} {row[f'recall@{RECALL_AT}']}", flush=True)
        if args.exact:
            for name, filters in cases[1:]:
                row, = run_case(enc, name, filters, queries=queries, ids=ids, x=x, fields=fields, id_row=id_row,
                                warmup=min(args.warmup, len(queries)), hnsw_ef=None, acorn=False, exact=True)
                rows.append(row)
                print(f"  exact, {name}: {row['matches']} matches, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, "
                      f"recall@{RECALL_AT} {row[f'recall@{RECALL_AT}']}", flush=True)
        stages["search_and_exact_s"] = time.perf_counter() - t
        rss_end = peak_rss_mb()
        enc.close()
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    stages["total_s"] = time.perf_counter() - total_t
    stages = {k: round(v, 2) for k, v in stages.items()}

    print()
    print(f"World discovery, {args.tracks} tracks, {args.queries} queries, top-{LIMIT} in `{SPACE}` "
          f"(embedded qdrant-edge)")
    print()
    print(f"| ef | acorn | case | matches | selectivity | p50 ms | p95 ms | recall@{RECALL_AT} | min recall "
          "| dup results |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['hnsw_ef']} | {'on' if r['acorn'] else 'off'} | {r['case']} | {r['matches']} "
              f"| {100 * r['selectivity']:.2f}% | {r['p50_ms']:.2f} | "
              f"{r['p95_ms']:.2f} | {r[f'recall@{RECALL_AT}']:.3f} | {r[f'min_recall@{RECALL_AT}']:.2f} | "
              f"{r['results_with_duplicates']} |")
    print()
    print(f"ingest (generation + upsert) {stages['ingest_s']} s, optimize {stages['optimize_s']} s, "
          f"disk {disk / 1e6:.1f} MB (before optimize {disk_before / 1e6:.1f} MB), "
          f"peak RSS {rss_end:.0f} MiB (after ingest {rss_ingest:.0f}, after optimize {rss_optimize:.0f})")
    print(f"stages: {stages}")
    print(f"command: {command}")
    print(f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, shared with other work "
          "(latencies are indicative, not a clean measurement)")

    result = {
        "command": command,
        "quantization": args.quantization,
        "machine": machine,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "space": SPACE,
        "limit": LIMIT,
        "tracks": args.tracks,
        "added": report.added if report else 0,
        "stages": stages,
        "disk_bytes": disk,
        "disk_bytes_before_optimize": disk_before,
        "peak_rss_mb": {"after_ingest": round(rss_ingest, 1), "after_optimize": round(rss_optimize, 1),
                        "end": round(rss_end, 1)},
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
