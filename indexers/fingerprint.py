"""Landmark fingerprints: spectral peaks paired into hashed (f1, f2 - f1, dt) landmarks.

Design (why it is robust where classic landmark fingerprinters are not):

* Peaks are picked in the 100-3400 Hz band: below 3.4 kHz low-bitrate MP3 and a telephone line
  leave the picked region intact, and white noise (strongest, relative to music, at high
  frequencies) mostly misses the low, loud peaks that are ranked first.
* Frequencies are hashed on a log scale. A playback speed change ``s`` multiplies every frequency
  by ``s`` and every time by ``1/s``: on a log scale that is one shift of ``f1``, while the
  interval ``f2 - f1`` is unchanged. The query side tries a few speed hypotheses
  (:func:`landmarks` with ``speed``) and undoes the shift before hashing, so a clip at +2 %
  speed hashes like the original.
* Peak density is controlled per time block, so it is the same for quiet and loud passages, and
  the query is analysed denser and paired wider than the catalog: a catalog landmark is found in
  the query as long as both of its peaks survive in the clip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.fft
from scipy import signal

HASH_BITS = 21
#: Size of the hash space: sparse vector dimensions are in ``[0, HASH_SPACE)``.
HASH_SPACE = 1 << HASH_BITS


@dataclass(frozen=True, slots=True)
class FingerprintParams:
    """How audio becomes landmarks. Stored with the catalog collection: changing any field
    makes stored fingerprints incompatible (the store refuses to open them)."""

    sr: int = 8000
    n_fft: int = 1024
    hop_length: int = 256
    fmin: float = 100.0
    fmax: float = 3400.0
    #: Half-size, in bins and frames, of the neighbourhood a peak must dominate.
    peak_freq_radius: int = 10
    peak_time_radius: int = 3
    #: Kept peaks per second, for catalog tracks and for queries.
    peaks_per_second: float = 24.0
    query_peaks_per_second: float = 48.0
    #: Block length (frames) over which the peak budget is spent.
    density_block: int = 16
    #: Target zone: frames after the anchor, and the largest interval in octaves.
    dt_min: int = 1
    dt_max: int = 63
    du_max_octaves: float = 1.0
    #: Targets paired with each anchor in the catalog; queries pair with up to ``query_fan_out``.
    fan_out: int = 8
    query_fan_out: int = 24
    #: Log-frequency quantisation of hashed frequencies (steps per octave).
    steps_per_octave: int = 48
    #: Log-spaced bands of the energy envelope kept for verification.
    env_bands: int = 16

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sr


@dataclass(frozen=True, slots=True)
class Peaks:
    """Spectral peaks of one signal.

    frames : np.ndarray [shape=(n,), dtype=int32], sorted ascending
    octaves : np.ndarray [shape=(n,), dtype=float32], ``log2(f / fmin)`` with sub-bin precision
    ranks : np.ndarray [shape=(n,), dtype=int32] or None, each peak's rank by level within its
        ``density_block`` (0: the loudest); the strongest few per block are the peaks any copy
        of the audio keeps, whatever noise or coding it went through
    stable : np.ndarray [shape=(n,), dtype=bool] or None, for a query: the peak is still a peak
        when the signal is analysed half a frame later (:func:`analyze_query`). A clip starts
        anywhere within a catalog frame; a peak that barely beats a neighbour can lose to it on
        another frame grid, so only stable peaks are expected on the catalog's grid too.
    """

    frames: np.ndarray
    octaves: np.ndarray
    n_frames: int
    ranks: np.ndarray | None = None
    stable: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Landmarks:
    """Hashed landmarks: ``hashes[i]`` was anchored at frame ``frames[i]``.

    hashes : np.ndarray [shape=(m,), dtype=uint32], each < HASH_SPACE
    frames : np.ndarray [shape=(m,), dtype=int32] (float32 for speed-scaled queries)
    """

    hashes: np.ndarray
    frames: np.ndarray


def spectrogram(y: np.ndarray, *, params: FingerprintParams) -> tuple[np.ndarray, np.ndarray]:
    """Log-magnitude STFT restricted to ``[fmin, fmax]``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], mono at ``params.sr``

    Returns
    -------
    S : np.ndarray [shape=(n_bins, n_frames), dtype=float32], natural log magnitude
    freqs : np.ndarray [shape=(n_bins,)], bin centre frequencies in Hz
    """
    n_fft, hop = params.n_fft, params.hop_length
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    n_frames = 1 + (y.size - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        y, shape=(n_frames, n_fft), strides=(y.strides[0] * hop, y.strides[0]), writeable=False
    )
    window = signal.windows.hann(n_fft, sym=False).astype(np.float32)
    spec = scipy.fft.rfft(frames * window, axis=1)  # float32 in, complex64 out: 3x numpy's
    freqs = np.fft.rfftfreq(n_fft, 1.0 / params.sr)
    lo, hi = np.searchsorted(freqs, [params.fmin, params.fmax])
    mag = np.abs(spec[:, lo:hi]).T.astype(np.float32)
    return np.log(mag + 1e-6), freqs[lo:hi]


def band_envelope(S: np.ndarray, freqs: np.ndarray, *, params: FingerprintParams) -> np.ndarray:
    """Log energy in ``params.env_bands`` log-spaced bands per frame, for envelope verification.

    Parameters
    ----------
    S : np.ndarray [shape=(n_bins, n_frames)], from :func:`spectrogram`
    freqs : np.ndarray [shape=(n_bins,)]

    Returns
    -------
    E : np.ndarray [shape=(n_frames, env_bands), dtype=float32], natural log of band power
    """
    edges = np.geomspace(freqs[0], freqs[-1] + 1.0, params.env_bands + 1)
    # Bands are contiguous runs of bins: sum each run (a low band may hold no bin: empty run).
    starts = np.searchsorted(freqs, edges[:-1], side="left")
    power = np.exp(2.0 * S)
    sums = np.add.reduceat(np.vstack([power, np.zeros((1, S.shape[1]), np.float32)]), starts, axis=0)
    sums[np.append(starts[:-1] == starts[1:], False)] = 0.0
    return np.log(sums.T + 1e-8).astype(np.float32)


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the catalog keeps or a query needs from one signal."""

    peaks: Peaks
    envelope: np.ndarray
    """np.ndarray [shape=(n_frames, env_bands), dtype=float32], :func:`band_envelope`."""


