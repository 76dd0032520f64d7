"""Real recorded music for the identification benchmark, taken from Debian game-data packages.

Free games ship their soundtracks as ogg/opus (and a few tracker modules) inside ordinary
Debian packages, so ``apt-get download`` is a dependable, licence-clean source of a few hours
of varied, professionally produced music: orchestral scores, rock, electronic, ambient,
chiptune and acoustic pieces by some 30 composers.

Pipeline (everything cached under ``cache_dir``, default ``bench/.cache/music``)::

    debs/<pkg>_<ver>_all.deb          apt-get download (skipped when present)
    root/<pkg>/...                    dpkg-deb -x (skipped when already extracted)
    manifest.json                     the chosen tracks, package versions, licences

Tracks are the audio files under each package's music directories that ffprobe says last at
least :data:`MIN_SECONDS` (shorter files are jingles and sound effects). Byte-identical files are
dropped (sha1), and so are *near* duplicates, i.e. the same recording shipped twice (a
remastered "enhanced" copy, an old render of the same arrangement): a benchmark catalog that
holds the same audio under two ids can only score wrong answers on it. Tracks that share
shorter stretches of audio (loops reused across one soundtrack, a passage lifted from another
piece) are kept but linked both ways in ``shares_audio_with``, so the benchmark can tell a
"false" match on shared audio from a real one. Both are found by cross-correlating coarse
spectral-flux envelopes, then spectro-temporal band patches (see :func:`overlaps`). Shared
stretches shorter than that (a stinger, a loop) are checked per match, at the clip's length, by
:func:`clip_audio_match`.

CLI::

    python bench/music.py [--cache bench/.cache/music] [--min-tracks 120] [--refresh]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Files shorter than this are jingles or sound effects, not tracks.
MIN_SECONDS = 45.0
MANIFEST_VERSION = 2
#: Fraction of aligned patches (see :func:`overlaps`) from which two files count as one recording.
NEAR_DUPLICATE_ALIGNED = 0.4
#: Seconds of contiguous shared audio from which two kept tracks are linked as sharing audio.
SHARED_SECONDS = 15.0
DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "music"

#: Extensions of audio files considered. Tracker modules (.xm/.mod/.it/.s3m) only when this
#: ffmpeg is built with libopenmpt, which renders them faithfully.
AUDIO_EXTS = (".ogg", ".oga", ".opus", ".mp3", ".flac", ".wav")
TRACKER_EXTS = (".xm", ".mod", ".it", ".s3m")


@dataclass(frozen=True)
class Package:
    """A Debian package shipping music: its styles and where in it the music lies."""

    style: str
    music_dirs: str = r"/(music|musics|music\.ocg)/"
    """Regex searched in the file's path inside the package (with a leading '/')."""


#: Packages surveyed (Debian bookworm). Sizes are the .deb downloads.
PACKAGES: dict[str, Package] = {
    # 153 MB, 34 tracks, ~2.1 h: symphonic scores by 10 composers.
    "wesnoth-1.16-music": Package("orchestral, romantic classical, folk/acoustic (lute, flute)"),
    # 162 MB, 43 tracks: chiptune-ish, synth-pop, orchestral, electronic (~15 composers).
    "supertux-data": Package("chiptune/retro, synth pop, orchestral, electronic"),
    # 146 MB, 26 tracks: rock, oriental, pirate, latin, ambient.
    "hedgewars-data": Package("rock, world (oriental, latin), funk, ambient, comedic"),
    # 86 MB, 28 long tracks (4 h): dark electronic / industrial / rock soundtracks.
    "warzone2100-music": Package("electronic, industrial, rock, ambient soundscapes"),
    # 32 MB, 10 tracks: one theme per world (aztec, electro, japanese, greek ...).
    "pushover-data": Package("world/ethnic themes, electro, synth", music_dirs=r"/themes/"),
    # 32 MB, 7 tracks: rock and electronic.
    "xmoto-data": Package("rock, electronic, funk"),
    # 41 MB, 6 tracks: ballad, electronic, jazzy.
    "extremetuxracer-data": Package("piano ballad, electronic, jazz-pop"),
    # 22 MB, 3 tracks.
    "frozen-bubble-data": Package("synth pop, electronic", music_dirs=r"/snd/"),
    # 13 MB, 3 tracker modules (.xm/.mod).
    "ri-li-data": Package("chiptune / tracker (mod, xm)", music_dirs=r"/sounds/"),
    # 8 MB, 1 Impulse Tracker module.
    "tomatoes-data": Package("chiptune / tracker (it)"),
}
DEFAULT_PACKAGES: tuple[str, ...] = tuple(PACKAGES)

