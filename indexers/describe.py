"""Per-track audio descriptors: tempo, energy, danceability, loudness, key and mode.

Everything comes from two STFTs of (at most) the middle ``max_seconds`` of a track:

* **Onset strength**: a 40-band log-mel spectrogram (dB, 80 dB range) and its half-wave
  rectified first difference averaged over bands (spectral flux). Gain does not change it.
* **Tempo**: the onset envelope is cut into 8 s windows; each window's autocorrelation
  (mean removed, unbiased, 1 at lag 0) is averaged into one tempogram ``acf(lag)``. Among its
  peaks between ``tempo_min`` and ``tempo_max`` the one with the highest
  ``acf * prior(bpm)`` wins, where the prior is log-normal around ``tempo_prior_bpm``. That
  prior is what resolves octave errors: a beat at ``T`` also peaks at ``2T``, ``3T`` (half and
  a third of the tempo) and, with eighth-note hi-hats, at ``T/2`` (double), and the prior
  prefers the level nearest a moderate tempo. So a plain click track at 170-220 BPM reads as
  half that, as does a beat whose every other stroke is much weaker: octave choices stay the
  weakest part of any tempo estimate. The period is then refined from the peaks at
  ``T, 2T, ... 8T`` (a least-squares slope), which gives a fraction of a percent even at a
  frame rate of 86 Hz.
* **Danceability**: how strong and how steady the pulse is: the tempogram at the beat period
  (``beat strength``) and at its multiples ``2T..4T`` (``regularity``: a steady beat keeps its
  autocorrelation over bars, rubato or random onsets lose it), mixed and squashed to 0-1.
* **Loudness**: integrated loudness after ITU-R BS.1770 (K-weighting, 400 ms blocks, absolute
  gate at -70 and relative gate at -10 LU), for one channel, in LUFS. The K-weighting filters
  are designed for ``sr`` with the Audio EQ Cookbook formulas, which match BS.1770's 48 kHz
  coefficients closely and approximate them at other rates. A full-scale 1 kHz sine reads
  about -3 LUFS.
* **Energy**: loudness and onset activity (mean spectral flux, in dB per frame), both
  standardised and added, then squashed by a logistic: louder or denser always means higher.
* **Key and mode**: an STFT chroma (long frames, ~0.37 s, so low notes resolve; only spectral
  peaks between 50 and 2100 Hz, each mapped to the nearest equal-tempered pitch class at A440,
  no tuning estimate), each frame normalised and averaged, then correlated (Pearson) with the
  24 rotations of the Krumhansl-Schmuckler major and minor profiles. ``key_confidence`` is the best correlation, scaled down when the
  chroma is nearly flat (noise, unpitched percussion).

All calibration constants (the centres and scales of the squashing functions) live in
:class:`DescribeParams`; they were set on a few hours of real game soundtracks so that the
descriptors spread over their range (see ``bench/describe.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import fft, signal

from encore.errors import BadAudio
from indexers.decode import validate

#: Pitch class names, index 0 = C (the same numbering as the Million Song Dataset's ``key``).
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MODES = ("major", "minor")
#: Krumhansl-Kessler probe-tone profiles (Krumhansl 1990), tonic first.
_MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


@dataclass(frozen=True, slots=True)
class DescribeParams:
    """How descriptors are computed. Frame sizes are in seconds so the same params serve any ``sr``."""

    #: Analyse at most this many seconds, from the middle of the track.
    max_seconds: float = 60.0
    #: Shorter input is refused (:class:`BadAudio`): a tempo needs a few bars.
    min_seconds: float = 5.0
    #: Onset analysis: STFT frame (rounded up to a power of two samples) and hop.
    frame_seconds: float = 0.046
    hop_seconds: float = 0.0116
    n_mels: int = 40
    fmin: float = 30.0
    fmax: float = 8000.0
    #: dB range kept below the loudest mel bin before differencing.
    top_db: float = 80.0
    #: Tempogram windows and their hop.
    tempogram_seconds: float = 8.0
    tempogram_hop_seconds: float = 1.0
    tempo_min: float = 50.0
    tempo_max: float = 220.0
    #: Log-normal tempo prior: centre and standard deviation in octaves.
    tempo_prior_bpm: float = 120.0
    tempo_prior_octaves: float = 1.0
    #: Highest multiple of the beat period used to refine it.
    refine_multiples: int = 8
    #: Chroma analysis: STFT frame (rounded up to a power of two samples) and band.
    chroma_frame_seconds: float = 0.37
    chroma_fmin: float = 50.0
    chroma_fmax: float = 2100.0
    #: Key confidence is scaled down for chroma flatter than this (coefficient of variation over the 12 classes).
    key_min_contrast: float = 0.3
    #: Energy = logistic(loudness term + activity term): centres and scales.
    energy_loudness_center: float = -16.0
    energy_loudness_scale: float = 3.0
    energy_flux_center: float = 0.9
    energy_flux_scale: float = 0.25
    #: Danceability = logistic((0.6 beat strength + 0.4 regularity - center) / scale).
    dance_center: float = 0.5
    dance_scale: float = 0.12

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def n_fft(self, sr: int) -> int:
        return _pow2(self.frame_seconds * sr)

    def hop_length(self, sr: int) -> int:
        return max(1, int(round(self.hop_seconds * sr)))


@dataclass(frozen=True, slots=True)
class Descriptors:
    """What :func:`describe` says about one track."""

    #: Beats per minute, in ``[tempo_min, tempo_max]``.
    tempo: float
    #: 0-1: loud and dense is high, quiet and sparse low.
    energy: float
    #: 0-1: a strong, steady pulse is high.
    danceability: float
    #: Integrated loudness in LUFS (BS.1770, one channel).
    loudness: float
    #: Tonic pitch class, one of :data:`PITCH_CLASSES`.
    key: str
    #: ``"major"`` or ``"minor"``.
    mode: str
    #: 0-1: how well the chroma fits the chosen key profile.
    key_confidence: float
    #: Seconds of audio analysed (the middle of the track, at most ``max_seconds``).
    seconds: float


def describe(y: np.ndarray, *, sr: int, params: DescribeParams = DescribeParams()) -> Descriptors:
    """Tempo, energy, danceability, loudness, key and mode of one track.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], mono, at least ``params.min_seconds`` long
    sr : sample rate of ``y`` in Hz (8 kHz or more)
    params : DescribeParams

    Returns
    -------
    Descriptors

    Raises
    ------
    BadAudio
        when the audio is not mono, too short, silent (in the analysed part) or the rate too low.
    """
    if sr < 8000:
        raise BadAudio(f"audio: a sample rate of {sr} Hz is too low to describe (8000 Hz or more needed)")
    y = np.asarray(y)
    if y.ndim == 1 and y.size > params.max_seconds * sr:
        n = int(params.max_seconds * sr)
        start = (y.size - n) // 2
        y = y[start:start + n]
    y = validate(y, sr=sr, min_seconds=params.min_seconds, name="audio")

    env, frame_rate = onset_strength(y, sr=sr, params=params)
    acf = tempogram(env, frame_rate=frame_rate, params=params)
    period = beat_period(acf, frame_rate=frame_rate, params=params)
    tempo = min(params.tempo_max, max(params.tempo_min, 60.0 * frame_rate / period))

    strength = _at(acf, period)
    multiples = [_at(acf, m * period) for m in (2, 3, 4) if m * period < acf.size - 1]
    regularity = float(np.mean(multiples)) if multiples else strength
    dance = 0.6 * strength + 0.4 * regularity
    danceability = _logistic((dance - params.dance_center) / params.dance_scale)

    lufs = loudness(y, sr=sr)
    flux = float(np.mean(env))
    energy = _logistic((lufs - params.energy_loudness_center) / params.energy_loudness_scale
                       + (flux - params.energy_flux_center) / params.energy_flux_scale)

    key, mode, confidence = estimate_key(chroma(y, sr=sr, params=params), params=params)
    return Descriptors(tempo=float(tempo), energy=energy, danceability=danceability, loudness=float(lufs),
                       key=key, mode=mode, key_confidence=confidence, seconds=y.size / sr)


# ----------------------------------------------------------------------------- spectra


def _pow2(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1.0, n))))


def _stft_power(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Power spectrogram, ``[shape=(n_fft // 2 + 1, n_frames), dtype=float32]`` (Hann window, no padding)."""
    if y.size < n_fft:
        y = np.pad(y, (0, n_fft - y.size))
    n_frames = 1 + (y.size - n_fft) // hop_length
    frames = np.lib.stride_tricks.as_strided(
        y, shape=(n_frames, n_fft), strides=(y.strides[0] * hop_length, y.strides[0]), writeable=False
    )
    window = signal.windows.hann(n_fft, sym=False).astype(np.float32)
    spec = fft.rfft(frames * window, axis=1)
    return (spec.real**2 + spec.imag**2).T


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_filters(*, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filterbank (HTK mel scale), ``[shape=(n_mels, n_fft // 2 + 1), dtype=float32]``."""
    fmax = min(fmax, sr / 2.0)
    edges = 700.0 * (10.0 ** (np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def onset_strength(y: np.ndarray, *, sr: int, params: DescribeParams = DescribeParams()) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength of a log-mel spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate in Hz

    Returns
    -------
    env : np.ndarray [shape=(n_frames,), dtype=float32], mean positive dB increase per band and frame
        (the first frame is 0)
    frame_rate : frames per second of ``env``
    """
    n_fft, hop = params.n_fft(sr), params.hop_length(sr)
    power = _stft_power(y, n_fft=n_fft, hop_length=hop)
    mel = _mel_filters(sr=sr, n_fft=n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax) @ power
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - params.top_db)
    env = np.zeros(db.shape[1], dtype=np.float32)
    env[1:] = np.maximum(0.0, np.diff(db, axis=1)).mean(axis=0)
    return env, sr / hop


# ----------------------------------------------------------------------------- tempo


def tempogram(env: np.ndarray, *, frame_rate: float, params: DescribeParams = DescribeParams()) -> np.ndarray:
    """Windowed autocorrelation of an onset envelope.

    Each window has its mean removed; its autocorrelation is unbiased (divided by the overlap)
    and normalised to 1 at lag 0. Windows with no onset activity are left out of the mean.

    Parameters
    ----------
    env : np.ndarray [shape=(n_frames,)], from :func:`onset_strength`
    frame_rate : frames per second of ``env``

    Returns
    -------
    acf : np.ndarray [shape=(win // 2,), dtype=float64], mean over windows; index = lag in frames.
        All zeros when no window has any onset.
    """
    win = min(env.size, int(round(params.tempogram_seconds * frame_rate)))
    hop = max(1, int(round(params.tempogram_hop_seconds * frame_rate)))
    starts = np.arange(0, env.size - win + 1, hop)
    x = np.stack([env[s:s + win] for s in starts]).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    spec = fft.rfft(x, n=2 * win, axis=1)
    r = fft.irfft(spec.real**2 + spec.imag**2, n=2 * win, axis=1)[:, : win // 2]
    r /= win - np.arange(win // 2)
    active = r[:, 0] > 1e-12
    if not np.any(active):
        return np.zeros(win // 2)
    return (r[active] / r[active, :1]).mean(axis=0)


def _parabolic(acf: np.ndarray, i: int) -> float:
    """Sub-frame position of the peak at ``i``."""
    if i <= 0 or i >= acf.size - 1:
        return float(i)
    a, b, c = acf[i - 1], acf[i], acf[i + 1]
    denom = a - 2.0 * b + c
    return float(i) if denom >= 0 else float(i) + float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))


def _at(acf: np.ndarray, lag: float) -> float:
    """``acf`` linearly interpolated at a fractional lag."""
    return float(np.interp(lag, np.arange(acf.size), acf))


def beat_period(acf: np.ndarray, *, frame_rate: float, params: DescribeParams = DescribeParams()) -> float:
    """The beat period, in frames (fractional), from a tempogram.

    Parameters
    ----------
    acf : np.ndarray [shape=(n_lags,)], from :func:`tempogram`
    frame_rate : frames per second

    Returns
    -------
    period : float, in ``[60 fr / tempo_max, 60 fr / tempo_min]`` frames
    """
    lo = max(1, math.ceil(60.0 * frame_rate / params.tempo_max))
    hi = min(acf.size - 2, math.floor(60.0 * frame_rate / params.tempo_min))
    if hi <= lo:
        raise BadAudio("audio: too short to measure a tempo")
    lags = np.arange(lo, hi + 1)
    bpm = 60.0 * frame_rate / lags
    prior = np.exp(-0.5 * (np.log2(bpm / params.tempo_prior_bpm) / params.tempo_prior_octaves) ** 2)
    peak = (acf[lags] >= acf[lags - 1]) & (acf[lags] >= acf[lags + 1]) & (acf[lags] > 0)
    score = np.where(peak, acf[lags] * prior, -np.inf)
    if not np.isfinite(score).any():
        score = acf[lags] * prior
    best = int(lags[int(np.argmax(score))])
    period = _parabolic(acf, best)

    # Refine from the peaks at multiples of the period: the m-th is m times as precise.
    height = acf[best]
    ms, positions, weights = [1.0], [period], [max(height, 1e-6)]
    for m in range(2, params.refine_multiples + 1):
        guess = m * period
        if guess + 2 >= acf.size:
            break
        i = int(round(guess))
        i = i - 1 + int(np.argmax(acf[i - 1:i + 2]))
        if acf[i] < 0.5 * height or not (acf[i] >= acf[i - 1] and acf[i] >= acf[i + 1]):
            continue
        ms.append(float(m))
        positions.append(_parabolic(acf, i))
        weights.append(float(acf[i]))
        m_arr, p_arr, w_arr = np.array(ms), np.array(positions), np.array(weights)
        period = float(np.sum(w_arr * m_arr * p_arr) / np.sum(w_arr * m_arr * m_arr))
    return period


# ----------------------------------------------------------------------------- loudness


def _k_weighting(sr: int) -> np.ndarray:
    """BS.1770 K-weighting (high shelf +4 dB at 1.5 kHz, then a 38 Hz high-pass) as second-order sections."""
    # High shelf, Audio EQ Cookbook, G = 4 dB, Q = 1/sqrt(2), f0 = 1500 Hz.
    a_ = 10.0 ** (4.0 / 40.0)
    w0 = 2.0 * math.pi * min(1500.0, 0.45 * sr) / sr
    alpha = math.sin(w0) / (2.0 / math.sqrt(2.0))
    cw, sa = math.cos(w0), 2.0 * math.sqrt(a_) * alpha
    shelf = [a_ * ((a_ + 1) + (a_ - 1) * cw + sa), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw),
             a_ * ((a_ + 1) + (a_ - 1) * cw - sa),
             (a_ + 1) - (a_ - 1) * cw + sa, 2 * ((a_ - 1) - (a_ + 1) * cw), (a_ + 1) - (a_ - 1) * cw - sa]
    # High-pass, Q = 0.5, f0 = 38 Hz.
    w0 = 2.0 * math.pi * 38.0 / sr
    alpha, cw = math.sin(w0) / (2.0 * 0.5), math.cos(w0)
    highpass = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2, 1 + alpha, -2 * cw, 1 - alpha]
    sos = np.array([shelf, highpass], dtype=np.float64)
    sos[:, :3] /= sos[:, 3:4]
    sos[:, 3:] /= sos[:, 3:4]
    return sos


def loudness(y: np.ndarray, *, sr: int) -> float:
    """Integrated loudness of one channel after ITU-R BS.1770-4, in LUFS.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate in Hz

    Returns
    -------
    lufs : float; -70.0 when every block is below the absolute gate
    """
    z = signal.sosfilt(_k_weighting(sr), y.astype(np.float64))
    block, step = int(round(0.4 * sr)), int(round(0.1 * sr))
    if z.size < block:
        block = step = z.size
    csum = np.concatenate([[0.0], np.cumsum(z * z)])
    starts = np.arange(0, z.size - block + 1, step)
    power = (csum[starts + block] - csum[starts]) / block
    gated = power[-0.691 + 10.0 * np.log10(power + 1e-20) > -70.0]
    if gated.size == 0:
        return -70.0
    relative = -0.691 + 10.0 * math.log10(float(gated.mean())) - 10.0
    gated = gated[-0.691 + 10.0 * np.log10(gated) > relative]
    return -0.691 + 10.0 * math.log10(float(gated.mean()))


# ----------------------------------------------------------------------------- key


def chroma(y: np.ndarray, *, sr: int, params: DescribeParams = DescribeParams()) -> np.ndarray:
    """STFT chroma: magnitudes of spectral peaks summed per equal-tempered pitch class (A440), per frame.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate in Hz

    Returns
    -------
    C : np.ndarray [shape=(12, n_frames), dtype=float32], row 0 = C; frames not normalised
    """
    n_fft = _pow2(params.chroma_frame_seconds * sr)
    power = _stft_power(y, n_fft=n_fft, hop_length=n_fft // 2)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lo, hi = np.searchsorted(freqs, [params.chroma_fmin, min(params.chroma_fmax, 0.45 * sr)])
    midi = 12.0 * np.log2(freqs[lo:hi] / 440.0) + 69.0
    pitch_class = np.rint(midi).astype(np.int64) % 12
    mapping = np.zeros((12, hi - lo), dtype=np.float32)
    mapping[pitch_class, np.arange(hi - lo)] = 1.0
    # Only spectral peaks count: the skirts of a strong partial would leak into neighbouring classes.
    mag = np.sqrt(power[lo - 1:hi + 1])
    is_peak = (mag[1:-1] > mag[:-2]) & (mag[1:-1] >= mag[2:])
    return mapping @ (mag[1:-1] * is_peak)


def estimate_key(C: np.ndarray, *, params: DescribeParams = DescribeParams()) -> tuple[str, str, float]:
    """Key and mode by Krumhansl-Schmuckler: correlate the mean chroma with 24 key profiles.

    Parameters
    ----------
    C : np.ndarray [shape=(12, n_frames)], from :func:`chroma`

    Returns
    -------
    key : one of :data:`PITCH_CLASSES`
    mode : ``"major"`` or ``"minor"``
    confidence : float in [0, 1]
    """
    total = C.sum(axis=0)
    keep = total > 1e-3 * max(float(total.max()), 1e-20)
    profile = (C[:, keep] / total[keep]).mean(axis=1) if np.any(keep) else np.full(12, 1.0 / 12)
    z = profile - profile.mean()
    spread = float(np.linalg.norm(z))
    if spread < 1e-9:
        return PITCH_CLASSES[0], MODES[0], 0.0
    z /= spread
    scores = np.empty((2, 12))
    for m, template in enumerate((_MAJOR_PROFILE, _MINOR_PROFILE)):
        t = np.asarray(template) - np.mean(template)
        t /= np.linalg.norm(t)
        # Rotate the template so its tonic sits on pitch class k.
        scores[m] = [float(np.dot(z, np.roll(t, k))) for k in range(12)]
    mode, tonic = (int(i) for i in np.unravel_index(int(np.argmax(scores)), scores.shape))
    # A flat chroma (noise, drums) correlates by chance: scale by how far it is from flat.
    contrast = spread / (float(profile.mean()) * math.sqrt(12.0))
    confidence = max(0.0, float(scores[mode, tonic])) * min(1.0, contrast / params.key_min_contrast)
    return PITCH_CLASSES[tonic], MODES[mode], float(confidence)


def _logistic(x: float) -> float:
    return float(1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x)))))
