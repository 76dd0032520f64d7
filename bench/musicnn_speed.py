"""Speed of the numpy musicnn encoder: a naive port against Encore's batched float32 path.

(a) naive: a straight port of musicnn's graph, one 3 s patch at a time in float64; each layer
    computed as written (convolution, ReLU, batch norm on the full feature map, then pooling);
    features from :func:`encore.encoders.musicnn.mel_spectrogram` over the whole signal. Its
    convolutions are ``einsum`` over sliding windows, so BLAS already does the heavy products:
    a fair numpy baseline, not Python loops.
(b) ours: ``MusicnnEncoder.embed`` with ``max_patches=None``, i.e. the same 10 patches per 30 s:
    float32, patches batched, pooling before ReLU and batch norm, shared temporal windows,
    mel frames computed only where patches lie.

Both run on the same synthetic 30 s signal; the figure is the median wall time over
``--repeats`` runs, after one warm-up, per 30 s of audio. Their outputs are compared too. Last,
the default encoder (at most ``MusicnnParams().max_patches`` patches) on a ``--track-seconds``
track, the cost per track in an ingest.

``--convergence K`` also takes K real tracks from ``bench/music.py``'s cache (when present) and
reports how close the mean embedding over N evenly spread patches comes to the one over all
patches (cosine), for several N: the basis of the default ``max_patches``.

Run ``taskset -c 0 python bench/musicnn_speed.py`` (with ``OPENBLAS_NUM_THREADS=1``) for one-core
figures; the machine's other load shows in the printed load average. On a busy machine
``OPENBLAS_NUM_THREADS=1`` can be the faster setting even for the whole run: two BLAS threads
that keep waiting for each other's core lose more than they share.

Usage::

    python bench/musicnn_speed.py [--repeats 5] [--seconds 30] [--track-seconds 240] [--convergence 8]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent))

from encore.encoders.musicnn import (  # noqa: E402
    PATCH_FRAMES,
    SR,
    MusicnnEncoder,
    MusicnnParams,
    default_checkpoint,
    log_compress,
    mel_spectrogram,
)
from encore.encoders.tfcheckpoint import read_checkpoint  # noqa: E402

EPS = 1e-3


def signal(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Chords of harmonic tones changing every 2 s, with noise hits: music-like, deterministic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = 0.05 * rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0.6)
    for i, root in enumerate(rng.uniform(100, 400, size=int(np.ceil(seconds / 2)))):
        part = slice(int(i * 2 * SR), int((i + 1) * 2 * SR))
        for h in (1, 2, 3, 5):
            y[part] += 0.08 / h * np.sin(2 * np.pi * root * h * t[part])
    return y.astype(np.float32)


# --------------------------------------------------------------------------------------------
# (a) The naive reference: musicnn's graph layer by layer, float64, one patch at a time.


def _bn(v: dict[str, np.ndarray], i: int, x: np.ndarray) -> np.ndarray:
    key = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
    return (x - v[f"{key}/moving_mean"]) / np.sqrt(v[f"{key}/moving_variance"] + EPS) * v[f"{key}/gamma"] + v[f"{key}/beta"]


def _conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """'valid' conv of one single-channel image x [H, W] with kernel [kh, kw, 1, out] -> [H', W', out]."""
    kh, kw = kernel.shape[:2]
    windows = sliding_window_view(x, (kh, kw))  # [H', W', kh, kw]
    return np.einsum("ijkl,klo->ijo", windows, kernel[:, :, 0, :], optimize=True) + bias


def naive_patch(v: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One patch x [187, 96] -> (probabilities [50], penultimate [200]), float64."""
    x = _bn(v, 0, x)
    feats = []
    padded = np.pad(x, ((3, 3), (0, 0)))
    for conv, bn in (("conv2d", 1), ("conv2d_1", 2)):
        z = np.maximum(_conv2d(padded, v[f"{conv}/kernel"], v[f"{conv}/bias"]), 0)
        feats.append(_bn(v, bn, z).max(axis=1))
    for conv, bn in (("conv2d_2", 3), ("conv2d_3", 4), ("conv2d_4", 5)):
        k = v[f"{conv}/kernel"].shape[0]
        before = (k - 1) // 2
        same = np.pad(x, ((before, k - 1 - before), (0, 0)))
        z = np.maximum(_conv2d(same, v[f"{conv}/kernel"], v[f"{conv}/bias"]), 0)
        feats.append(_bn(v, bn, z).max(axis=1))
    front = np.concatenate(feats, axis=1)  # [187, 561]

    layers = [front]
    h = front
    for j, (conv, bn) in enumerate((("conv2d_5", 6), ("conv2d_6", 7), ("conv2d_7", 8))):
        z = _conv2d(np.pad(h, ((3, 3), (0, 0))), v[f"{conv}/kernel"], v[f"{conv}/bias"])[:, 0, :]
        out = _bn(v, bn, np.maximum(z, 0))
        h = out if j == 0 else out + h
        layers.append(h)
    mid = np.concatenate(layers, axis=1)  # [187, 753]

    flat = np.stack([mid.max(axis=0), mid.mean(axis=0)], axis=1).reshape(-1)
    flat = _bn(v, 9, flat)
    pen = _bn(v, 10, np.maximum(flat @ v["dense/kernel"] + v["dense/bias"], 0))
    logits = pen @ v["dense_1/kernel"] + v["dense_1/bias"]
    return 1 / (1 + np.exp(-logits)), pen