#: Other packages surveyed and left out (tracks of >= 45 s, download size), for the record:
#: freedroidrpg-data (18, 228 MB: ambient/dnb), flare-game (12, 122 MB: orchestral fantasy),
#: openclonk-data (8, 112 MB: house, reggae, rock), fillets-ng-data (12, 70 MB: ambient),
#: lincity-ng-data (3, 44 MB: blues), and neverball/openarena/teeworlds/boswars (no long music).


# ----------------------------------------------------------------------------- download


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _find_deb(debs: Path, pkg: str) -> Path | None:
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    return found[-1] if found else None


def download(pkg: str, debs: Path, *, _updated: list[bool] | None = None) -> Path:
    """``apt-get download pkg`` into ``debs`` unless a .deb of it is already there.

    Runs ``apt-get update`` once (per process) when the download fails, e.g. for missing lists.
    """
    debs.mkdir(parents=True, exist_ok=True)
    deb = _find_deb(debs, pkg)
    if deb is not None:
        return deb
    updated = _updated if _updated is not None else _APT_UPDATED
    proc = _run(["apt-get", "download", pkg], cwd=debs)
    if proc.returncode != 0 and not updated[0]:
        updated[0] = True
        upd = _run(["apt-get", "update"])
        if upd.returncode != 0:
            raise RuntimeError(f"apt-get update failed: {upd.stderr.strip()[-500:]}")
        proc = _run(["apt-get", "download", pkg], cwd=debs)
    deb = _find_deb(debs, pkg)
    if proc.returncode != 0 or deb is None:
        raise RuntimeError(f"apt-get download {pkg} failed: {proc.stderr.strip()[-500:]}")
    return deb


_APT_UPDATED = [False]


def extract(deb: Path, dest: Path) -> Path:
    """``dpkg-deb -x deb dest`` unless ``dest`` already holds this .deb's contents."""
    marker = dest / ".extracted"
    if marker.is_file() and marker.read_text().strip() == deb.name:
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    proc = _run(["dpkg-deb", "-x", str(deb), str(dest)])
    if proc.returncode != 0:
        raise RuntimeError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()[-500:]}")
    marker.write_text(deb.name + "\n")
    return dest


def _deb_field(deb: Path, field: str) -> str:
    return _run(["dpkg-deb", "-f", str(deb), field]).stdout.strip()


# ----------------------------------------------------------------------------- probing


def _ffmpeg_has_openmpt() -> bool:
    if shutil.which("ffmpeg") is None:
        return False
    return "libopenmpt" in _run(["ffmpeg", "-hide_banner", "-formats"]).stdout


def probe(path: Path) -> tuple[float | None, dict[str, str]]:
    """Duration (s) and lower-cased tags of ``path``'s first audio stream, per ffprobe."""
    proc = _run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
                 "-select_streams", "a:0", str(path)], timeout=120)
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return None, {}
    streams = info.get("streams") or []
    if proc.returncode != 0 or not streams:
        return None, {}
    fmt = info.get("format") or {}
    dur = streams[0].get("duration") or fmt.get("duration")
    tags = {str(k).lower(): str(v).strip() for k, v in {**(fmt.get("tags") or {}),
                                                          **(streams[0].get("tags") or {})}.items()}
    try:
        return (float(dur) if dur not in (None, "N/A") else None), tags
    except ValueError:
        return None, tags


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _title_from_name(path: Path) -> str:
    stem = re.sub(r"[_\-]+", " ", path.stem).strip(" @")
    stem = re.sub(r"\s+", " ", stem)
    return stem[:1].upper() + stem[1:] if stem else path.name


# ----------------------------------------------------------------------------- near duplicates

_ENV_SR = 8000
_ENV_HOP = 256  # 31.25 envelope frames per second
_ENV_WIN = 300  # 9.6 s query windows
_ENV_WINDOWS = 6
_N_BANDS = 24


def _decode(path: Path, sr: int) -> np.ndarray:
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1",
                           "-ar", str(sr), "-f", "f32le", "pipe:1"], capture_output=True, timeout=600, check=False)
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float64)


