"""Music-like audio synthesised from a seed, for tests that cannot download real music.

:func:`synth_track` writes a small piece: a chord progression of harmonic tones with
envelopes, a melody over it, and kick/snare/hi-hat noise bursts on a beat. Tempo, key, mode,
progression, timbres and the melody are drawn from the seed, so two seeds give clearly
different tracks (their landmark fingerprints do not collide) and one seed always gives the
same samples. Generation is vectorised wavetable synthesis: about 0.06 s per 30 s track.

:func:`write_audio` encodes samples to wav/flac/mp3/ogg/opus/m4a through ffmpeg.
"""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["FORMATS", "synth_family", "synth_track", "tone", "write_audio"]

_TABLE = 4096
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
#: Progressions as scale degrees (0 = tonic), four bars each.
_PROGRESSIONS = [(0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 2, 5, 4), (0, 3, 0, 4),
                 (1, 4, 0, 0), (0, 6, 5, 4)]


def _midi_hz(m: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def _wavetable(rng: np.random.Generator, harmonics: int) -> np.ndarray:
    """One period of a random harmonic timbre, unit peak, ``_TABLE`` samples."""
    k = np.arange(1, harmonics + 1)
    amps = k ** -rng.uniform(0.6, 2.0) * rng.uniform(0.3, 1.0, harmonics)
    amps[0] = 1.0
    if rng.random() < 0.4:  # hollow, clarinet-like: weaken the even harmonics
        amps[1::2] *= 0.2
    phases = rng.uniform(0, 2 * np.pi, harmonics)
    t = np.arange(_TABLE) / _TABLE
    table = (amps[:, None] * np.sin(2 * np.pi * k[:, None] * t[None, :] + phases[:, None])).sum(axis=0)
    return (table / np.abs(table).max()).astype(np.float32)


@lru_cache(maxsize=256)
def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    """Linear attack, exponential decay, 20 ms linear release; float32, read-only (cached)."""
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    env = np.minimum(t / np.float32(attack), 1.0) * np.exp(-t / np.float32(decay))
    release = min(n, int(0.02 * sr))
    env[n - release:] *= np.linspace(1.0, 0.0, release, dtype=np.float32)
    env.flags.writeable = False
    return env


def _render(out: np.ndarray, table: np.ndarray, *, start: int, n: int, hz: float, sr: int,
            amp: float, attack: float, decay: float, vibrato: float = 0.0) -> None:
    """Add one note (wavetable oscillator times an attack/exponential-decay envelope) into ``out``."""
    n = min(n, out.size - start)
    if n <= 0:
        return
    if vibrato:
        t = np.arange(n, dtype=np.float64) / sr
        phase = hz * t + vibrato * 0.01 * hz / (2 * np.pi * 5.5) * np.sin(2 * np.pi * 5.5 * t)
        idx = (phase * _TABLE).astype(np.int64) & (_TABLE - 1)
    else:  # 16.16 fixed-point phase accumulator
        idx = ((np.arange(n, dtype=np.int64) * int(round(hz / sr * _TABLE * 65536))) >> 16) & (_TABLE - 1)
    out[start:start + n] += table[idx] * (amp * _envelope(n, sr, attack, decay))


def _burst(out: np.ndarray, noise: np.ndarray, *, start: int, sr: int, amp: float, decay: float) -> None:
    n = min(noise.size, out.size - start)
    if n <= 0:
        return
    t = np.arange(n) / sr
    out[start:start + n] += amp * noise[:n] * np.exp(-t / decay)


def synth_track(seed: int, *, seconds: float, sr: int = 22050) -> np.ndarray:
    """A deterministic piece of music-like audio drawn from ``seed``.

    Parameters
    ----------
    seed : any int; one seed always gives the same samples, different seeds different pieces
    seconds : length
    sr : sample rate in Hz

    Returns
    -------
    y : np.ndarray [shape=(round(seconds * sr),), dtype=float32]
        peak 0.9, mono
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float32)
    bpm = rng.uniform(72.0, 160.0)
    beat = 60.0 / bpm
    beat_n = int(round(beat * sr))
    root = int(rng.integers(45, 58))  # A2..A#3
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    beats_per_chord = int(rng.choice([2, 4, 4, 8]))
    pad = _wavetable(rng, int(rng.integers(3, 9)))
    lead = _wavetable(rng, int(rng.integers(2, 7)))
    bass = _wavetable(rng, 3)

    def degree_midi(degree: np.ndarray | int, octave: int = 0) -> np.ndarray:
        d = np.asarray(degree)
        return root + 12 * (octave + d // 7) + scale[d % 7]

    # Chords and bass: one chord per `beats_per_chord` beats, cycling through the progression.
    chord_n = beats_per_chord * beat_n
    pad_decay = round(rng.uniform(0.6, 3.0), 3)
    for c, start in enumerate(range(0, n, chord_n)):
        degree = progression[c % len(progression)]
        triad = degree_midi(np.array([degree, degree + 2, degree + 4]), octave=1)
        if rng.random() < 0.3:
            triad = np.append(triad, degree_midi(degree + 6, octave=1))
        for m in triad:
            _render(out, pad, start=start, n=chord_n, hz=float(_midi_hz(m)), sr=sr, amp=0.12,
                    attack=0.03, decay=pad_decay)
        for b in range(0, beats_per_chord, 2 if rng.random() < 0.5 else 1):
            _render(out, bass, start=start + b * beat_n, n=beat_n, hz=float(_midi_hz(degree_midi(degree) - 12)),
                    sr=sr, amp=0.25, attack=0.005, decay=0.25)

    # Melody: a random walk on the scale in eighths and quarters, with rests.
    t = 0
    step = int(rng.integers(7, 14))
    lead_decay = round(rng.uniform(0.15, 0.6), 3)
    vibrato = rng.uniform(0.0, 1.0)
    while t < n:
        length = beat_n // 2 if rng.random() < 0.6 else beat_n
        if rng.random() > 0.15:
            step = int(np.clip(step + rng.integers(-3, 4), 3, 20))
            _render(out, lead, start=t, n=length, hz=float(_midi_hz(degree_midi(step, octave=0) + 12)), sr=sr,
                    amp=0.2, attack=0.01, decay=lead_decay, vibrato=vibrato)
        t += length

    # Drums: kick on 1 and 3 (a falling sine), snare on 2 and 4, closed hi-hat on eighths.
    k_n = int(0.15 * sr)
    kt = np.arange(k_n) / sr
    kick = np.sin(2 * np.pi * (45.0 * kt + 60.0 * 0.03 * (1 - np.exp(-kt / 0.03))))
    snare = rng.standard_normal(int(0.2 * sr))
    hat = np.diff(rng.standard_normal(int(0.05 * sr) + 1))
    pattern = rng.random(8) < 0.3  # extra kicks on some eighths, per seed
    for i, start in enumerate(range(0, n, beat_n // 2)):
        if i % 4 == 0 or (pattern[i % 8] and i % 2 == 1):
            _burst(out, kick, start=start, sr=sr, amp=0.5, decay=0.08)
        if i % 4 == 2:
            _burst(out, snare, start=start, sr=sr, amp=0.15, decay=0.05)
        _burst(out, hat, start=start, sr=sr, amp=0.06 * rng.uniform(0.5, 1.0), decay=0.015)

    peak = np.abs(out).max()
    return (0.9 * out / peak if peak > 0 else out).astype(np.float32)


def synth_family(piece: int, *, family: int = 0, seconds: float, sr: int = 22050,
                 shared_timbres: bool = True) -> np.ndarray:
    """One piece of a *family*: pieces made with one kit, like library music from one producer.

    Every piece of a family shares what the family draws: the tempo (to within 0.3 %), the key
    and mode, the pad, lead and bass timbres, the kick, snare and hi-hat samples, the chord
    rhythm and three drum patterns. A piece draws its own chord order (one of eight
    progressions), its drum pattern (one of the family's three) and its melody. Two pieces of a
    family are different music that sounds alike: the same drums on the same beat grid, often the
    same chords at the same moments, different tunes. :func:`synth_track` pieces share nothing.

    Parameters
    ----------
    piece : any int; with ``family``, one piece always gives the same samples
    family : any int; the kit, key and tempo
    seconds : length
    sr : sample rate in Hz
    shared_timbres : False: each piece draws its own pad, lead and bass timbres (the drums,
        key and tempo stay the family's)

    Returns
    -------
    y : np.ndarray [shape=(round(seconds * sr),), dtype=float32]
        peak 0.9, mono
    """
    kit = np.random.default_rng([0xFA417, family])
    bpm = kit.uniform(90.0, 140.0)
    root = int(kit.integers(45, 58))
    scale = _MAJOR if kit.random() < 0.5 else _MINOR
    pad = _wavetable(kit, int(kit.integers(3, 9)))
    lead = _wavetable(kit, int(kit.integers(2, 7)))
    bass = _wavetable(kit, 3)
    pad_decay = round(kit.uniform(0.8, 2.0), 3)
    lead_decay = round(kit.uniform(0.15, 0.4), 3)
    vibrato = kit.uniform(0.0, 1.0)
    patterns = kit.random((3, 8)) < 0.3  # extra kicks on some off-beat eighths
    snare = kit.standard_normal(int(0.2 * sr))
    hat = np.diff(kit.standard_normal(int(0.05 * sr) + 1))

    rng = np.random.default_rng([0xFA417, family, piece])
    if not shared_timbres:
        pad, lead, bass = (_wavetable(rng, int(rng.integers(lo, hi))) for lo, hi in ((3, 9), (2, 7), (3, 4)))
    n = int(round(seconds * sr))
    out = np.zeros(n, dtype=np.float32)
    beat_n = int(round(60.0 / (bpm * (1.0 + rng.uniform(-0.003, 0.003))) * sr))
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    pattern = patterns[int(rng.integers(len(patterns)))]

    def degree_midi(degree: np.ndarray | int, octave: int = 0) -> np.ndarray:
        d = np.asarray(degree)
        return root + 12 * (octave + d // 7) + scale[d % 7]

    chord_n = 4 * beat_n
    for c, start in enumerate(range(0, n, chord_n)):
        degree = progression[c % len(progression)]
        for m in degree_midi(np.array([degree, degree + 2, degree + 4]), octave=1):
            _render(out, pad, start=start, n=chord_n, hz=float(_midi_hz(m)), sr=sr, amp=0.12,
                    attack=0.03, decay=pad_decay)
        for b in (0, 2):
            _render(out, bass, start=start + b * beat_n, n=2 * beat_n, hz=float(_midi_hz(degree_midi(degree) - 12)),
                    sr=sr, amp=0.25, attack=0.005, decay=0.3)

    t, step = 0, int(rng.integers(7, 14))
    while t < n:
        length = beat_n // 2 if rng.random() < 0.6 else beat_n
        if rng.random() > 0.15:
            step = int(np.clip(step + rng.integers(-3, 4), 3, 20))
            _render(out, lead, start=t, n=length, hz=float(_midi_hz(degree_midi(step) + 12)), sr=sr,
                    amp=0.2, attack=0.01, decay=lead_decay, vibrato=vibrato)
        t += length

    k_n = int(0.15 * sr)
    kt = np.arange(k_n) / sr
    kick = np.sin(2 * np.pi * (45.0 * kt + 60.0 * 0.03 * (1 - np.exp(-kt / 0.03))))
    for i, start in enumerate(range(0, n, beat_n // 2)):
        if i % 4 == 0 or (pattern[i % 8] and i % 2 == 1):
            _burst(out, kick, start=start, sr=sr, amp=0.5, decay=0.08)
        if i % 4 == 2:
            _burst(out, snare, start=start, sr=sr, amp=0.15, decay=0.05)
        _burst(out, hat, start=start, sr=sr, amp=0.06, decay=0.015)

    peak = np.abs(out).max()
    return (0.9 * out / peak if peak > 0 else out).astype(np.float32)


def tone(hz: float, *, seconds: float, sr: int = 22050, amp: float = 0.5) -> np.ndarray:
    """A pure sine tone.

    Returns
    -------
    y : np.ndarray [shape=(round(seconds * sr),), dtype=float32]
    """
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


#: fmt -> (ffmpeg muxer, codec options)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "wav": ("wav", ["-c:a", "pcm_s16le"]),
    "flac": ("flac", ["-c:a", "flac", "-sample_fmt", "s16"]),
    "mp3": ("mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
    "ogg": ("ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    "opus": ("opus", ["-c:a", "libopus", "-b:a", "96k"]),
    "m4a": ("ipod", ["-c:a", "aac", "-b:a", "160k"]),
}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def write_audio(path: str | Path, y: np.ndarray, *, sr: int, fmt: str | None = None) -> Path:
    """Encode mono float samples to ``path`` with ffmpeg.

    Parameters
    ----------
    path : where to write (parents are created)
    y : np.ndarray [shape=(n,)]
    sr : sample rate of ``y``
    fmt : one of :data:`FORMATS` (wav, flac, mp3, ogg, opus, m4a); default: the file's suffix

    Returns
    -------
    path : Path
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(FORMATS)}")
    muxer, codec = FORMATS[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "pipe:0"]
    if fmt == "opus" and sr not in _OPUS_RATES:
        cmd += ["-ar", "48000"]
    cmd += [*codec, "-f", muxer, str(path)]
    samples = np.ascontiguousarray(np.asarray(y, dtype="<f4"))
    proc = subprocess.run(cmd, input=samples.tobytes(), capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not write {path.name}: {proc.stderr.decode('utf-8', 'replace')[-300:]}")
    return path
