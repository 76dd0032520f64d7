"""Verification of landmark candidates: a clip matches a catalog track only on joint evidence.

Qdrant's inverted index proposes catalog segments sharing many hashes with a clip. Sharing
hashes is not enough (common intervals recur across music):

1. :func:`align_peaks`: a true match puts the shared hashes at one consistent offset
   ``t_catalog - speed * t_clip``, spread over the whole clip (``coverage``). Music repeats, so
   the few best offsets are kept as hypotheses, and how far the best one stands above the rest
   of the offset histogram (:func:`landmark_z`) is landmark evidence in its own right.
2. :func:`envelope_match`: at that offset and speed, the *detail* of the clip's band-energy
   envelope (onsets and accents, slow trends removed) must follow the catalog track's over the
   whole clip (``halves``: the worse half counts). Two pieces in the same key and tempo share
   landmark intervals by chance, and fade-outs, crescendos or the ramp up from a track's
   silent start correlate in any two pieces; the note-by-note contour of the same recording
   does not, even under noise, a telephone band or lossy coding.
3. :func:`peak_match`: music made from one producer's kit (the same drums on one beat grid, key,
   tempo and chords) passes both tests with another tune. The clip's loudest peaks, its tune
   among them, must be in the catalog track at that offset, in a larger share than such a
   sibling piece reaches by chance (:func:`peaks_pass`: stricter for short clips, and when
   another catalog track passes the first two tests as well, as siblings of one family do).

:func:`decide` accepts a hypothesis when the envelope evidence is clearly above what unrelated
music reaches (``min_detail``), envelope plus landmark evidence together reach ``min_score``, and
the strongest-peaks test passes; :func:`confidence` maps the score to a probability fitted on
benchmark data (before the third test, which only removes answers).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from indexers.fingerprint import Landmarks, Peaks, near_keys, unique_sorted

#: Bit position of the anchor's log frequency (1/48 octave steps) in a landmark hash.
_PITCH_SHIFT = 13


@dataclass(frozen=True, slots=True)
class EmbeddingMatchParams:
    """The catalog's second signal: a clip the landmarks leave unknown matches the segment whose
    embedding it is nearest, only when the cosine clears ``threshold`` and beats every other
    track's best segment by ``margin``. Both are set from ``bench/catalog_embedding.py`` so that
    no held-out clip clears them: this signal may miss, it must not be wrong."""

    threshold: float = 0.99
    """Above the highest held-out cosine measured (0.983, a white-noise clip; BENCHMARKS.md)."""
    margin: float = 0.01
    candidates: int = 20


@dataclass(frozen=True, slots=True)
class MatchParams:
    """How strict identification is, and how much work it does per clip."""

    #: Catalog segment length in frames (10.24 s at the default hop).
    segment_frames: int = 320
    #: Candidate segments asked from Qdrant per speed hypothesis, with the landmarks of the clip's
    #: peaks of rank below ``candidate_peak_rank`` in their density block (about the strongest
    #: third of a clip's peaks; :func:`indexers.fingerprint.strongest`). All of a noisy clip's
    #: landmarks make a worse query: its weak peaks are mostly the noise's, and their landmarks
    #: match unrelated segments by chance (BENCHMARKS.md run 11). Alignment uses all landmarks.
    candidates: int = 10
    candidate_peak_rank: int = 8
    #: Candidate tracks verified per stage.
    max_tracks: int = 6
    #: Speed hypotheses, tried in stages: first 1.0, then the rest (only when no match yet).
    speed_max: float = 0.025
    speed_step: float = 0.007
    #: Offset histogram window, in frames.
    window: int = 3
    #: An offset hypothesis is examined further with at least this many aligned landmarks,
    #: spread over at least ``min_coverage`` quarter-seconds of the clip.
    min_aligned: int = 6
    min_coverage: int = 3
    #: Offset hypotheses per speed (best histogram peaks), and per candidate track (those with
    #: the most aligned landmarks, over all speeds of the stage) whose envelope is compared.
    offset_peaks: int = 3
    hypotheses: int = 4
    #: A hypothesis matches when its envelope detail correlation on the clip's worse half
    #: (:attr:`EnvelopeMatch.halves`) reaches ``min_detail`` and its score reaches ``min_score``:
    #: ``halves + landmark_weight * min(landmark_z, landmark_cap)`` (:func:`score`). Unrelated
    #: music reaches 0.55-0.6 at most (0.63-0.67 for soundtrack pieces built on one shared loop
    #: library); matches score 0.8-1.2 (bench/identify.py).
    min_detail: float = 0.45
    min_score: float = 0.68
    landmark_weight: float = 0.05
    landmark_cap: float = 5.0
    #: Confidence is ``1 / (1 + exp(-confidence_slope * (score - confidence_mid)))``: a logistic
    #: fit of "true track" against "best other track" on the benchmark's seed-0 clips.
    confidence_slope: float = 15.9
    confidence_mid: float = 0.485
    #: The strongest-peaks test (:func:`peak_match`, :func:`peaks_pass`): of the clip's ``peak_top``
    #: loudest peaks per density block, the catalog region must have (within ``peak_frame_tol``
    #: frames and ``peak_step_tol`` log-frequency steps) at least ``min_peaks_found``, and more
    #: than a piece of the same family would by chance: ``peak_chance`` (one producer's kit, key,
    #: tempo and chords share about 0.45 of them, bench/false_match_family.py; 0.5 since the
    #: candidates come from the strongest peaks, which find a sibling's best-aligned segment
    #: more often too: run 11), by ``peak_z`` binomial standard deviations. Few peaks (a 3 s
    #: clip has about 12) need a larger share.
    #: Uncontested (no other track passed the landmark and envelope tests for the clip, in this
    #: speed stage or an earlier one), ``peak_z_alone`` is enough: family pieces come in numbers,
    #: and a clip of one usually lines up with several of its siblings, whereas a noisy clip of
    #: real music lines up with its own track alone (bench/peak_calibration.py, run 9, with
    #: peak_chance 0.45 and the earlier candidates: seed 1's real clips 2573 -> 2619 of 2700 found,
    #: no wrong-track hypothesis among 5400 real clips passing those tests; family false matches
    #: 54 -> 58 of 2880).
    peak_top: int = 2
    peak_frame_tol: int = 1
    peak_step_tol: int = 2
    min_peaks_found: float = 0.6
    peak_chance: float = 0.5
    peak_z: float = 2.0
    peak_z_alone: float = 1.5
    #: The last stage, for a clip still unknown: speed 1.0 again, each clip landmark also hashed
    #: with its frame interval off by up to this many frames
    #: (:func:`indexers.fingerprint.landmarks`). Noise moves peaks by a frame; a clip that lost
    #: too many exact landmarks to it gets them back here. 0: no such stage.
    rescue_dt_tolerance: int = 1

    def stages(self) -> list[Stage]:
        """The stages :meth:`encore.catalog.Catalog.identify` tries, in order, until one matches:
        speed 1.0; the other speed hypotheses; speed 1.0 with interval tolerance."""
        steps = int(math.floor(self.speed_max / self.speed_step + 1e-9))
        rest = tuple(1.0 + sign * k * self.speed_step for k in range(1, steps + 1) for sign in (1, -1))
        out = [Stage((1.0,))]
        if rest:
            out.append(Stage(rest))
        if self.rescue_dt_tolerance:
            out.append(Stage((1.0,), self.rescue_dt_tolerance))
        return out


@dataclass(frozen=True, slots=True)
class Stage:
    """One round of identification: the clip's landmarks under each speed hypothesis, hashed
    with ``dt_tolerance`` (:func:`indexers.fingerprint.landmarks`)."""

    speeds: tuple[float, ...]
    dt_tolerance: int = 0


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
    """Distinct clip time bins (``cover_frames`` wide) holding aligned landmarks: chance
    alignments (a held chord shared with another piece) cluster in time; true ones span the clip."""
    sidelobe: int = 0
    """Best window count at offsets away from the peak (periodic music aligns at many offsets)."""
    pitches: int = 0
    """Distinct anchor pitches (semitones) among the aligned landmarks, for diagnosis: a steady
    hum shared with another track aligns hundreds of landmarks on one or two pitches (the
    envelope test is what rejects it)."""


def align(ref: Landmarks, query: Landmarks, *, window: int, speed: float, cover_frames: int = 8) -> Alignment:
    """Histogram the offsets ``ref_frame - query_frame`` of every shared hash and find the peak.

    Parameters
    ----------
    ref : Landmarks of the catalog region, frames absolute in the track (sorted by hash is fastest)
    query : Landmarks of the clip, frames already scaled by ``speed``
    window : width in frames of the offset window counted as one peak
    """
    return align_peaks(ref, query, window=window, speed=speed, cover_frames=cover_frames, peaks=1)[0]


def align_peaks(ref: Landmarks, query: Landmarks, *, window: int, speed: float, cover_frames: int = 8,
                peaks: int = 1) -> list[Alignment]:
    """:func:`align`'s ``peaks`` best offsets, best first, each at least ``4 * window`` frames
    from the others (music repeats: the landmark count at a repeat of the clip's passage can
    equal the true offset's, and only the envelope tells them apart)."""
    empty = Alignment(0, 0.0, 0, 1, speed)
    if ref.hashes.size == 0 or query.hashes.size == 0:
        return [empty]
    if ref.hashes.size > 1 and bool(np.all(ref.hashes[1:] >= ref.hashes[:-1])):
        rh, rf = ref.hashes, ref.frames.astype(np.float64)  # already sorted by hash (catalog regions)
    else:
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
        return [Alignment(0, 0.0, 0, offsets, speed)]
    qi = np.repeat(np.arange(query.hashes.size), n)
    ri = np.repeat(lo, n) + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))
    d = rf[ri] - query.frames[qi].astype(np.float64)
    bins = np.rint(d).astype(np.int64)
    # Count each clip landmark at most once per offset bin (repeated notes would inflate it).
    key = unique_sorted(qi * (1 << 32) + (bins - bins.min()))
    bins_u = (key % (1 << 32)) + bins.min()
    base = bins_u.min()
    hist = np.bincount(bins_u - base)
    if hist.size >= window:
        win = np.convolve(hist, np.ones(window, dtype=np.int64), mode="valid")
    else:
        win = np.array([hist.sum()])
    qi_u = key // (1 << 32)
    positions = np.arange(win.size)
    free = np.ones(win.size, dtype=bool)
    out: list[Alignment] = []
    for _ in range(max(1, peaks)):
        if not free.any():
            break
        best = int(np.flatnonzero(free)[np.argmax(win[free])])
        count = int(win[best])
        if out and count == 0:
            break
        # Offset estimate: weighted centre of the window.
        sl = hist[best : best + window]
        centre = best + float(np.dot(np.arange(sl.size), sl)) / max(1, int(sl.sum())) + base
        in_win = (bins_u >= best + base) & (bins_u < best + base + window)
        cov = unique_sorted(np.floor(query.frames[qi_u[in_win]] / cover_frames)).size
        pitches = unique_sorted(query.hashes[qi_u[in_win]] >> (_PITCH_SHIFT + 2)).size  # 1/48 octave -> semitone
        near = np.abs(positions - best) <= 4 * window
        side = int(win[~near].max()) if (~near).any() else 0
        out.append(Alignment(count, float(centre), int(bins_u.size), offsets, speed, int(cov), side, int(pitches)))
        free &= ~near
    return out