def features(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Coarse, time-aligned descriptions of ``path`` for near-duplicate search.

    Returns
    -------
    flux : np.ndarray [shape=(t,)]
        standardised spectral-flux envelope (16 bands summed), 31.25 frames/s
    bands : np.ndarray [shape=(24, t)]
        log energies in 24 log-spaced bands (100-3800 Hz), each minus its 1 s moving average
        and standardised: the spectro-temporal detail that a re-encoding or remaster keeps and
        that another piece with the same tempo does not have.
    """
    from scipy import ndimage, signal

    y = _decode(path, _ENV_SR)
    if y.size < _ENV_SR:
        return np.zeros(0, np.float32), np.zeros((_N_BANDS, 0), np.float32)
    _, _, spec = signal.stft(y, _ENV_SR, nperseg=2 * _ENV_HOP, noverlap=_ENV_HOP, padded=False, boundary=None)
    power = np.abs(spec) ** 2
    logmag = np.log1p(100.0 * np.sqrt(power))
    lin = np.stack([b.mean(axis=0) for b in np.array_split(logmag[1:], 16, axis=0)])
    flux = np.maximum(np.diff(lin, axis=1), 0.0).sum(axis=0)
    flux = (flux - flux.mean()) / (flux.std() + 1e-9)
    freqs = np.fft.rfftfreq(2 * _ENV_HOP, 1 / _ENV_SR)
    edges = np.geomspace(100.0, 3800.0, _N_BANDS + 1)
    idx = np.searchsorted(edges, freqs) - 1
    bands = np.stack([power[idx == b].sum(axis=0) for b in range(_N_BANDS)])
    bands = np.log(bands + 1e-6 * (bands.max() + 1e-12))[:, 1:]
    bands -= ndimage.uniform_filter1d(bands, size=31, axis=1, mode="nearest")
    bands = (bands - bands.mean(axis=1, keepdims=True)) / (bands.std(axis=1, keepdims=True) + 1e-9)
    return flux.astype(np.float32), bands.astype(np.float32)


def _window_scores(windows: np.ndarray, target: np.ndarray, cache: dict[int, np.ndarray]) -> np.ndarray:
    """Peak Pearson correlation of each row of ``windows`` slid along ``target``.

    ``windows`` [shape=(k, w)] are standardised; ``cache`` keeps their spectra per FFT size.
    """
    k, w = windows.shape
    if target.size < w or k == 0:
        return np.zeros(k)
    n = 1 << int(np.ceil(np.log2(target.size + w)))
    if n not in cache:
        cache[n] = np.conj(np.fft.rfft(windows, n, axis=1)).astype(np.complex64)
    spec_t = np.fft.rfft(target, n).astype(np.complex64)
    csum = np.concatenate([[0.0], np.cumsum(target)])
    csq = np.concatenate([[0.0], np.cumsum(target * target)])
    mean = (csum[w:] - csum[:-w]) / w
    norm = w * np.sqrt(np.maximum((csq[w:] - csq[:-w]) / w - mean * mean, 1e-6))
    lags = target.size - w + 1
    out = np.empty(k)
    for s in range(0, k, 256):
        raw = np.fft.irfft(cache[n][s:s + 256] * spec_t, n, axis=1)[:, :lags]
        out[s:s + 256] = (raw / norm).max(axis=1)
    return out


def _patch_scores(queries: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best Pearson correlation, and its lag, of each 2-D patch ``queries[k]`` [bands, w] slid
    along ``target`` [bands, t]."""
    k, b, w = queries.shape
    t = target.shape[1]
    if t < w:
        return np.zeros(k), np.zeros(k, dtype=int)
    q = queries - queries.mean(axis=(1, 2), keepdims=True)
    q /= q.std(axis=(1, 2), keepdims=True) + 1e-9
    n = 1 << int(np.ceil(np.log2(t + w)))
    cross = np.einsum("kbf,bf->kf", np.conj(np.fft.rfft(q, n, axis=2)), np.fft.rfft(target, n, axis=1))
    raw = np.fft.irfft(cross, n, axis=1)[:, :t - w + 1]
    csum = np.concatenate([[0.0], np.cumsum(target.sum(axis=0))])
    csq = np.concatenate([[0.0], np.cumsum((target * target).sum(axis=0))])
    m = b * w
    mean = (csum[w:] - csum[:-w]) / m
    corr = raw / (m * np.sqrt(np.maximum((csq[w:] - csq[:-w]) / m - mean * mean, 1e-6)))
    lags = corr.argmax(axis=1)
    return corr[np.arange(k), lags], lags


def _aligned_windows(a: np.ndarray, b: np.ndarray, *, windows: int = 10, min_corr: float = 0.3,
                     tolerance: int = 3) -> int:
    """How many of ``windows`` evenly spread 9.6 s patches of ``a`` are found in ``b`` (correlation
    >= ``min_corr``) at one common time offset (within ``tolerance`` frames)."""
    if a.shape[1] < 2 * _ENV_WIN or b.shape[1] < _ENV_WIN:
        return 0
    starts = np.linspace(0.02 * a.shape[1], 0.98 * a.shape[1] - _ENV_WIN, windows).astype(int)
    corr, lags = _patch_scores(np.stack([a[:, s:s + _ENV_WIN] for s in starts]).astype(np.float64),
                               b.astype(np.float64))
    offsets = lags - starts
    good = corr >= min_corr
    return max(int(np.sum(good & (np.abs(offsets - o) <= tolerance))) for o in offsets)


def _coarse(bands: np.ndarray) -> np.ndarray:
    """``bands`` [24, t] at half the frame rate (15.6/s) and in 8 bands, re-standardised."""
    t = bands.shape[1] // 2 * 2
    b = bands[:, :t].astype(np.float64).reshape(_N_BANDS, t // 2, 2).mean(axis=2)
    b = b.reshape(8, _N_BANDS // 8, -1).mean(axis=1)
    return (b - b.mean(axis=1, keepdims=True)) / (b.std(axis=1, keepdims=True) + 1e-9)


_RUN_WIN = 78  # 5 s at 15.6 frames/s
_RUN_HOP = 39  # 2.5 s


def _shared_run(a: np.ndarray, b: np.ndarray, *, min_corr: float = 0.5, tolerance: int = 2) -> int:
    """Longest run of consecutive 5 s windows (2.5 s apart) of coarse features ``a`` found in ``b``
    (correlation >= ``min_corr``) at one time offset."""
    if a.shape[1] < _RUN_WIN or b.shape[1] < _RUN_WIN:
        return 0
    starts = np.arange(0, a.shape[1] - _RUN_WIN + 1, _RUN_HOP)
    corr, lags = _patch_scores(np.stack([a[:, s:s + _RUN_WIN] for s in starts]), b)
    offsets = lags - starts
    best = run = 0
    prev = None
    for c, o in zip(corr, offsets, strict=True):
        if c >= min_corr:
            run = run + 1 if prev is not None and abs(o - prev) <= tolerance else 1
            prev = o
        else:
            run, prev = 0, None
        best = max(best, run)
    return best


def overlaps(paths: list[Path], *, screen: float = 0.7, workers: int = 2, progress: bool = True) -> list[dict]:
    """Pairs of ``paths`` that hold the same audio, in whole or in part.

    Returns
    -------
    pairs : list of ``{"i", "j", "aligned", "shared_s"}`` (i < j), for candidate pairs where
        ``aligned >= 0.3`` or ``shared_s >= SHARED_SECONDS``:

        - ``aligned``: the fraction of ten 9.6 s patches of 24-band spectro-temporal detail of
          one track found in the other *at one common time offset* (either way round). A
          remastered copy of one recording aligns 0.8-0.9; unrelated pieces, even by one
          composer at one tempo, at most 0.2.
        - ``shared_s``: the longest stretch of one track found contiguously in the other (5 s
          windows every 2.5 s, at one offset): shared loops, a reused section, a quoted intro.

    Screening first: six 9.6 s windows of each track's spectral-flux envelope are correlated
    against every other track (batched FFTs); only pairs scoring ``>= screen`` are examined.
    Rhythm alone passes the screen (two pieces at one tempo), hence the spectro-temporal checks.
    """
    with ThreadPoolExecutor(workers) as ex:
        feats = list(_progress(ex.map(features, paths), total=len(paths), desc="features", enabled=progress))
    envs = [f[0].astype(np.float64) for f in feats]
    rows, owner = [], []
    for i, env in enumerate(envs):
        if env.size < 2 * _ENV_WIN:
            continue
        for s in np.linspace(0.05 * env.size, 0.95 * env.size - _ENV_WIN, _ENV_WINDOWS).astype(int):
            win = env[s:s + _ENV_WIN]
            rows.append((win - win.mean()) / (win.std() + 1e-9))
            owner.append(i)
    windows = np.array(rows).reshape(len(rows), _ENV_WIN)
    owner = np.array(owner, dtype=int)
    score = np.zeros((len(paths), len(paths)))  # score[i, j]: windows of i found in j
    cache: dict[int, np.ndarray] = {}
    for j in _progress(range(len(paths)), total=len(paths), desc="screening", enabled=progress):
        np.maximum.at(score[:, j], owner, _window_scores(windows, envs[j], cache))
    np.fill_diagonal(score, 0.0)
    both = np.maximum(score, score.T)
    candidates = list(zip(*np.nonzero(np.triu(both) >= screen), strict=True))
    coarse = [_coarse(f[1]) for f in feats]
    out = []
    for i, j in _progress(candidates, total=len(candidates), desc="verifying", enabled=progress):
        aligned = max(_aligned_windows(feats[i][1], feats[j][1]), _aligned_windows(feats[j][1], feats[i][1])) / 10
        run = max(_shared_run(coarse[i], coarse[j]), _shared_run(coarse[j], coarse[i]))
        shared_s = 0.0 if run == 0 else (run - 1) * _RUN_HOP / 15.625 + _RUN_WIN / 15.625
        if aligned >= 0.3 or shared_s >= SHARED_SECONDS:
            out.append({"i": int(i), "j": int(j), "aligned": aligned, "shared_s": round(shared_s, 1)})
    return out


#: Spectro-temporal detail correlation (:func:`clip_audio_match`) from which a clip counts as
#: the very audio of the track it was matched to. Unrelated pieces, even one melody in two
#: arrangements, stay below 0.5; soundtrack pieces built on one loop library reach 0.65; the
#: same recording (another encode of it) scores above 0.95.
SAME_AUDIO_DETAIL = 0.8


def _log_spec(y: np.ndarray, sr: int) -> np.ndarray:
    from scipy import signal

    f, _, z = signal.stft(y, sr, nperseg=512, noverlap=384, boundary=None, padded=False)
    return np.log(np.abs(z[(f >= 100) & (f <= 3400)]) + 1e-4)


def clip_audio_match(clip: np.ndarray, track: np.ndarray, *, sr: int, offset_s: float, speed: float = 1.0,
                     search_s: float = 0.25) -> dict[str, float]:
    """How identical a clean clip is to a track's audio where an identification placed it.

    The manifest's ``shares_audio_with`` links (:func:`overlaps`) catch passages of 15 s and
    more; composers also reuse shorter stingers and loops. This checks one match directly, at
    the clip's length: the track is cut at ``offset_s`` (clip sample ``j`` at track time
    ``offset_s + speed * j / sr``), the best lag within ``search_s`` is found by waveform
    cross-correlation, and there the log spectrograms' *detail* (each bin minus its 0.5 s
    moving average, so that shared fades or levels do not count) is correlated.

    Returns
    -------
    dict with ``wave`` (peak normalised waveform correlation, absolute), ``detail`` (in [-1, 1]:
    ``>= SAME_AUDIO_DETAIL`` means the same audio) and ``lag_s`` (best lag found)
    """
    from scipy import ndimage, signal

    clip = np.asarray(clip, dtype=np.float64)
    n = clip.size
    span = int(np.ceil(n * speed + 2 * search_s * sr)) + 1
    start = int(round((offset_s - search_s) * sr))
    region = np.zeros(span)
    lo, hi = max(0, start), min(track.size, start + span)
    if hi > lo:
        region[lo - start : hi - start] = track[lo:hi]
    if speed != 1.0:
        region = np.interp(np.arange(int(span / speed)) * speed, np.arange(span), region)
    if region.size < n or not np.any(clip):
        return {"wave": 0.0, "detail": 0.0, "lag_s": 0.0}
    m = region.size - n + 1
    cc = signal.fftconvolve(region, clip[::-1], mode="valid")[:m]
    csq = np.concatenate([[0.0], np.cumsum(region * region)])
    norm = np.sqrt(np.maximum(csq[n : n + m] - csq[:m], 0.0) * float(clip @ clip)) + 1e-12
    k = int(np.argmax(np.abs(cc) / norm))
    a, b = _log_spec(clip, sr), _log_spec(region[k : k + n], sr)
    a = a - ndimage.uniform_filter1d(a, size=31, axis=1, mode="nearest")
    b = b - ndimage.uniform_filter1d(b, size=31, axis=1, mode="nearest")
    a, b = a - a.mean(), b - b.mean()
    detail = float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-12))
    return {"wave": round(float(abs(cc[k]) / norm[k]), 3), "detail": round(detail, 3),
            "lag_s": round((k - search_s * sr) / sr, 3)}


def _progress(it, *, total: int, desc: str, enabled: bool):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, total=total, desc=desc, file=sys.stderr, leave=False)


