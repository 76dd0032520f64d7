"""Text search latency on an existing world: ``Encore.search`` as the service runs it, warm.

Opens the embedded store under ``--dir`` (e.g. the 1M sample world ``bench/discovery.py --dir``
leaves), runs each query once untimed, then ``--repeat`` times, and prints each query's median
latency and result count, and the median over queries. Compare commits by running it from
each commit's tree against the same store, one after the other.

Usage::

    taskset -c 1 python bench/text_search.py --dir bench/out/w1m_order

Writes ``bench/out/text_search.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# Run as a script, sys.path[0] is bench/, whose modules could shadow an installed package; the
# repository root is what the imports below need.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from encore.config import Settings  # noqa: E402
from encore.service import Encore  # noqa: E402

QUERIES = ("happy songs for workout", "energetic 80s rock", "chill jazz from the fifties", "sad piano music",
           "something like The Glass Shadows 71", "90s hip hop over 100 bpm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True, help="data dir holding the world (ENCORE_DATA_DIR)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--query", action="append", default=None, help="a query (repeatable; default: six mixed ones)")
    ap.add_argument("--out", type=Path, default=_HERE / "out" / "text_search.json")
    args = ap.parse_args()
    queries = args.query or list(QUERIES)

    t = time.perf_counter()
    enc = Encore.open(Settings(data_dir=args.dir, qdrant_url=None))
    open_s = time.perf_counter() - t
    try:
        tracks = enc.world.count()
        for q in queries:  # warm: encoders, vocabulary, page cache
            enc.search(q, limit=args.limit)
        rows = []
        for q in queries:
            times, found = [], 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                found = len(enc.search(q, limit=args.limit).results)
                times.append((time.perf_counter() - t) * 1000)
            rows.append({"query": q, "median_ms": round(statistics.median(times), 1), "results": found})
    finally:
        enc.close()

    print(f"text search over {tracks} world tracks, {args.repeat} runs each, warm (store opened in {open_s:.1f} s)")
    for r in rows:
        print(f"  {r['query']:40s} {r['median_ms']:8.1f} ms  {r['results']} results")
    overall = statistics.median(r["median_ms"] for r in rows)
    print(f"median over queries: {overall:.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": "python bench/text_search.py " + " ".join(sys.argv[1:]), "machine": platform.platform(),
        "tracks": tracks, "repeat": args.repeat, "queries": rows, "median_ms": overall}, indent=2) + "\n")


if __name__ == "__main__":
    main()