@dataclass(frozen=True, slots=True)
class EnvelopeMatch:
    """How a clip's band envelope follows a catalog region's at one offset and speed."""

    r: float
    """Per-band correlation of the log band energies, weighted by the clip's band variance (a
    band drowned in noise is flat in the clip and says nothing either way)."""
    detail: float
    """The same on the envelopes' *detail* (:func:`_detail`: lightly smoothed, minus a 2 s moving
    average): onsets, notes, accents. Slow trends (a fade-out, a crescendo, the ramp from
    silence at a track's start) correlate between any two pieces; the detail does not."""
    halves: float
    """``detail`` on the clip's worse half: a true match follows the whole clip."""
    overlap: float
    """Fraction of the clip's frames that fall on known catalog frames."""


def _weighted_r(q: np.ndarray, r: np.ndarray) -> float:
    q = q - q.mean(axis=0)
    r = r - r.mean(axis=0)
    qq, rr = (q * q).sum(axis=0), (r * r).sum(axis=0)
    per_band = (q * r).sum(axis=0) / np.sqrt(qq * rr + 1e-12)
    total = float(qq.sum())
    return float((qq * per_band).sum() / total) if total > 0 else 0.0


def _detail(x: np.ndarray, *, smooth: int, trend: int) -> np.ndarray:
    """Band envelopes band-passed in time: averaged over ``smooth`` frames (white noise makes
    a noisy clip's band energies jitter frame to frame), minus their ``trend``-frame average."""
    from scipy import ndimage

    if smooth > 1:
        x = ndimage.uniform_filter1d(x, size=smooth, axis=0, mode="nearest")
    return x - ndimage.uniform_filter1d(x, size=trend, axis=0, mode="nearest")


