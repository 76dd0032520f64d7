"""Audio degradations: what happens to music between a speaker and a phone's microphone.

Plain keyword-only functions in the style of librosa, used by the identification benchmark
(``bench/identify.py``) and by the tests. Every function takes mono float32 samples ``y`` and
returns new mono float32 samples; none modifies its input. Random ones take an explicit
``rng : np.random.Generator`` so that a benchmark run is reproducible from its seed.

The :data:`DEGRADATIONS` registry names the conditions the benchmark reports, each as
``f(y, *, sr, rng) -> y``.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable
from fractions import Fraction
from math import gcd

import numpy as np
from scipy import signal

from encore.errors import EncoreError

__all__ = [
    "DEGRADATIONS",
    "Degradation",
    "add_noise",
    "excerpt",
    "mp3",
    "pink_noise",
    "snr_db",
    "speed",
    "telephone",
    "white_noise",
]

#: Samples of delay an MP3 round trip through ffmpeg pipes adds: LAME's encoder delay (576)
#: plus the decoder's (529). Written to a pipe, the stream has no usable gapless (LAME/Xing)
#: header, so the decoder cannot trim it; measured constant for every rate and bit rate.
LAME_DELAY = 1105

#: Sample rates MPEG-1/2/2.5 layer III can carry.
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

#: Telephone channel (ITU-T G.712-like): pass band and the 8 kHz PCM codec rate.
PHONE_BAND = (300.0, 3400.0)
PHONE_RATE = 8000
#: Cut-off (-6 dB) of the codec's anti-alias filter, between the pass band and 4 kHz.
PHONE_ANTIALIAS_HZ = 3600.0


def _as_mono(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {y.shape}")
    return y.astype(np.float32, copy=False)


def _power(y: np.ndarray) -> float:
    return float(np.mean(np.square(y, dtype=np.float64))) if y.size else 0.0


def snr_db(clean: np.ndarray, degraded: np.ndarray) -> float:
    """Signal-to-noise ratio of ``degraded`` against ``clean``, in dB.

    Parameters
    ----------
    clean : np.ndarray [shape=(n,)]
    degraded : np.ndarray [shape=(n,)]

    Returns
    -------
    snr : float
        ``10 log10(P(clean) / P(degraded - clean))``; ``inf`` when they are identical.
    """
    clean = np.asarray(clean, dtype=np.float64)
    noise = np.asarray(degraded, dtype=np.float64) - clean
    pn = float(np.mean(noise * noise))
    return float("inf") if pn == 0.0 else 10.0 * np.log10(float(np.mean(clean * clean)) / pn)


def add_noise(y: np.ndarray, noise: np.ndarray, *, snr_db: float) -> np.ndarray:
    """Add ``noise`` to ``y``, scaled so that the mixture's SNR is exactly ``snr_db``.

    The signal power is the clip's own mean power, so the SNR holds whatever the level of
    ``y``. A silent ``y`` is returned unchanged (no SNR is defined for it).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    noise : np.ndarray [shape=(n,)]
    snr_db : target signal-to-noise ratio in dB

    Returns
    -------
    y_noisy : np.ndarray [shape=(n,), dtype=float32]
        Not clipped: with a low SNR its peaks may pass 1.0.
    """
    y = _as_mono(y)
    noise = np.asarray(noise, dtype=np.float64)
    if noise.shape != y.shape:
        raise ValueError(f"noise shape {noise.shape} != signal shape {y.shape}")
    ps, pn = _power(y), float(np.mean(noise * noise)) if noise.size else 0.0
    if ps == 0.0 or pn == 0.0:
        return y.copy()
    gain = np.sqrt(ps / (pn * 10.0 ** (snr_db / 10.0)))
    return (y.astype(np.float64) + gain * noise).astype(np.float32)


def white_noise(y: np.ndarray, *, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian white noise at ``snr_db`` dB below the clip's own power.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    snr_db : signal-to-noise ratio in dB (10: quiet room hiss, 0: noise as loud as the music)
    rng : np.random.Generator

    Returns
    -------
    y_noisy : np.ndarray [shape=(n,), dtype=float32]
    """
    y = _as_mono(y)
    return add_noise(y, rng.standard_normal(y.size), snr_db=snr_db)