def analyze(y: np.ndarray, *, params: FingerprintParams, peaks_per_second: float) -> Analysis:
    """Peaks and band envelope from one STFT."""
    S, freqs = spectrogram(y, params=params)
    return Analysis(peaks=_pick_peaks(S, freqs, params=params, peaks_per_second=peaks_per_second),
                    envelope=band_envelope(S, freqs, params=params))


def _running_max(x: np.ndarray, size: int, *, axis: int) -> np.ndarray:
    """The maximum over a centred window of odd ``size`` along ``axis``, edges repeated: what
    ``scipy.ndimage.maximum_filter1d(x, size, axis=axis, mode="nearest")`` gives, several times
    faster on spectrogram-sized arrays (a window of ``2**k`` by doubling, then two overlapping ones)."""
    r, n = size // 2, x.shape[axis]
    # Work along axis 0, where a window is a slice of rows.
    m = np.pad(np.moveaxis(x, axis, 0), [(r, r)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    k = 1
    while 2 * k <= size:  # m[i] = max(padded[i : i + 2k])
        m = np.maximum(m[:-k], m[k:])
        k *= 2
    return np.moveaxis(np.maximum(m[:n], m[size - k : size - k + n]), 0, axis)


def _pick_peaks(S: np.ndarray, freqs: np.ndarray, *, params: FingerprintParams, peaks_per_second: float) -> Peaks:
    """Pick the most prominent spectral peaks, ``peaks_per_second`` on average, evenly over time.

    A peak dominates its ``(2 * peak_freq_radius + 1, 2 * peak_time_radius + 1)`` neighbourhood of
    the log spectrogram, and peaks are ranked by level: under added noise the loud ones survive,
    so catalog and noisy query keep the same peaks.

    Parameters
    ----------
    S, freqs : from :func:`spectrogram`
    peaks_per_second : average number of peaks kept

    Returns
    -------
    Peaks
    """
    n_bins, n_frames = S.shape
    # Rank by level: the loudest peaks are the ones that survive added noise.
    score = S - S.max() + 80.0
    size = (2 * params.peak_freq_radius + 1, 2 * params.peak_time_radius + 1)
    is_max = (S == _running_max(_running_max(S, size[0], axis=0), size[1], axis=1)) & (score > 0.0)
    # Edges of the band are where band-limiting filters roll off: no peaks there.
    is_max[:2] = False
    is_max[-2:] = False
    b, t = np.nonzero(is_max)
    s = score[b, t]

    # Spend the peak budget per block of frames: the strongest first within each block.
    block = params.density_block
    budget = max(1, int(round(peaks_per_second * params.frame_seconds * block)))
    blk = t // block
    order = np.lexsort((-s, blk))
    b, t, blk = b[order], t[order], blk[order]
    starts = np.searchsorted(blk, blk, side="left")
    ranks = np.arange(blk.size) - starts
    keep = ranks < budget
    b, t, ranks = b[keep], t[keep], ranks[keep]

    # Sub-bin frequency by parabolic interpolation on the log magnitude.
    bi = np.clip(b, 1, n_bins - 2)
    left, mid, right = S[bi - 1, t], S[bi, t], S[bi + 1, t]
    denom = left - 2.0 * mid + right
    delta = np.where(np.abs(denom) > 1e-9, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    bin_hz = freqs[1] - freqs[0]
    hz = freqs[bi] + delta * bin_hz
    octaves = np.log2(hz / params.fmin).astype(np.float32)

    order = np.argsort(t, kind="stable")
    return Peaks(frames=t[order].astype(np.int32), octaves=octaves[order], n_frames=n_frames,
                 ranks=ranks[order].astype(np.int32))


def landmarks(peaks: Peaks, *, params: FingerprintParams, fan_out: int, speed: float = 1.0,
              dt_tolerance: int = 0) -> Landmarks:
    """Pair each peak with up to ``fan_out`` later peaks in its target zone, and hash the pairs.

    Parameters
    ----------
    peaks : Peaks
    fan_out : targets per anchor, nearest in time first
    speed : playback speed hypothesis for a query (1.02: the clip plays 2 % fast). Frequencies
        are divided and frame intervals multiplied by it before hashing, undoing the change.
    dt_tolerance : for a query, also hash each pair with its frame interval ``dt`` off by up to
        this many frames (``2 * dt_tolerance + 1`` hashes per pair). Noise moves peaks by a
        frame far more often than it removes them (at 0 dB SNR, 38 % of a track's peaks stay on
        their frame and 67 % within two), and an exact hash needs both ends of a pair in place;
        one frame of tolerance aligns 1.6-1.9x as many of a noisy clip's landmarks (BENCHMARKS.md).

    Returns
    -------
    Landmarks
        frames are anchor frames; for ``speed != 1`` they are scaled to catalog time (float32).
    """
    t = peaks.frames.astype(np.float32) * speed
    u = peaks.octaves - np.float32(np.log2(speed))
    n = t.size
    if n < 2:
        return Landmarks(np.empty(0, np.uint32), np.empty(0, np.int32 if speed == 1.0 else np.float32))
    anchors, targets = [], []
    # Peaks are sorted by frame; look at the next `window` peaks for each anchor.
    window = min(n - 1, fan_out * 6)
    idx = np.arange(n)
    taken = np.zeros(n, dtype=np.int32)
    for k in range(1, window + 1):
        a = idx[: n - k]
        c = a + k
        dt = t[c] - t[a]
        du = u[c] - u[a]
        ok = (dt >= params.dt_min - 0.5) & (dt <= params.dt_max + 0.49) & (np.abs(du) <= params.du_max_octaves)
        ok &= taken[a] < fan_out
        a, c = a[ok], c[ok]
        taken[a] += 1
        anchors.append(a)
        targets.append(c)
    a = np.concatenate(anchors)
    c = np.concatenate(targets)
    spo = params.steps_per_octave
    du_steps = int(round(params.du_max_octaves * spo))
    q1 = np.floor(u[a] * spo).astype(np.int64)
    qd = np.rint((u[c] - u[a]) * spo).astype(np.int64) + du_steps
    qt = np.rint(t[c] - t[a]).astype(np.int64)
    fa = t[a]
    if dt_tolerance:
        shifts = np.arange(-dt_tolerance, dt_tolerance + 1)
        q1, qd, fa = np.tile(q1, shifts.size), np.tile(qd, shifts.size), np.tile(fa, shifts.size)
        qt = (qt[None, :] + shifts[:, None]).ravel()
    ok = (q1 >= 0) & (q1 < 256) & (qd >= 0) & (qd < 128) & (qt >= 1) & (qt < 64)
    h = (q1[ok] << 13) | (qd[ok] << 6) | qt[ok]
    frames = fa[ok]
    return Landmarks(
        hashes=h.astype(np.uint32),
        frames=frames.astype(np.int32) if speed == 1.0 else frames.astype(np.float32),
    )


def strongest(peaks: Peaks, top: int) -> Peaks:
    """The peaks of rank below ``top`` in their density block (:class:`Peaks`): the ones noise
    least often moves or outranks. Landmarks of these alone make a cleaner candidate query than
    all of a noisy clip's, many of whose weaker peaks are the noise's own (BENCHMARKS.md run 11)."""
    if peaks.ranks is None:
        return peaks
    keep = peaks.ranks < top
    return Peaks(frames=peaks.frames[keep], octaves=peaks.octaves[keep], n_frames=peaks.n_frames,
                 ranks=peaks.ranks[keep], stable=None if peaks.stable is None else peaks.stable[keep])


#: A peak's (frame, log-frequency step) as one sortable integer: ``frame * PEAK_KEY_SPAN + step +
#: PEAK_KEY_OFFSET``. Steps of hashed peaks lie in [-48, 336) (a target's step is its anchor's plus
#: an interval of at most an octave), so one frame's keys never reach the next frame's.
PEAK_KEY_SPAN = 1024
PEAK_KEY_OFFSET = 256
#: How far (log-frequency steps) a peak may move between two frame grids and still be the same.
STABLE_STEP_TOL = 2


def unique_sorted(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` for a 1-d integer or float array: sorted distinct values.

    By a stable sort (timsort, fast on the partly sorted keys built here) and a neighbour test:
    5-20x faster than numpy 2's hash-based ``np.unique`` on the int64 keys of landmark alignment
    (2 000 to 100 000 values).
    """
    s = np.sort(np.ravel(a), kind="stable")
    if s.size < 2:
        return s
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def peak_keys(peaks: Peaks, *, params: FingerprintParams) -> np.ndarray:
    """Peaks as sorted keys ``frame * PEAK_KEY_SPAN + step + PEAK_KEY_OFFSET``, where ``step`` is
    ``floor(octaves * steps_per_octave)``: the form :func:`encore.matching.peak_match` searches.

    Returns
    -------
    keys : np.ndarray [shape=(k,), dtype=int64], sorted and unique
    """
    steps = np.floor(peaks.octaves.astype(np.float64) * params.steps_per_octave).astype(np.int64)
    return unique_sorted(peaks.frames.astype(np.int64) * PEAK_KEY_SPAN + PEAK_KEY_OFFSET + steps)


def near_keys(keys: np.ndarray, frames: np.ndarray, steps: np.ndarray, *, frame_lo: int, frame_hi: int,
              step_tol: int) -> np.ndarray:
    """Which (frame, step) points have a peak key within frames ``[frame + frame_lo, frame +
    frame_hi]`` and steps ``[step - step_tol, step + step_tol]``.

    Parameters
    ----------
    keys : np.ndarray [shape=(k,), dtype=int64], sorted (:func:`peak_keys`)
    frames, steps : np.ndarray [shape=(n,), dtype=int64]

    Returns
    -------
    found : np.ndarray [shape=(n,), dtype=bool]
    """
    found = np.zeros(frames.size, dtype=bool)
    if keys.size == 0:
        return found
    # For one frame, the tolerated steps are one range of keys.
    for dt in range(frame_lo, frame_hi + 1):
        row = (frames + dt) * PEAK_KEY_SPAN + PEAK_KEY_OFFSET + steps
        found |= np.searchsorted(keys, row + step_tol, side="right") > np.searchsorted(keys, row - step_tol, side="left")
    return found


def landmark_peaks(lm: Landmarks, *, params: FingerprintParams) -> np.ndarray:
    """The peaks a set of landmarks was hashed from (anchors and targets), undoing :func:`landmarks`.

    Parameters
    ----------
    lm : Landmarks, frames as stored (speed 1)

    Returns
    -------
    keys : np.ndarray [shape=(k,), dtype=int64], sorted and unique
        ``frame * PEAK_KEY_SPAN + step + PEAK_KEY_OFFSET`` per peak, where ``step`` is
        ``floor(octaves * steps_per_octave)`` (a target's is within one step of it: its anchor's
        floor plus the rounded interval)
    """
    h = lm.hashes.astype(np.int64)
    q1, qd, qt = h >> 13, (h >> 6) & 127, h & 63
    du_steps = int(round(params.du_max_octaves * params.steps_per_octave))
    f = lm.frames.astype(np.int64) * PEAK_KEY_SPAN + PEAK_KEY_OFFSET
    anchors = f + q1
    targets = f + qt * PEAK_KEY_SPAN + q1 + qd - du_steps
    return unique_sorted(np.concatenate([anchors, targets]))


def analyze_catalog(y: np.ndarray, *, params: FingerprintParams) -> tuple[Landmarks, np.ndarray]:
    """Landmarks (sparser peaks, fewer pairs per anchor) and envelope of a catalog track."""
    a = analyze(y, params=params, peaks_per_second=params.peaks_per_second)
    return landmarks(a.peaks, params=params, fan_out=params.fan_out), a.envelope


def analyze_query(y: np.ndarray, *, params: FingerprintParams) -> Analysis:
    """Peaks (denser than the catalog's, so catalog peaks are found in it) and envelope of a clip,
    its peaks marked ``stable`` (:class:`Peaks`) against a second analysis half a frame later."""
    a = analyze(y, params=params, peaks_per_second=params.query_peaks_per_second)
    half = params.hop_length // 2
    later = _pick_peaks(*spectrogram(y[half:], params=params), params=params,
                        peaks_per_second=params.query_peaks_per_second)
    # Frame t of the clip lies between frames t - 1 and t of the later grid; allow one more either side.
    steps = np.floor(a.peaks.octaves.astype(np.float64) * params.steps_per_octave).astype(np.int64)
    stable = near_keys(peak_keys(later, params=params), a.peaks.frames.astype(np.int64), steps,
                       frame_lo=-2, frame_hi=1, step_tol=STABLE_STEP_TOL)
    return Analysis(replace(a.peaks, stable=stable), a.envelope)