def envelope_match(
    query: np.ndarray, ref: np.ndarray, *, ref_start: int, offset_frames: float, speed: float,
    smooth_frames: int = 3, trend_frames: int = 63,
) -> EnvelopeMatch:
    """How a clip's band envelope follows a catalog region's at an offset and speed.

    Parameters
    ----------
    query : np.ndarray [shape=(n_q, n_bands)], log band energies of the clip
    ref : np.ndarray [shape=(n_r, n_bands)], of the catalog region; rows of NaN where unknown
    ref_start : catalog frame of ``ref[0]``
    offset_frames, speed : catalog frame = ``offset_frames + speed * clip frame``
    smooth_frames, trend_frames : the band-pass of :attr:`EnvelopeMatch.detail`

    Returns
    -------
    EnvelopeMatch; correlations are 0 when fewer than 20 frames overlap (``halves``: 40)
    """
    n = query.shape[0]
    idx = np.rint(offset_frames + speed * np.arange(n) - ref_start).astype(np.int64)
    ok = (idx >= 0) & (idx < ref.shape[0])
    ok[ok] &= np.isfinite(ref[idx[ok], 0])
    m = int(ok.sum())
    if m < 20:
        return EnvelopeMatch(0.0, 0.0, 0.0, m / max(1, n))
    q = query[ok].astype(np.float64)
    r = ref[idx[ok]].astype(np.float64)
    qd = _detail(q, smooth=smooth_frames, trend=trend_frames)
    rd = _detail(r, smooth=smooth_frames, trend=trend_frames)
    h = m // 2
    halves = min(_weighted_r(qd[:h], rd[:h]), _weighted_r(qd[h:], rd[h:])) if h >= 20 else 0.0
    return EnvelopeMatch(_weighted_r(q, r), _weighted_r(qd, rd), halves, m / n)


