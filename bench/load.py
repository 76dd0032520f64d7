"""Load: many concurrent clients against a live ``encore serve`` on loopback.

Method
------
1. Data (a temporary ``ENCORE_DATA_DIR``, or ``--dir``): the first ``--catalog`` tracks of the
   benchmark music (``bench/music.py``) added with ``encore catalog add``, and a sample world of
   ``--world`` tracks (``encore world sample``). Without the music cache, the catalog is synthetic.
2. Clips: ``--clips`` excerpts of 5 s, half from catalog tracks and half from tracks that are not
   in the catalog (the unknown path answers 20 neighbours), each with white noise at 10 dB SNR and
   re-encoded as MP3 at 64 kbps, so the server decodes real compressed uploads.
3. The server: ``encore serve`` in a subprocess (``--server-env NAME=VALUE`` sets its settings). One
   process owns the embedded store and answers every query in its threads; identify clips are
   decoded and analysed by its pool of worker processes (``ENCORE_ANALYSIS_WORKERS``, default one
   per usable core; 0 analyses them in the request's thread, as before the pool).
4. Load: ``--clients`` asyncio clients, each sending its next request as soon as the last one
   answered, for ``--seconds`` or until ``--max-requests`` in all: ``POST /v1/identify`` (an MP3
   clip), ``POST /v1/search`` (a query of ``bench/queries.jsonl``) and
   ``GET /v1/tracks/{id}/similar`` (a world track), in the ``--mix`` proportions.
5. Reported: throughput, latency p50 / p95 / p99 per kind and overall, errors (transport failures
   and any status other than 200), the server's peak RSS (VmHWM) and its child processes', and the
   CPU used over the run in cores (user + system time over wall time): of the server with its child
   processes (ffmpeg runs, analysis workers), and of the server process alone (the GIL's share).

Usage::

    python bench/load.py [--clients 50] [--seconds 60] [--max-requests 20000] [--world 20000]
    python bench/load.py --dir /tmp/load-data --reuse --server-env ENCORE_ANALYSIS_WORKERS=0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import music  # noqa: E402  (bench/music.py, a sibling script)

from encore.augment import excerpt, white_noise  # noqa: E402
from indexers.decode import load_audio  # noqa: E402

CLIP_SECONDS = 5.0
CLIP_SR = 22050
QUERIES = Path(__file__).resolve().parent / "queries.jsonl"
KINDS = ("identify", "search", "similar")


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    statuses: dict[str, int] = field(default_factory=dict)
    sent: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encore_cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "encore.cli", *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def prepare_data(env: dict[str, str], *, catalog: int, world: int, work: Path, seed: int,
                 fill: bool = True) -> list[dict]:
    """Fill the data dir (unless ``fill`` is off: an earlier run with the same arguments did);
    answer the music tracks used (indexed first, then the held-out ones)."""
    tracks = music.manifest()[: catalog * 2] if (music.DEFAULT_CACHE / "manifest.json").exists() else []
    if not tracks:
        sys.exit("bench/load.py needs the benchmark music: run `python bench/music.py` first")
    rng = random.Random(seed)
    rng.shuffle(tracks)
    indexed = tracks[:catalog]
    paths = [str(music.DEFAULT_CACHE / t["path"]) for t in indexed]
    if not fill:
        return tracks
    t = time.perf_counter()
    encore_cli("catalog", "add", *paths, "--json", env=env)
    print(f"catalog: {len(paths)} tracks in {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    encore_cli("world", "sample", "--count", str(world), "--seed", str(seed), "--json", env=env)
    print(f"world: {world} sample tracks in {time.perf_counter() - t:.0f} s", flush=True)
    return tracks


def make_clips(tracks: list[dict], *, count: int, catalog: int, work: Path, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(count):
        # Even clips come from indexed tracks, odd ones from held-out tracks (the unknown path).
        pool = tracks[:catalog] if i % 2 == 0 else tracks[catalog:] or tracks[:catalog]
        track = pool[int(rng.integers(len(pool)))]
        sr = CLIP_SR
        y, _ = load_audio(music.DEFAULT_CACHE / track["path"], sr=sr)
        clip, _ = excerpt(y, sr=sr, seconds=CLIP_SECONDS, rng=rng)
        clip = white_noise(clip, snr_db=10, rng=rng)
        clips.append(_encode_mp3(clip, sr=sr, work=work, name=f"clip{i}"))
    return clips


def _encode_mp3(y: np.ndarray, *, sr: int, work: Path, name: str) -> bytes:
    pcm = (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()
    out = work / f"{name}.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "s16le", "-ar", str(sr), "-ac", "1", "-i", "-",
                    "-b:a", "64k", str(out)], input=pcm, check=True)
    return out.read_bytes()


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "encore.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    sys.exit("the server did not answer /v1/health within 180 s")


def descendants(pid: int) -> list[int]:
    """``pid``'s live child processes, their children, and so on (the analysis pool's workers)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:  # the thread or process ended meanwhile
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its waited-for children, seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a child that ended between listing and reading: its time is in its parent's
        return 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` itself (its threads; no child process), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """:func:`cpu_seconds` of ``pid`` and of every live descendant: a pool worker's time reaches
    its parent's counters only once the worker ends and is waited for."""
    return cpu_seconds(pid) + sum(cpu_seconds(child) for child in descendants(pid))


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def client_loop(http: httpx.AsyncClient, *, tally: Tally, rng: random.Random, mix: list[float],
                      clips: list[bytes], queries: list[str], track_ids: list[str], stop_at: float,
                      max_requests: int) -> None:
    while time.monotonic() < stop_at and tally.sent < max_requests:
        tally.sent += 1
        kind = rng.choices(KINDS, weights=mix)[0]
        t = time.perf_counter()
        try:
            if kind == "identify":
                r = await http.post("/v1/identify", files={"file": ("clip.mp3", rng.choice(clips), "audio/mpeg")})
            elif kind == "search":
                r = await http.post("/v1/search", json={"query": rng.choice(queries), "limit": 20})
            else:
                r = await http.get(f"/v1/tracks/{rng.choice(track_ids)}/similar", params={"limit": 10})
            status = str(r.status_code)
        except httpx.HTTPError as err:
            status = type(err).__name__
        tally.latencies[kind].append((time.perf_counter() - t) * 1000)
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status != "200":
            tally.errors[kind] += 1


async def run_load(port: int, *, clients: int, seconds: float, max_requests: int, mix: list[float],
                   clips: list[bytes], queries: list[str], seed: int) -> tuple[Tally, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:
        found = await http.post("/v1/search", json={"query": "rock", "limit": 200})
        track_ids = [t["track_id"] for t in found.json()["results"]]
        tally = Tally()
        t0 = time.monotonic()
        await asyncio.gather(*(client_loop(http, tally=tally, rng=random.Random(seed * 1000 + i), mix=mix,
                                           clips=clips, queries=queries, track_ids=track_ids,
                                           stop_at=t0 + seconds, max_requests=max_requests)
                               for i in range(clients)))
        return tally, time.monotonic() - t0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-requests", type=int, default=20000, help="bound on requests in all")
    ap.add_argument("--mix", type=float, nargs=3, default=[0.4, 0.3, 0.3], metavar=("IDENTIFY", "SEARCH", "SIMILAR"))
    ap.add_argument("--catalog", type=int, default=24, help="real tracks in the catalog")
    ap.add_argument("--world", type=int, default=20000, help="sample tracks in the world tier")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, default=None, help="data dir to keep (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "load.json")
    ap.add_argument("--reuse", action="store_true",
                    help="--dir was filled by an earlier run with the same --catalog, --world and --seed")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for the server only (repeatable), e.g. ENCORE_ANALYSIS_WORKERS=0")
    args = ap.parse_args()
    if shutil.which("ffmpeg") is None:
        sys.exit("ffmpeg is needed")

    with tempfile.TemporaryDirectory(prefix="encore-load-") as tmp:
        work = Path(tmp)
        data = args.dir or work / "data"
        # Every simulated client comes from 127.0.0.1: the per-client rate limit would count them as one.
        env = {**os.environ, "ENCORE_DATA_DIR": str(data), "ENCORE_RATE_LIMIT_PER_MINUTE": "0"}
        env.pop("ENCORE_QDRANT_URL", None)
        server_env = dict(item.split("=", 1) for item in args.server_env)
        if args.reuse and args.dir is None:
            sys.exit("--reuse needs --dir")
        tracks = prepare_data(env, catalog=args.catalog, world=args.world, work=work, seed=args.seed,
                              fill=not args.reuse)
        clips = make_clips(tracks, count=args.clips, catalog=args.catalog, work=work, seed=args.seed)
        queries = [json.loads(line)["query"] for line in QUERIES.read_text().splitlines() if line.strip()]
        port = free_port()
        server = start_server({**env, **server_env}, port)
        try:
            cpu0, own0 = tree_cpu_seconds(server.pid), own_cpu_seconds(server.pid)
            tally, wall = asyncio.run(run_load(port, clients=args.clients, seconds=args.seconds,
                                               max_requests=args.max_requests, mix=args.mix, clips=clips,
                                               queries=queries, seed=args.seed))
            cores = (tree_cpu_seconds(server.pid) - cpu0) / wall
            own_cores = (own_cpu_seconds(server.pid) - own0) / wall
            rss = peak_rss_mb(server.pid)
            # Child processes (ffmpeg runs end, pool workers stay): the largest and their sum, now.
            child_rss = [peak_rss_mb(child) for child in descendants(server.pid)]
            child_rss = [r for r in child_rss if r == r]
            alive = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=30)

    every = [x for k in KINDS for x in tally.latencies[k]]
    rows = []
    for kind, values in [*tally.latencies.items(), ("all", every)]:
        errors = sum(tally.errors.values()) if kind == "all" else tally.errors[kind]
        rows.append({"kind": kind, "requests": len(values), "per_s": round(len(values) / wall, 1),
                     "p50_ms": round(pct(values, 50), 1), "p95_ms": round(pct(values, 95), 1),
                     "p99_ms": round(pct(values, 99), 1), "errors": errors})
    print(f"\n{args.clients} clients for {wall:.1f} s on loopback ({os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}); mix identify/search/similar {args.mix}\n")
    print("| kind | requests | per s | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kind']} | {r['requests']} | {r['per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
              f"| {r['errors']} |")
    print(f"\nstatuses {tally.statuses}; server peak RSS {rss:.0f} MiB (+ {len(child_rss)} child processes: "
          f"{sum(child_rss):.0f} MiB, largest {max(child_rss, default=0):.0f}); server CPU {cores:.2f} cores "
          f"with its child processes (ffmpeg, analysis workers), {own_cores:.2f} in the server process itself; "
          f"healthy after: {alive}; server settings {server_env}")
    report = {"clients": args.clients, "seconds": round(wall, 2), "mix": args.mix, "catalog": args.catalog,
              "world": args.world, "rows": rows, "statuses": tally.statuses, "peak_rss_mb": round(rss, 1),
              "children_peak_rss_mb": [round(r, 1) for r in child_rss], "server_env": server_env,
              "cpu_cores": round(cores, 2), "cpu_cores_server_process": round(own_cores, 2), "healthy_after": alive, "machine": platform.machine(),
              "cpus": os.cpu_count(), "loadavg": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.out}")
    if sum(tally.errors.values()) or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
