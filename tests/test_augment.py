"""Degradations measure what they claim: SNR, alignment, band limits, speed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from encore import augment
from tests.utils.audio import synth_track, tone

SR = 22050


def _lag(reference: np.ndarray, y: np.ndarray) -> int:
    """Samples by which ``y`` lags ``reference`` (peak of their cross-correlation)."""
    c = signal.correlate(y.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    return int(np.argmax(c)) - (reference.size - 1)


def _band_db(y: np.ndarray, sr: int, band: tuple[float, float], ref: tuple[float, float]) -> float:
    """Energy of ``y`` in ``band`` relative to its energy in ``ref``, in dB (Welch PSD)."""
    f, p = signal.welch(y.astype(np.float64), sr, nperseg=4096)
    inside = p[(f >= band[0]) & (f <= band[1])].sum()
    return float(10 * np.log10(inside / p[(f >= ref[0]) & (f <= ref[1])].sum()))


def _peak_hz(y: np.ndarray, sr: int) -> float:
    """Frequency of the highest spectral peak, to a fraction of a Hz (zero-padded, windowed FFT)."""
    n = 16 * y.size
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size), n))
    return float(np.fft.rfftfreq(n, 1 / sr)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return synth_track(11, seconds=8, sr=SR)


@pytest.mark.parametrize("snr", [10.0, 5.0, 0.0, -3.0])
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_noise_hits_the_snr(music: np.ndarray, kind: str, snr: float) -> None:
    add = augment.white_noise if kind == "white" else augment.pink_noise
    quiet = 0.05 * music  # the SNR is relative to the clip's own power, whatever its level
    for y in (music, quiet):
        noisy = add(y, snr_db=snr, rng=np.random.default_rng(1))
        assert noisy.dtype == np.float32 and noisy.shape == y.shape
        noise = noisy.astype(np.float64) - y
        measured = 10 * np.log10(np.mean(np.square(y, dtype=np.float64)) / np.mean(noise**2))
        assert abs(measured - snr) <= 0.2, (kind, snr, measured)
        assert augment.snr_db(y, noisy) == pytest.approx(measured)


def test_noise_is_reproducible_from_the_rng(music: np.ndarray) -> None:
    a = augment.white_noise(music, snr_db=5, rng=np.random.default_rng(3))
    b = augment.white_noise(music, snr_db=5, rng=np.random.default_rng(3))
    c = augment.white_noise(music, snr_db=5, rng=np.random.default_rng(4))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_white_noise_is_flat_and_pink_noise_falls_3db_per_octave() -> None:
    rng = np.random.default_rng(0)
    silent_but_one = np.zeros(SR * 20, dtype=np.float32)
    silent_but_one[0] = 1.0  # a unit impulse: the added noise dominates everywhere else
    for kind, slope in (("white", 0.0), ("pink", -10.0)):
        add = augment.white_noise if kind == "white" else augment.pink_noise
        noise = add(silent_but_one, snr_db=0, rng=rng).astype(np.float64)
        noise[0] -= 1.0
        f, p = signal.welch(noise, SR, nperseg=8192)
        keep = (f >= 50) & (f <= 8000)
        fitted = np.polyfit(np.log10(f[keep]), 10 * np.log10(p[keep]), 1)[0]  # dB per decade
        assert fitted == pytest.approx(slope, abs=1.0), (kind, fitted)


def test_silence_stays_silent() -> None:
    y = np.zeros(1000, dtype=np.float32)
    assert np.array_equal(augment.white_noise(y, snr_db=5, rng=np.random.default_rng(0)), y)


def test_lag_helper_sees_a_shift(music: np.ndarray) -> None:
    # the alignment check below would notice an uncompensated codec delay
    shifted = np.concatenate([np.zeros(augment.LAME_DELAY, np.float32), music])[: music.size]
    assert _lag(music, shifted) == augment.LAME_DELAY
    assert _lag(music, music) == 0


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_mp3_round_trip_is_aligned_and_same_length(music: np.ndarray, sr: int) -> None:
    y = signal.resample_poly(music, sr, SR).astype(np.float32) if sr != SR else music
    out = augment.mp3(y, sr=sr, kbps=64)
    assert out.dtype == np.float32 and out.shape == y.shape
    assert abs(_lag(y, out)) <= 0.002 * sr
    assert augment.snr_db(y, out) > 8.0  # still the same music, coded
    assert not np.array_equal(out, y)


def test_mp3_is_band_limited() -> None:
    sr = 44100
    y = (0.1 * np.random.default_rng(0).standard_normal(sr * 4)).astype(np.float32)
    assert _band_db(y, sr, (17000, 22050), (100, 10000)) > -5  # white noise fills the band...
    out = augment.mp3(y, sr=sr, kbps=64)
    assert _band_db(out, sr, (17000, 22050), (100, 10000)) < -40  # ...the 64 kbps encoder cuts it
    assert _band_db(out, sr, (1000, 8000), (100, 10000)) > -3


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100])
def test_telephone_keeps_only_the_phone_band(sr: int) -> None:
    y = (0.1 * np.random.default_rng(0).standard_normal(sr * 10)).astype(np.float32)
    out = augment.telephone(y, sr=sr)
    assert out.dtype == np.float32 and out.shape == y.shape
    nyquist = sr / 2
    assert _band_db(out, sr, (3600, nyquist), (300, 3400)) < -30
    assert _band_db(out, sr, (0, 200), (300, 3400)) < -30
    # the pass band itself goes through at about unit gain
    f, p_in = signal.welch(y, sr, nperseg=4096)
    _, p_out = signal.welch(out, sr, nperseg=4096)
    mid = (f >= 500) & (f <= 3000)
    assert 10 * np.log10(p_out[mid].sum() / p_in[mid].sum()) == pytest.approx(0.0, abs=1.0)
    assert abs(_lag(y, out)) <= 1


@pytest.mark.parametrize("factor", [1.02, 0.98, 1.05])
def test_speed_changes_duration_and_pitch_together(factor: float) -> None:
    y = tone(1000.0, seconds=5, sr=SR)
    out = augment.speed(y, sr=SR, factor=factor)
    assert out.dtype == np.float32
    assert out.size / SR == pytest.approx(y.size / SR / factor, abs=1 / SR)
    assert _peak_hz(out[100:-100], SR) == pytest.approx(1000.0 * factor, abs=1.0)


def test_speed_one_is_identity(music: np.ndarray) -> None:
    assert np.array_equal(augment.speed(music, sr=SR, factor=1.0), music)


def test_excerpt_is_a_random_slice(music: np.ndarray) -> None:
    offsets = set()
    for seed in range(5):
        clip, offset = augment.excerpt(music, sr=SR, seconds=3, rng=np.random.default_rng(seed))
        start = int(round(offset * SR))
        assert clip.shape == (3 * SR,)
        assert 0 <= offset <= music.size / SR - 3
        assert np.array_equal(clip, music[start:start + clip.size])
        offsets.add(start)
    assert len(offsets) == 5
    again, offset = augment.excerpt(music, sr=SR, seconds=3, rng=np.random.default_rng(0))
    assert np.array_equal(again, augment.excerpt(music, sr=SR, seconds=3, rng=np.random.default_rng(0))[0])
    with pytest.raises(ValueError):
        augment.excerpt(music, sr=SR, seconds=60, rng=np.random.default_rng(0))


def test_registry_names_and_shapes(music: np.ndarray) -> None:
    expected = {"clean", "white_10", "white_5", "white_0", "pink_5", "mp3_64", "telephone", "speed_+2", "speed_-2"}
    assert expected <= set(augment.DEGRADATIONS)
    sr = 8000
    y = signal.resample_poly(music, sr, SR).astype(np.float32)
    for name, degrade in augment.DEGRADATIONS.items():
        out = degrade(y.copy(), sr=sr, rng=np.random.default_rng(0))
        assert out.dtype == np.float32 and out.ndim == 1 and np.all(np.isfinite(out)), name
        factor = {"speed_+2": 1.02, "speed_-2": 0.98}.get(name, 1.0)
        assert out.size == round(y.size / factor), name
        if name == "clean":
            assert np.array_equal(out, y)
        else:
            assert not np.array_equal(out, y), name
    assert augment.snr_db(y, augment.DEGRADATIONS["white_10"](y, sr=sr, rng=np.random.default_rng(0))) == \
        pytest.approx(10.0, abs=0.2)


def test_inputs_are_not_modified(music: np.ndarray) -> None:
    before = music.copy()
    for degrade in augment.DEGRADATIONS.values():
        degrade(music, sr=SR, rng=np.random.default_rng(0))
    assert np.array_equal(music, before)


# --- the synthetic music the tests use (tests/utils/audio.py) ---------------------------------


def test_synth_track_is_deterministic_and_seed_dependent() -> None:
    a = synth_track(5, seconds=6, sr=SR)
    assert a.dtype == np.float32 and a.shape == (6 * SR,)
    assert np.array_equal(a, synth_track(5, seconds=6, sr=SR))
    assert np.abs(a).max() == pytest.approx(0.9, abs=1e-6)

    def spectrogram(y: np.ndarray) -> np.ndarray:
        _, _, s = signal.stft(y, SR, nperseg=1024)
        return np.log1p(np.abs(s)).ravel()

    for other in (6, 7, 500):
        b = synth_track(other, seconds=6, sr=SR)
        assert np.corrcoef(spectrogram(a), spectrogram(b))[0, 1] < 0.6, other


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "opus", "m4a"])
def test_write_audio_round_trips_through_ffmpeg(tmp_path, fmt: str) -> None:
    from indexers.decode import load_audio
    from tests.utils.audio import write_audio

    y = synth_track(9, seconds=4, sr=SR)
    path = write_audio(tmp_path / f"clip.{fmt}", y, sr=SR, fmt=fmt)
    back, info = load_audio(path, sr=SR)
    assert info.channels == 1
    assert back.size / SR == pytest.approx(4.0, abs=0.1)
    n = min(back.size, y.size)
    if fmt in ("wav", "flac"):  # lossless: 16-bit quantisation only
        assert np.max(np.abs(back[:n] - y[:n])) < 1e-3