@dataclass(frozen=True, slots=True)
class PeakMatch:
    """How many of a clip's strongest spectral peaks a catalog region has at one offset and speed."""

    found: float
    """Fraction of the clip's strongest peaks with a catalog peak next to them (:func:`peak_match`)."""
    peaks: int
    """Strongest clip peaks that fall on known catalog frames (the fraction's denominator)."""


def peak_match(
    ref_keys: np.ndarray, query: Peaks, *, known: np.ndarray, ref_start: int, offset_frames: float, speed: float,
    top: int, frame_tol: int, step_tol: int, steps_per_octave: int,
) -> PeakMatch:
    """Which of the clip's strongest peaks the catalog region has, at an offset and speed.

    Noise, lossy coding or a telephone band take peaks *away* from a recording; they do not add
    strong tonal ones. So the clip's few loudest peaks per block (its tune, its chords, its
    drums) are nearly all in the catalog track it comes from, however degraded the clip, while a
    piece that merely shares the drums and chords (one producer's kit, key and tempo) lacks the
    tune's. The clip's frames start anywhere within the catalog's: a peak that barely beats a
    neighbour on the clip's grid can lose to it on the catalog's, which looks like a missing peak
    (up to a quarter of a clean clip's, in dense low registers of real music). Only peaks that stay
    peaks on a second grid, half a frame later, are examined.

    Parameters
    ----------
    ref_keys : np.ndarray [shape=(k,), dtype=int64], the region's peaks, sorted
        (:func:`indexers.fingerprint.landmark_peaks`)
    query : Peaks of the clip, with ``ranks`` and ``stable`` (:func:`indexers.fingerprint.analyze_query`):
        of the strongest, only the peaks a frame grid cannot move are examined
    known : np.ndarray [shape=(n_r,), dtype=bool], region frames whose segment was fetched
    ref_start : catalog frame of ``known[0]``
    offset_frames, speed : catalog frame = ``offset_frames + speed * clip frame``
    top : clip peaks examined per density block (those of rank < ``top``)
    frame_tol, step_tol : how far (frames, log-frequency steps) a catalog peak may be

    Returns
    -------
    PeakMatch; ``found`` is 0 when no strong clip peak falls on known catalog frames
    """
    sel = query.ranks < top if query.ranks is not None else np.ones(query.frames.size, dtype=bool)
    if query.stable is not None:
        sel &= query.stable
    t = np.rint(offset_frames + speed * query.frames[sel].astype(np.float64)).astype(np.int64)
    u = np.floor((query.octaves[sel].astype(np.float64) - math.log2(speed)) * steps_per_octave).astype(np.int64)
    idx = t - ref_start
    ok = (idx >= 0) & (idx < known.size)
    ok[ok] &= known[idx[ok]]
    t, u = t[ok], u[ok]
    if t.size == 0 or ref_keys.size == 0:
        return PeakMatch(0.0, int(t.size))
    found = near_keys(ref_keys, t, u, frame_lo=-frame_tol, frame_hi=frame_tol, step_tol=step_tol)
    return PeakMatch(float(found.mean()), int(t.size))