# ----------------------------------------------------------------------------- licences

_LICENCE_HINTS = [
    (r"GNU (Library|Lesser) General Public License", "LGPL"),
    (r"GNU General Public License", "GPL"),
    (r"Creative Commons Attribution[- ]Share ?Alike", "CC-BY-SA"),
    (r"Creative Commons Attribution(?![- ]Share)", "CC-BY"),
    (r"\bCC0\b|public domain", "CC0/public-domain"),
]


def licences(copyright_file: Path) -> dict[str, object]:
    """What ``/usr/share/doc/<pkg>/copyright`` says about the package's music.

    For machine-readable (DEP-5) files, the licences of stanzas whose ``Files:`` name a music
    directory, else of the ``Files: *`` stanza; for free-form files, the licence names the
    text mentions. Returns ``{"music": [...], "default": [...], "all": [...], "format": ...}``.
    """
    if not copyright_file.is_file():
        return {"format": "missing", "music": [], "default": [], "all": []}
    text = copyright_file.read_text(errors="replace")
    if text.lstrip().startswith("Format:") or re.search(r"^Files:", text, re.M):
        music, default, every = [], [], []
        for stanza in re.split(r"\n\s*\n", text):
            files = re.search(r"^Files:(.*(?:\n[ \t]+.*)*)", stanza, re.M)
            lic = re.search(r"^License:[ \t]*(.*)$", stanza, re.M)
            if not files or not lic or not lic.group(1).strip():
                continue
            name, patterns = lic.group(1).strip(), files.group(1).split()
            every.append(name)
            if any(re.search(r"(?i)music|/mus/", p) for p in patterns):
                music.append(name)
            if "*" in patterns:
                default.append(name)
        return {"format": "dep5", "music": sorted(set(music)), "default": sorted(set(default)),
                "all": sorted(set(every))}
    found = []
    for pattern, name in _LICENCE_HINTS:
        m = re.search(pattern + r"(.{0,200})", text, re.I | re.S)
        if m:
            version = re.search(r"version (\d(\.\d)?)", m.group(0), re.I)
            found.append(name + (f"-{version.group(1)}" if version and name in ("GPL", "LGPL") else ""))
    return {"format": "free-form", "music": [], "default": found, "all": found}