def pink(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Gaussian pink (1/f power) noise of unit RMS.

    White noise shaped in the frequency domain by ``1/sqrt(f)`` (power falls 3 dB per octave,
    10 dB per decade); the DC bin is zeroed.

    Returns
    -------
    noise : np.ndarray [shape=(n,), dtype=float64]
    """
    if n == 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = np.inf
    noise = np.fft.irfft(spec / np.sqrt(f), n)
    rms = np.sqrt(np.mean(noise * noise))
    return noise / rms if rms > 0 else noise


def pink_noise(y: np.ndarray, *, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add pink (1/f) noise at ``snr_db`` dB below the clip's own power.

    Pink noise weighs the low frequencies like crowd, traffic and room rumble do.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    snr_db : signal-to-noise ratio in dB
    rng : np.random.Generator

    Returns
    -------
    y_noisy : np.ndarray [shape=(n,), dtype=float32]
    """
    y = _as_mono(y)
    return add_noise(y, pink(y.size, rng=rng), snr_db=snr_db)


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise EncoreError("ffmpeg is not installed; install ffmpeg (apt-get install ffmpeg)")
    return path


def mp3(y: np.ndarray, *, sr: int, kbps: int) -> np.ndarray:
    """Round-trip ``y`` through an MP3 encoder (ffmpeg's libmp3lame) at ``kbps`` kbit/s CBR.

    Everything goes through pipes (no temporary files). The codec's delay
    (:data:`LAME_DELAY` samples at the coded rate) is removed and the output trimmed or
    zero-padded, so sample ``i`` of the output lines up with sample ``i`` of the input.
    Rates MP3 cannot carry are coded at the next one up and converted back.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate of ``y`` in Hz
    kbps : bit rate, e.g. 64

    Returns
    -------
    y_mp3 : np.ndarray [shape=(n,), dtype=float32]
        Band-limited by the encoder's low-pass (about 16 kHz at 64 kbps and 44.1 kHz).
    """
    y = _as_mono(y)
    if y.size == 0:
        return y.copy()
    coded = next((r for r in MP3_RATES if r >= sr), MP3_RATES[-1])
    ffmpeg = _ffmpeg()
    enc_cmd = [ffmpeg, "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0"]
    if coded != sr:
        enc_cmd += ["-ar", str(coded)]
    enc_cmd += ["-c:a", "libmp3lame", "-b:a", f"{int(kbps)}k", "-f", "mp3", "pipe:1"]
    dec_cmd = [ffmpeg, "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "f32le", "-ar", str(sr), "-ac", "1", "pipe:1"]
    # encoder | decoder, started together so that their start-up overlaps; a thread feeds the
    # encoder while communicate() drains the decoder (no pipe can fill up and block).
    enc = subprocess.Popen(enc_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dec = subprocess.Popen(dec_cmd, stdin=enc.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    enc.stdout.close()  # the decoder holds the read end now
    enc_err: list[bytes] = []

    def feed() -> None:
        try:
            enc.stdin.write(y.astype("<f4").tobytes())
        except BrokenPipeError:
            pass
        finally:
            enc.stdin.close()
            enc_err.append(enc.stderr.read())

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    try:
        raw, dec_err = dec.communicate(timeout=300)
    finally:
        writer.join(timeout=300)
        enc.wait(timeout=300)
    if enc.returncode != 0:
        msg = b"".join(enc_err).decode("utf-8", "replace").strip()
        raise EncoreError(f"mp3 encoding failed: {msg[-300:]}")
    if dec.returncode != 0:
        raise EncoreError(f"mp3 decoding failed: {dec_err.decode('utf-8', 'replace').strip()[-300:]}")
    out = np.frombuffer(raw, dtype="<f4")
    delay = int(round(LAME_DELAY * sr / coded))
    return _fit(out[delay:], y.size)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded to ``n`` samples, as float32."""
    out = np.zeros(n, dtype=np.float32)
    m = min(n, y.size)
    out[:m] = y[:m]
    return out


def _lowpass_fir(fs: float, cutoff: float, *, span_s: float = 2.5e-3, beta: float = 8.0) -> np.ndarray:
    """Linear-phase Kaiser low-pass at rate ``fs`` reaching ``span_s`` either side of its centre."""
    half = max(int(round(span_s * fs)), 8)
    return signal.firwin(2 * half + 1, cutoff, window=("kaiser", beta), fs=fs)


def _resample(y: np.ndarray, sr_in: int, sr_out: int, *, cutoff: float) -> np.ndarray:
    """Polyphase resampling whose anti-alias/anti-image filter cuts at ``cutoff`` Hz."""
    g = gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    h = _lowpass_fir(sr_in * up, cutoff)
    return signal.resample_poly(y, up, down, window=h)


def telephone(y: np.ndarray, *, sr: int) -> np.ndarray:
    """What a phone line does to music: band-pass 300-3400 Hz and 8 kHz sampling.

    A zero-phase Butterworth band-pass (order 6 sections, run forward and back) followed by a
    round trip through 8 kHz with the codec's steep anti-alias filter (cut-off 3.6 kHz). Zero
    phase keeps the output time-aligned with the input; a real line would also delay it a few
    ms, which identification does not care about.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate of ``y`` in Hz (at least 8000)

    Returns
    -------
    y_phone : np.ndarray [shape=(n,), dtype=float32]
        At ``sr`` again; under -30 dB of its energy lies below 200 Hz or above 3.6 kHz.
    """
    y = _as_mono(y)
    if sr < PHONE_RATE:
        raise ValueError(f"telephone() needs a sample rate of at least {PHONE_RATE} Hz, got {sr}")
    if y.size == 0:
        return y.copy()
    sos = signal.butter(6, PHONE_BAND, btype="bandpass", fs=sr, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), y.size - 1)
    x = signal.sosfiltfilt(sos, y.astype(np.float64), padlen=padlen)
    if sr == PHONE_RATE:
        x = signal.oaconvolve(x, _lowpass_fir(sr, PHONE_ANTIALIAS_HZ), mode="same")
    else:
        x = _resample(x, sr, PHONE_RATE, cutoff=PHONE_ANTIALIAS_HZ)
        x = _resample(x, PHONE_RATE, sr, cutoff=PHONE_ANTIALIAS_HZ)
    return _fit(x, y.size)


def speed(y: np.ndarray, *, sr: int, factor: float) -> np.ndarray:
    """Play ``y`` ``factor`` times faster, pitch and tempo together (a turntable or tape).

    ``factor=1.02`` is 2% fast: the output is ``1/1.02`` as long and a 1 kHz tone comes out at
    1020 Hz. Polyphase resampling by a rational approximation of ``1/factor`` (denominator <=
    1000, e.g. 50/51 for 1.02), with the result read at the original rate.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate of ``y`` in Hz (unchanged; kept for a uniform signature)
    factor : speed ratio, > 0

    Returns
    -------
    y_fast : np.ndarray [shape=(round(n / factor),), dtype=float32]
    """
    y = _as_mono(y)
    if not factor > 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    ratio = Fraction(1.0 / factor).limit_denominator(1000)
    if ratio == 1:
        return y.copy()
    out = signal.resample_poly(y.astype(np.float64), ratio.numerator, ratio.denominator)
    return _fit(out, int(round(y.size / factor)))


def excerpt(y: np.ndarray, *, sr: int, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A ``seconds`` long excerpt of ``y`` from a uniformly random offset.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : sample rate in Hz
    seconds : excerpt length
    rng : np.random.Generator

    Returns
    -------
    clip : np.ndarray [shape=(round(seconds * sr),), dtype=float32]
    offset_s : float
        where the clip starts in ``y``, in seconds

    Raises
    ------
    ValueError
        when ``y`` is shorter than ``seconds``.
    """
    y = _as_mono(y)
    n = int(round(seconds * sr))
    if n <= 0 or n > y.size:
        raise ValueError(f"cannot cut {seconds:g} s from {y.size / sr:.2f} s of audio")
    start = int(rng.integers(0, y.size - n + 1))
    return y[start:start + n].copy(), start / sr


#: ``f(y, *, sr, rng) -> y``
Degradation = Callable[..., np.ndarray]


def _clean(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """The clip as it is."""
    return _as_mono(y).copy()


def _white(snr: float) -> Degradation:
    def f(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
        return white_noise(y, snr_db=snr, rng=rng)

    f.__doc__ = f"White noise at {snr:g} dB SNR."
    return f


def _pink(snr: float) -> Degradation:
    def f(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
        return pink_noise(y, snr_db=snr, rng=rng)

    f.__doc__ = f"Pink noise at {snr:g} dB SNR."
    return f


def _mp3(kbps: int) -> Degradation:
    def f(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
        return mp3(y, sr=sr, kbps=kbps)

    f.__doc__ = f"MP3 round trip at {kbps} kbit/s."
    return f


def _telephone(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Telephone band (300-3400 Hz) through 8 kHz."""
    return telephone(y, sr=sr)


def _speed(factor: float) -> Degradation:
    def f(y: np.ndarray, *, sr: int, rng: np.random.Generator) -> np.ndarray:
        return speed(y, sr=sr, factor=factor)

    f.__doc__ = f"Playback {abs(factor - 1) * 100:g}% {'faster' if factor > 1 else 'slower'} (pitch and tempo)."
    return f


#: The benchmark's conditions by name, each ``f(y, *, sr, rng) -> y``.
DEGRADATIONS: dict[str, Degradation] = {
    "clean": _clean,
    "white_10": _white(10.0),
    "white_5": _white(5.0),
    "white_0": _white(0.0),
    "pink_5": _pink(5.0),
    "mp3_64": _mp3(64),
    "telephone": _telephone,
    "speed_+2": _speed(1.02),
    "speed_-2": _speed(0.98),
}