@dataclass(frozen=True, slots=True)
class Evidence:
    """One hypothesis (offset and speed) for one candidate track of a clip, and what it shows."""

    track: str
    alignment: Alignment
    envelope: EnvelopeMatch
    peaks: PeakMatch | None = None
    """None: not measured (the envelope had already failed)."""


def landmark_z(al: Alignment) -> float:
    """How far the aligned count stands above the best count at other offsets, in Poisson
    standard deviations of the latter: near 0 when the clip aligns about as well everywhere."""
    return (al.aligned - al.sidelobe) / math.sqrt(al.sidelobe + 1.0)


def score(ev: Evidence, *, params: MatchParams) -> float:
    """Joint evidence: the envelope detail on the clip's worse half, plus a capped bonus for a
    landmark alignment that stands out (strong landmarks let a noisier envelope through)."""
    z = min(max(landmark_z(ev.alignment), 0.0), params.landmark_cap)
    return ev.envelope.halves + params.landmark_weight * z


def passes_envelope(ev: Evidence, *, params: MatchParams) -> bool:
    """The landmark and envelope tests (the strongest-peaks test comes after, only for these)."""
    return ev.envelope.halves >= params.min_detail and score(ev, params=params) >= params.min_score


def peaks_pass(pm: PeakMatch | None, *, params: MatchParams, contested: bool = True) -> bool:
    """The strongest-peaks test: enough of the clip's loudest peaks are in the track, and more
    than a piece of the same family has by chance (a binomial margin: stricter for short clips,
    and when another track is a contender too: ``peak_z``, else ``peak_z_alone``)."""
    if pm is None or pm.peaks == 0:
        return False
    p, z = params.peak_chance, params.peak_z if contested else params.peak_z_alone
    need = max(params.min_peaks_found, p + z * math.sqrt(p * (1.0 - p) / pm.peaks))
    return pm.found >= need


def decide(
    evidence: Sequence[Evidence], *, params: MatchParams, contenders: Collection[str] = ()
) -> tuple[Evidence, float] | None:
    """The best hypothesis that passes all three tests, with its confidence, or None.

    ``contenders``: tracks that passed the landmark and envelope tests for this clip before (in
    earlier speed stages); with this call's, more than one makes the peak test contested."""
    passing = [e for e in evidence if passes_envelope(e, params=params)]
    contested = len({*contenders, *(e.track for e in passing)}) > 1
    ok = [(score(e, params=params), e) for e in passing if peaks_pass(e.peaks, params=params, contested=contested)]
    if not ok:
        return None
    best_score, best = max(ok, key=lambda t: t[0])
    return best, confidence(best_score, params=params)


def confidence(s: float, *, params: MatchParams) -> float:
    """The probability that a hypothesis scoring ``s`` (:func:`score`) is the clip's track: a
    logistic fit on benchmark clips (the true track's best hypothesis against the best
    hypothesis of any other track). About 0.96 at the acceptance threshold, 0.99 at 0.78."""
    return float(1.0 / (1.0 + math.exp(-params.confidence_slope * (s - params.confidence_mid))))