def naive_embed(v: dict[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rep = log_compress(mel_spectrogram(y.astype(np.float64), sr=SR).T).astype(np.float64)
    outs = [naive_patch(v, rep[s:s + PATCH_FRAMES]) for s in range(0, rep.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)]
    return np.mean([o[0] for o in outs], axis=0), np.mean([o[1] for o in outs], axis=0)


# --------------------------------------------------------------------------------------------


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up: weights, caches, BLAS threads
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "?"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name')} {deps.get('version')}"
    except Exception:  # noqa: BLE001 (only informative)
        pass
    threads = {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ}
    return (f"{cpu}; {os.cpu_count()} CPUs, {len(os.sched_getaffinity(0))} usable; load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; Python {platform.python_version()}, "
            f"numpy {np.__version__} ({blas}) {threads or ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the timed signal")
    ap.add_argument("--track-seconds", type=float, default=240.0, help="track for the default-params figure")
    ap.add_argument("--convergence", type=int, default=0, metavar="K", help="real tracks for the max_patches study")
    ap.add_argument("--music-cache", type=Path, default=_HERE / ".cache" / "music", help="bench/music.py's cache")
    args = ap.parse_args()

    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    print("machine:", machine())

    y = signal(args.seconds)
    per = 30.0 / args.seconds
    variables = {k: v.astype(np.float64) for k, v in read_checkpoint(default_checkpoint()).items()}
    every = MusicnnEncoder(params=MusicnnParams(max_patches=None))
    every.load()

    ref_tags, ref_vec = naive_embed(variables, y)
    ours = every.embed(y, sr=SR)
    print(f"{ours.n_patches} patches; ours vs naive: tags max |diff| {np.abs(ours.tags - ref_tags).max():.1e}, "
          f"embedding max |diff| {np.abs(ours.vector - ref_vec).max():.1e}")

    naive_t = timed(lambda: naive_embed(variables, y), args.repeats)
    ours_t = timed(lambda: every.embed(y, sr=SR), args.repeats)
    naive_med, ours_med = statistics.median(naive_t) * per, statistics.median(ours_t) * per
    print(f"(a) naive, per patch, float64 : {naive_med:.3f} s per 30 s (runs: {', '.join(f'{t:.2f}' for t in naive_t)})")
    print(f"(b) ours, batched, float32    : {ours_med:.3f} s per 30 s (runs: {', '.join(f'{t:.2f}' for t in ours_t)})")
    print(f"speed-up: {naive_med / ours_med:.1f}x")

    track = signal(args.track_seconds, seed=1)
    default = MusicnnEncoder()
    default.load()
    track_t = timed(lambda: default.embed(track, sr=SR), args.repeats)
    print(f"default params (max_patches={default.params.max_patches}) on a {args.track_seconds:.0f} s track: "
          f"{statistics.median(track_t):.3f} s median (runs: {', '.join(f'{t:.2f}' for t in track_t)})")
    print("machine after:", f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.convergence:
        convergence(args.music_cache, args.convergence)


def convergence(cache: Path, k: int, sizes: tuple[int, ...] = (4, 8, 12, 16, 24)) -> None:
    """Cosine between the embedding over N evenly spread patches and over all, on real tracks."""
    import json

    from indexers.decode import load_audio

    manifest = cache / "manifest.json"
    if not manifest.exists():
        print(f"no {manifest}: run bench/music.py first")
        return
    tracks = json.loads(manifest.read_text())["tracks"]
    picks = np.random.default_rng(0).choice(len(tracks), size=min(k, len(tracks)), replace=False)
    every = MusicnnEncoder(params=MusicnnParams(max_patches=None))
    cosines: dict[int, list[float]] = {n: [] for n in sizes}
    for i in picks:
        y, _ = load_audio(cache / tracks[i]["path"], sr=SR, max_seconds=3600)
        full = every.embed(y, sr=SR)
        for n in sizes:
            v = MusicnnEncoder(params=MusicnnParams(max_patches=n)).embed(y, sr=SR).vector
            cosines[n].append(float(v @ full.vector / np.linalg.norm(v) / np.linalg.norm(full.vector)))
        print(f"  {tracks[i]['title'][:30]:30s} {y.size / SR:5.0f} s, {full.n_patches} patches, tags {full.top_tags(3)}")
    for n in sizes:
        print(f"max_patches={n:2d}: cosine to all patches min {min(cosines[n]):.4f}, median {np.median(cosines[n]):.4f}")


if __name__ == "__main__":
    main()
