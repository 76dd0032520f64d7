"""Verification of landmark candidates, in two independent steps.

Qdrant's inverted index proposes catalog segments sharing many hashes with a clip. Sharing
hashes is not enough (common intervals recur across music):

1. :func:`align`: a true match puts the shared hashes at one consistent offset
   ``t_catalog - speed * t_clip``, spread over the whole clip (``coverage``).
2. :func:`envelope_correlation`: at that offset and speed, the clip's band-energy envelope must
   follow the catalog track's. Two pieces in the same key and tempo share landmark intervals by
   chance far more often than the landmark statistics suggest, but they don't share their
   loudness contours band by band; a noisy or band-limited copy of the same recording does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from indexers.fingerprint import Landmarks


@dataclass(frozen=True, slots=True)
class MatchParams:
    """How strict identification is, and how much work it does per clip."""

    #: Catalog segment length in frames (10.24 s at the default hop).
    segment_frames: int = 320
    #: Candidate segments asked from Qdrant per speed hypothesis.
    candidates: int = 10
    #: Candidate tracks verified per stage.
    max_tracks: int = 6
    #: Speed hypotheses, tried in stages: first 1.0, then the rest (only when no match yet).
    speed_max: float = 0.025
    speed_step: float = 0.007
    #: Offset histogram window, in frames.
    window: int = 3
    #: A candidate is examined further with at least this many aligned landmarks, spread over
    #: at least ``min_coverage`` quarter-seconds of the clip ...
    min_aligned: int = 10
    min_coverage: int = 5
    #: ... and is a match when its envelope correlation reaches ``min_envelope``.
    min_envelope: float = 0.60
    #: Envelope correlations of unrelated tracks at their best landmark alignment: 99 % fall
    #: below about 0.3 (BENCHMARKS.md); their tail is modelled as exp(-(r - null) / scale) and
    #: confidence is 1 minus it.
    envelope_null: float = 0.30
    envelope_scale: float = 0.06

    def speed_stages(self) -> list[tuple[float, ...]]:
        steps = int(math.floor(self.speed_max / self.speed_step + 1e-9))
        rest = [1.0 + sign * k * self.speed_step for k in range(1, steps + 1) for sign in (1, -1)]
        return [(1.0,), tuple(rest)] if rest else [(1.0,)]


@dataclass(frozen=True, slots=True)
class Alignment:
    """The best offset between a clip and one catalog track under one speed hypothesis."""

    aligned: int
    """Distinct clip landmarks whose catalog twin lies at the best offset (within the window)."""
    offset_frames: float
    """Catalog frame at which the clip starts."""
    matches: int
    """Hash matches at any offset (the chance background)."""
    offsets: int
    """Number of possible offsets (catalog span plus clip span, in frames)."""
    speed: float
    coverage: int = 0
    sidelobe: int = 0
    """Best window count at offsets away from the peak (periodic music aligns at many offsets)."""
    """Distinct clip time bins (``cover_frames`` wide) holding aligned landmarks: chance
    alignments (a held chord shared with another piece) cluster in time; true ones span the clip."""


def align(ref: Landmarks, query: Landmarks, *, window: int, speed: float, cover_frames: int = 8) -> Alignment:
    """Histogram the offsets ``ref_frame - query_frame`` of every shared hash and find the peak.

    Parameters
    ----------
    ref : Landmarks of the catalog region, frames absolute in the track
    query : Landmarks of the clip, frames already scaled by ``speed``
    window : width in frames of the offset window counted as one peak
    """
    empty = Alignment(0, 0.0, 0, 1, speed)
    if ref.hashes.size == 0 or query.hashes.size == 0:
        return empty
    order = np.argsort(ref.hashes, kind="stable")
    rh, rf = ref.hashes[order], ref.frames[order].astype(np.float64)
    lo = np.searchsorted(rh, query.hashes, side="left")
    hi = np.searchsorted(rh, query.hashes, side="right")
    n = hi - lo
    total = int(n.sum())
    span_ref = float(rf.max() - rf.min()) if rf.size else 0.0
    span_q = float(query.frames.max() - query.frames.min())
    offsets = int(span_ref + span_q) + window
    if total == 0:
        return Alignment(0, 0.0, 0, offsets, speed)
    qi = np.repeat(np.arange(query.hashes.size), n)
    ri = np.repeat(lo, n) + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))
    d = rf[ri] - query.frames[qi].astype(np.float64)
    bins = np.rint(d).astype(np.int64)
    # Count each clip landmark at most once per offset bin (repeated notes would inflate it).
    key = np.unique(qi * (1 << 32) + (bins - bins.min()))
    bins_u = (key % (1 << 32)) + bins.min()
    base = bins_u.min()
    hist = np.bincount(bins_u - base)
    if hist.size >= window:
        win = np.convolve(hist, np.ones(window, dtype=np.int64), mode="valid")
    else:
        win = np.array([hist.sum()])
    best = int(np.argmax(win))
    count = int(win[best])
    # Offset estimate: weighted centre of the window.
    sl = hist[best : best + window]
    centre = best + float(np.dot(np.arange(sl.size), sl)) / max(1, int(sl.sum())) + base
    qi_u = key // (1 << 32)
    in_win = (bins_u >= best + base) & (bins_u < best + base + window)
    cov = np.unique(np.floor(query.frames[qi_u[in_win]] / cover_frames)).size
    far = np.abs(np.arange(win.size) - best) > 4 * window
    side = int(win[far].max()) if far.any() else 0
    return Alignment(count, float(centre), int(bins_u.size), offsets, speed, int(cov), side)


def envelope_correlation(
    query: np.ndarray, ref: np.ndarray, *, ref_start: int, offset_frames: float, speed: float
) -> float:
    """Correlation of the clip's band envelope with the catalog's at an offset and speed.

    Parameters
    ----------
    query : np.ndarray [shape=(n_q, n_bands)], log band energies of the clip
    ref : np.ndarray [shape=(n_r, n_bands)], of the catalog region; rows of NaN where unknown
    ref_start : catalog frame of ``ref[0]``
    offset_frames, speed : catalog frame = ``offset_frames + speed * clip frame``

    Returns
    -------
    r : float in [-1, 1], per-band correlations weighted by the clip's band variance;
        0 when fewer than 20 frames overlap
    """
    idx = np.rint(offset_frames + speed * np.arange(query.shape[0]) - ref_start).astype(np.int64)
    ok = (idx >= 0) & (idx < ref.shape[0])
    ok[ok] &= np.isfinite(ref[idx[ok], 0])
    if ok.sum() < 20:
        return 0.0
    q = query[ok].astype(np.float64)
    r = ref[idx[ok]].astype(np.float64)
    q -= q.mean(axis=0)
    r -= r.mean(axis=0)
    # Per-band correlations, weighted by how much the clip's band moves: a band drowned in noise
    # is flat in the clip and says nothing either way, so it must not pull the score down.
    qq, rr = (q * q).sum(axis=0), (r * r).sum(axis=0)
    per_band = (q * r).sum(axis=0) / np.sqrt(qq * rr + 1e-12)
    total = float(qq.sum())
    return float((qq * per_band).sum() / total) if total > 0 else 0.0


def confidence(r: float, *, params: MatchParams) -> float:
    """1 minus the chance that an unrelated track's envelope correlates this well."""
    tail = math.exp(-max(0.0, r - params.envelope_null) / params.envelope_scale)
    return float(min(1.0, max(0.0, 1.0 - tail)))
