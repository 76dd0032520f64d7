"""Audio descriptors on synthesised audio with a known tempo, key, loudness and pulse."""

from __future__ import annotations

import numpy as np
import pytest

from encore.errors import BadAudio
from indexers.describe import MODES, PITCH_CLASSES, DescribeParams, describe, loudness
from tests.utils.audio import synth_track, tone

SR = 22050


def _add(y: np.ndarray, start: int, burst: np.ndarray) -> None:
    n = min(burst.size, y.size - start)
    y[start:start + n] += burst[:n]


def _clicks(bpm: float, *, sr: int = SR, seconds: float = 30.0, gain: float = 0.5) -> np.ndarray:
    """A 10 ms noise click on every beat."""
    rng = np.random.default_rng(0)
    y = np.zeros(int(seconds * sr))
    t = np.arange(int(0.01 * sr)) / sr
    for start in np.arange(0.0, seconds, 60.0 / bpm):
        _add(y, int(round(start * sr)), gain * rng.standard_normal(t.size) * np.exp(-t / 0.002))
    return y.astype(np.float32)


def _drums(bpm: float, *, sr: int = SR, seconds: float = 30.0, gain: float = 1.0) -> np.ndarray:
    """A rock beat: kick on every beat, snare on 2 and 4, closed hi-hat on every eighth."""
    rng = np.random.default_rng(1)
    y = np.zeros(int(seconds * sr))
    t = np.arange(int(0.15 * sr)) / sr
    kick = 0.6 * np.sin(2 * np.pi * (50 * t + 40 * 0.03 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.08)
    for i, start in enumerate(np.arange(0.0, seconds, 30.0 / bpm)):
        s = int(round(start * sr))
        if i % 2 == 0:
            _add(y, s, kick)
        if i % 4 == 2:
            _add(y, s, 0.3 * rng.standard_normal(t.size) * np.exp(-t / 0.04))
        _add(y, s, 0.06 * rng.standard_normal(t.size) * np.exp(-t / 0.015))
    return (gain * y).astype(np.float32)


def _random_bursts(per_second: float, *, sr: int = SR, seconds: float = 30.0, seed: int = 2) -> np.ndarray:
    """Noise bursts at random times (a Poisson process): onsets with no pulse."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr))
    t = np.arange(int(0.15 * sr)) / sr
    for start in rng.uniform(0.0, seconds, int(per_second * seconds)):
        _add(y, int(start * sr), 0.4 * rng.standard_normal(t.size) * np.exp(-t / 0.03))
    return y.astype(np.float32)


def _note(midi: float, seconds: float, *, sr: int = SR, amp: float = 0.15) -> np.ndarray:
    """A plucked harmonic tone (6 partials, falling as 1/k), like a piano or guitar note."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    partials = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 7))
    return amp * partials * np.minimum(1.0, t / 0.01) * np.exp(-t / 1.5)


def _chords(chords: list[list[int]], *, seconds: float = 2.0, repeats: int = 4) -> np.ndarray:
    """Each chord (MIDI notes) struck and held for ``seconds``, the sequence played ``repeats`` times."""
    return np.concatenate([sum(_note(m, seconds) for m in chord) for chord in chords] * repeats).astype(np.float32)


def _melody(notes: list[int], *, seconds: float = 0.5, repeats: int = 3) -> np.ndarray:
    return np.concatenate([_note(m, seconds) for m in notes] * repeats).astype(np.float32)


# ----------------------------------------------------------------------------- tempo


@pytest.mark.parametrize("sr", [22050, 16000])
@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_tempo_of_a_click_track_is_within_2_percent(bpm, sr):
    d = describe(_clicks(bpm, sr=sr), sr=sr)
    assert d.tempo == pytest.approx(bpm, rel=0.02)


@pytest.mark.parametrize("sr", [22050, 16000])
@pytest.mark.parametrize("bpm", [90.0, 120.0, 140.0])
def test_tempo_of_a_rock_beat_is_the_beat_not_the_hihat_or_the_bar(bpm, sr):
    d = describe(_drums(bpm, sr=sr), sr=sr)
    assert d.tempo == pytest.approx(bpm, rel=0.02)


def test_tempo_ignores_gain_and_stays_in_range():
    y = _drums(120.0)
    assert describe(0.05 * y, sr=SR).tempo == pytest.approx(describe(y, sr=SR).tempo, rel=1e-3)
    p = DescribeParams()
    for y in (_random_bursts(3.0), synth_track(3, seconds=20.0)):
        assert p.tempo_min <= describe(y, sr=SR).tempo <= p.tempo_max


# ----------------------------------------------------------------------------- key

C_MAJOR = [[48, 60, 64, 67]]
A_MINOR = [[45, 57, 60, 64]]
# I-IV-V-I and i-iv-V-i (the V of A minor is E major: G#, the leading tone).
C_CADENCE = [[48, 60, 64, 67], [53, 60, 65, 69], [55, 59, 62, 67], [48, 60, 64, 67]]
A_CADENCE = [[45, 57, 60, 64], [50, 57, 62, 65], [52, 56, 59, 64], [45, 57, 60, 64]]


@pytest.mark.parametrize(("audio", "key", "mode"), [
    pytest.param(_chords(C_MAJOR), "C", "major", id="C major triad"),
    pytest.param(_chords(A_MINOR), "A", "minor", id="A minor triad"),
    pytest.param(_chords(C_CADENCE), "C", "major", id="C major cadence"),
    pytest.param(_chords(A_CADENCE), "A", "minor", id="A minor cadence"),
    pytest.param(_melody([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60, 48]), "C", "major", id="C major scale"),
    pytest.param(_melody([57, 59, 60, 62, 64, 65, 67, 69, 64, 60, 57, 45]), "A", "minor", id="A minor scale"),
])
def test_key_and_mode_of_chords_and_scales(audio, key, mode):
    d = describe(audio, sr=SR)
    assert (d.key, d.mode) == (key, mode)
    assert d.key_confidence > 0.7


def test_key_follows_a_transposition():
    # The C major cadence up a fifth is in G major; at 16 kHz too.
    up = [[m + 7 for m in chord] for chord in C_CADENCE]
    d = describe(_chords(up), sr=SR)
    assert (d.key, d.mode) == ("G", "major")


def test_unpitched_noise_has_a_lower_key_confidence_than_chords():
    noise = describe(_random_bursts(6.0), sr=SR)
    chords = describe(_chords(C_CADENCE), sr=SR)
    assert noise.key_confidence < 0.5 < chords.key_confidence


# ----------------------------------------------------------------------------- energy, danceability, loudness


def test_loud_dense_music_has_more_energy_than_quiet_sparse_music():
    loud_dense = describe(_drums(140.0), sr=SR)
    quiet_sparse = describe(_clicks(60.0, gain=0.05), sr=SR)
    assert loud_dense.energy > 0.7
    assert quiet_sparse.energy < 0.3


def test_energy_grows_with_loudness_and_with_onset_density():
    y = _drums(110.0)
    energies = [describe(g * y, sr=SR).energy for g in (0.03, 0.1, 0.3, 1.0)]
    assert energies == sorted(energies) and energies[-1] - energies[0] > 0.3
    # Same level, more onsets per second: more energy.
    sparse, dense = _random_bursts(1.0), _random_bursts(6.0)
    dense *= np.sqrt(np.mean(sparse**2) / np.mean(dense**2))
    assert describe(dense, sr=SR).energy > describe(sparse, sr=SR).energy


def test_a_steady_beat_is_more_danceable_than_random_onsets():
    steady = describe(_drums(120.0), sr=SR)
    random = describe(_random_bursts(4.0), sr=SR)
    assert steady.danceability > 0.8
    assert random.danceability < 0.3


def test_loudness_is_bs1770_lufs():
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS; 20 dB down reads 20 LU less.
    for sr in (16000, 22050, 48000):
        full = tone(997.0, seconds=5.0, sr=sr, amp=1.0)
        assert loudness(full, sr=sr) == pytest.approx(-3.01, abs=0.1)
        assert loudness(0.1 * full, sr=sr) == pytest.approx(-23.01, abs=0.1)
    # K-weighting: 40 Hz counts for less than 1 kHz, 4 kHz for more (the +4 dB shelf).
    low, high = tone(40.0, seconds=5.0, amp=0.5), tone(4000.0, seconds=5.0, amp=0.5)
    mid = tone(1000.0, seconds=5.0, amp=0.5)
    assert loudness(low, sr=SR) < loudness(mid, sr=SR) - 0.5 < loudness(high, sr=SR) - 3.0


def test_descriptors_stay_in_bounds():
    signals = [_clicks(90.0), _drums(140.0), _random_bursts(3.0), _chords(A_CADENCE), synth_track(5, seconds=20.0),
               0.5 * np.random.default_rng(0).standard_normal(10 * SR).astype(np.float32)]
    for y in signals:
        d = describe(y, sr=SR)
        assert 0.0 <= d.energy <= 1.0
        assert 0.0 <= d.danceability <= 1.0
        assert 0.0 <= d.key_confidence <= 1.0
        assert d.key in PITCH_CLASSES and d.mode in MODES
        assert -70.0 <= d.loudness <= 0.0
        assert all(np.isfinite([d.tempo, d.energy, d.danceability, d.loudness, d.key_confidence]))


def test_describe_is_deterministic():
    y = synth_track(7, seconds=20.0)
    assert describe(y, sr=SR) == describe(y.copy(), sr=SR)


def test_long_tracks_are_analysed_in_the_middle_only():
    params = DescribeParams(max_seconds=20.0)
    # 10 s of loud drums, 20 s of a quiet cadence, 10 s of loud drums: only the cadence is heard.
    cadence = 0.3 * np.resize(_chords(C_CADENCE), 20 * SR)
    y = np.concatenate([_drums(150.0, seconds=10.0), cadence, _drums(150.0, seconds=10.0)]).astype(np.float32)
    d = describe(y, sr=SR, params=params)
    assert d.seconds == pytest.approx(20.0)
    assert (d.key, d.mode) == ("C", "major")
    assert d.loudness == pytest.approx(loudness(cadence, sr=SR), abs=0.5)


# ----------------------------------------------------------------------------- refused input


def test_silence_is_refused():
    with pytest.raises(BadAudio, match="silent"):
        describe(np.zeros(10 * SR, dtype=np.float32), sr=SR)


def test_a_silent_middle_is_refused():
    y = np.concatenate([_drums(120.0, seconds=40.0), np.zeros(70 * SR), _drums(120.0, seconds=40.0)])
    with pytest.raises(BadAudio, match="silent"):
        describe(y.astype(np.float32), sr=SR)


def test_too_short_audio_is_refused():
    with pytest.raises(BadAudio, match="too short"):
        describe(_drums(120.0, seconds=2.0), sr=SR)


def test_stereo_and_low_rates_are_refused():
    with pytest.raises(BadAudio, match="mono"):
        describe(np.stack([_drums(120.0, seconds=6.0)] * 2), sr=SR)
    with pytest.raises(BadAudio, match="sample rate"):
        describe(_drums(120.0, seconds=6.0, sr=4000), sr=4000)