def _licence_summary(lic: dict) -> str:
    chosen = lic.get("music") or lic.get("default") or lic.get("all") or ["unknown"]
    return " / ".join(chosen)


# ----------------------------------------------------------------------------- collection


def _music_files(pkg_root: Path, info: Package) -> list[Path]:
    exts = AUDIO_EXTS + (TRACKER_EXTS if _ffmpeg_has_openmpt() else ())
    pattern = re.compile(info.music_dirs, re.I)
    out = []
    for path in pkg_root.rglob("*"):
        if path.suffix.lower() not in exts or not path.is_file() or path.is_symlink():
            continue
        rel = "/" + path.relative_to(pkg_root).as_posix()
        if pattern.search(rel):
            out.append(path)
    return sorted(out)


def _collect(cache_dir: Path, packages: tuple[str, ...] | list[str], *, dedupe_near: bool = True,
             progress: bool = True) -> dict:
    cache_dir = Path(cache_dir)
    debs, root = cache_dir / "debs", cache_dir / "root"
    t0 = time.perf_counter()
    pkg_records: dict[str, dict] = {}
    candidates: list[tuple[str, Path]] = []
    for pkg in packages:
        info = PACKAGES.get(pkg, Package(style="unknown"))
        fresh = _find_deb(debs, pkg) is None
        tp = time.perf_counter()
        deb = download(pkg, debs)
        dl_s = time.perf_counter() - tp if fresh else None
        pkg_root = extract(deb, root / pkg)
        lic = licences(pkg_root / "usr" / "share" / "doc" / pkg / "copyright")
        pkg_records[pkg] = {
            "version": _deb_field(deb, "Version"), "deb": deb.name, "deb_bytes": deb.stat().st_size,
            "download_s": round(dl_s, 2) if dl_s is not None else None, "style": info.style,
            "licence": _licence_summary(lic), "licences": lic,
            "copyright": (pkg_root / "usr/share/doc" / pkg / "copyright").relative_to(cache_dir).as_posix(),
        }
        candidates += [(pkg, p) for p in _music_files(pkg_root, info)]
    fetch_s = time.perf_counter() - t0

    with ThreadPoolExecutor(4) as ex:
        probes = list(_progress(ex.map(lambda c: probe(c[1]), candidates), total=len(candidates),
                                desc="ffprobe", enabled=progress))
    tracks, dropped, seen = [], [], {}
    for (pkg, path), (dur, tags) in zip(candidates, probes, strict=True):
        rel = path.relative_to(cache_dir).as_posix()
        if dur is None:
            dropped.append({"path": rel, "reason": "not decodable audio"})
            continue
        if dur < MIN_SECONDS:
            continue  # sound effects and jingles: not worth listing
        digest = _sha1(path)
        if digest in seen:
            dropped.append({"path": rel, "reason": f"identical to {seen[digest]}"})
            continue
        seen[digest] = rel
        tracks.append({
            "id": f"{pkg}:{path.relative_to(root / pkg).as_posix()}",
            "path": rel,
            "package": pkg,
            "duration_s": round(dur, 3),
            "title": _title_from_name(path),
            "artist": tags.get("artist") or pkg,
            "tag_title": tags.get("title"),
            "album": tags.get("album"),
            "genre": tags.get("genre"),
            "style": pkg_records[pkg]["style"],
            "format": path.suffix.lower().lstrip("."),
            "sha1": digest,
        })
    tracks.sort(key=lambda t: (t["package"], t["path"]))

    near, shared = [], []
    if dedupe_near and len(tracks) > 1:
        pairs = overlaps([cache_dir / t["path"] for t in tracks], progress=progress)
        drop: set[int] = set()
        for p in sorted(pairs, key=lambda p: -p["aligned"]):
            i, j = p["i"], p["j"]
            pair = {"a": tracks[i]["path"], "b": tracks[j]["path"], "aligned": p["aligned"], "shared_s": p["shared_s"]}
            if p["aligned"] >= NEAR_DUPLICATE_ALIGNED and i not in drop and j not in drop:
                drop.add(j)
                near.append(pair)
                dropped.append({"path": tracks[j]["path"],
                                "reason": f"near duplicate of {tracks[i]['path']} ({p['aligned']:.0%} aligned)"})
            elif i not in drop and j not in drop:
                shared.append(pair)  # shared loops or a reused passage: both kept, linked
                tracks[i].setdefault("shares_audio_with", []).append(tracks[j]["id"])
                tracks[j].setdefault("shares_audio_with", []).append(tracks[i]["id"])
        tracks = [t for k, t in enumerate(tracks) if k not in drop]

    # (title, artist) pairs unique, so that a catalog keyed on them never merges two tracks.
    count = Counter((t["title"], t["artist"]) for t in tracks)
    for t in tracks:
        if count[(t["title"], t["artist"])] > 1:
            t["title"] = f"{t['title']} ({Path(t['path']).parent.name})"
    for pkg, rec in pkg_records.items():
        rec["tracks"] = sum(t["package"] == pkg for t in tracks)
        rec["hours"] = round(sum(t["duration_s"] for t in tracks if t["package"] == pkg) / 3600, 3)
    return {
        "version": MANIFEST_VERSION,
        "min_seconds": MIN_SECONDS,
        "packages": pkg_records,
        "fetch_s": round(fetch_s, 2),
        "tracks": tracks,
        "near_duplicates": near,
        "shared_audio": shared,
        "dropped": dropped,
    }


def _load(cache_dir: Path) -> dict | None:
    path = Path(cache_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return data if data.get("version") == MANIFEST_VERSION else None


def build(cache_dir: Path = DEFAULT_CACHE, packages=DEFAULT_PACKAGES, *, refresh: bool = False,
          progress: bool = True) -> dict:
    """The whole manifest document (packages, tracks, drops), built once and cached on disk."""
    cache_dir = Path(cache_dir)
    data = None if refresh else _load(cache_dir)
    if data is not None and list(data["packages"]) == list(packages) and all(
            (cache_dir / t["path"]).is_file() for t in data["tracks"]):
        return data
    data = _collect(cache_dir, tuple(packages), progress=progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(cache_dir / "manifest.json")
    return data


def fetch(cache_dir: Path = DEFAULT_CACHE, packages=DEFAULT_PACKAGES) -> list[Path]:
    """Download and unpack ``packages``; return their music tracks (absolute paths, sorted).

    Tracks last at least :data:`MIN_SECONDS`; identical and near-identical files appear once.
    """
    data = build(cache_dir, packages)
    return [(Path(cache_dir) / t["path"]).resolve() for t in data["tracks"]]


def manifest(cache_dir: Path = DEFAULT_CACHE, packages=DEFAULT_PACKAGES, *, refresh: bool = False) -> list[dict]:
    """The benchmark's tracks, read from ``cache_dir/manifest.json`` (built on first use).

    Returns
    -------
    tracks : list of dict, in a deterministic order (package, then path), each with
        ``id`` (stable "package:path-in-package"), ``path`` (absolute), ``package``,
        ``duration_s``, ``title`` (from the file name), ``artist`` (the ARTIST tag, else the
        package name), ``album``, ``genre``, ``style``, ``format``, ``sha1``.
    """
    cache_dir = Path(cache_dir)
    data = build(cache_dir, packages, refresh=refresh)
    return [{**t, "path": str((cache_dir / t["path"]).resolve())} for t in data["tracks"]]


# ----------------------------------------------------------------------------- CLI


def summary(data: dict) -> str:
    """A markdown summary of a manifest document."""
    tracks = data["tracks"]
    hours = sum(t["duration_s"] for t in tracks) / 3600
    by_pkg = defaultdict(list)
    for t in tracks:
        by_pkg[t["package"]].append(t)
    lines = ["| package | version | tracks | hours | artists | .deb MB | styles | licence (music) |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for pkg, rec in data["packages"].items():
        ts = by_pkg.get(pkg, [])
        artists = {t["artist"] for t in ts}
        lines.append(f"| {pkg} | {rec['version']} | {len(ts)} | {sum(t['duration_s'] for t in ts) / 3600:.2f} | "
                     f"{len(artists)} | {rec['deb_bytes'] / 1e6:.0f} | {rec['style']} | {rec['licence']} |")
    deb_mb = sum(r["deb_bytes"] for r in data["packages"].values()) / 1e6
    fresh = [r for r in data["packages"].values() if r.get("download_s") is not None]
    download = (f" Downloaded {sum(r['deb_bytes'] for r in fresh) / 1e6:.0f} MB in "
                f"{sum(r['download_s'] for r in fresh):.0f} s this build." if fresh else "")
    durs = np.array([t["duration_s"] for t in tracks]) if tracks else np.zeros(1)
    formats = Counter(t["format"] for t in tracks)
    lines += [
        "",
        f"**{len(tracks)} tracks, {hours:.2f} h** of audio from {len(data['packages'])} packages "
        f"({deb_mb:.0f} MB of .debs; fetch+extract {data.get('fetch_s', 0):.0f} s this build).{download}",
        f"Durations: min {durs.min():.0f} s, median {np.median(durs):.0f} s, max {durs.max():.0f} s. "
        f"Formats: {', '.join(f'{k} {v}' for k, v in formats.most_common())}. "
        f"Distinct artist tags/stand-ins: {len({t['artist'] for t in tracks})}.",
    ]
    if data.get("near_duplicates"):
        lines += ["", "Near duplicates dropped (same recording shipped twice):"]
        lines += [f"- dropped {Path(n['b']).name} ~ kept {Path(n['a']).name} ({n['aligned']:.0%} of patches aligned)"
                  for n in data["near_duplicates"]]
    if data.get("shared_audio"):
        lines += ["", f"Kept, but sharing audio (>= {SHARED_SECONDS:g} s at one offset, or 30% of patches aligned; "
                  "linked in the manifest as `shares_audio_with`):"]
        lines += [f"- {Path(n['a']).name} ~ {Path(n['b']).name} ({n['shared_s']:g} s, {n['aligned']:.0%} aligned)"
                  for n in data["shared_audio"]]
    other = [d for d in data.get("dropped", []) if not d["reason"].startswith("near duplicate")]
    if other:
        lines += ["", f"Other files dropped: {len(other)}"]
        lines += [f"- {d['path']}: {d['reason']}" for d in other[:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache directory (debs, extracted roots)")
    ap.add_argument("--min-tracks", type=int, default=120, help="exit 1 when fewer tracks are found")
    ap.add_argument("--packages", nargs="*", default=list(DEFAULT_PACKAGES), help="Debian packages to use")
    ap.add_argument("--refresh", action="store_true", help="rebuild manifest.json even when present")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    data = build(args.cache, args.packages, refresh=args.refresh)
    print(summary(data))
    print(f"\nmanifest: {args.cache / 'manifest.json'} ({time.perf_counter() - t0:.1f} s)")
    n = len(data["tracks"])
    if n < args.min_tracks:
        print(f"FAIL: {n} tracks < --min-tracks {args.min_tracks}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
