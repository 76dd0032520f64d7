"""musicnn in numpy against TensorFlow running musicnn's own graph (``tests/data/musicnn_reference.npz``).

The reference was made once by ``scripts/make_musicnn_reference.py`` (tensorflow-cpu 2.15.1,
librosa 0.10.2); these tests need only numpy and the ``musicnn`` wheel's checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encore.encoders import (
    AUDIO_ENCODERS,
    AudioEncoder,
    EncoderUnavailable,
    describe_audio_encoder,
    get_audio_encoder,
)
from encore.encoders import musicnn as mm
from encore.encoders.musicnn import MSD_TAGS, MusicnnEncoder, MusicnnParams, mel_filterbank, mel_spectrogram
from encore.errors import BadAudio, EncoreError

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "musicnn_reference.npz"
SR = 16000
#: Asked of the numpy port against TensorFlow: tag probabilities and embedding, absolute.
TOL = 1e-4


def reference_signal(seed: int, seconds: float, tones: np.ndarray, *, sr: int = SR) -> np.ndarray:
    """Seeded noise gated on a 1/8 s grid plus steady tones (scripts/make_musicnn_reference.py's recipe)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    step = sr // 8
    gate = np.repeat(rng.random(n // step + 1) < 0.5, step)[:n]
    y = 0.1 * rng.standard_normal(n) * (0.2 + 0.8 * gate)
    for hz, amp in tones:
        y += amp * np.sin(2 * np.pi * hz * t)
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def signals(ref) -> list[np.ndarray]:
    ys = [reference_signal(int(seed), float(sec), tones)
          for seed, sec, tones in zip(ref["signal_seeds"], ref["signal_seconds"], ref["signal_tones"], strict=True)]
    for i, y in enumerate(ys):
        # The recipe must still make the signals TensorFlow saw, or every comparison below is moot.
        np.testing.assert_allclose(y[:64], ref["signal_head"][i], atol=1e-6)
        assert np.sqrt(np.mean(np.square(y, dtype=np.float64))) == pytest.approx(ref["signal_rms"][i], rel=1e-6)
    return ys


@pytest.fixture(scope="module")
def encoder() -> MusicnnEncoder:
    enc = MusicnnEncoder(params=MusicnnParams(max_patches=None))
    enc.load()
    return enc


def song(seconds: float, *, seed: int = 0, sr: int = SR, noise: bool = True) -> np.ndarray:
    """A few chords of harmonic tones over noise hits: enough structure for varied patches."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    if noise:
        y += 0.05 * rng.standard_normal(n) * (np.sin(2 * np.pi * 2 * t) > 0.6)
    for i, root in enumerate(rng.uniform(100, 400, size=max(1, int(seconds // 2)))):
        part = slice(int(i * 2 * sr), int((i + 1) * 2 * sr))
        for h in (1, 2, 3, 5):
            y[part] += 0.08 / h * np.sin(2 * np.pi * root * h * t[part])
    return y.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Description and registry


def test_tags_are_musicnns_50_msd_tags() -> None:
    assert len(MSD_TAGS) == 50 == len(set(MSD_TAGS))
    assert {"rock", "pop", "happy", "sad", "party", "chill", "Mellow", "80s", "90s"} <= set(MSD_TAGS)
    # musicnn/configuration.py imports nothing, so this needs no TensorFlow.
    from musicnn import configuration

    assert MSD_TAGS == tuple(configuration.MSD_LABELS)


def test_registry_describes_without_loading() -> None:
    desc = describe_audio_encoder("musicnn")
    assert AUDIO_ENCODERS["musicnn"] is desc
    assert (desc.dim, desc.sample_rate, desc.n_tags) == (200, 16000, 50)
    assert desc.tag_names == MSD_TAGS and "ISC" in desc.licence and "musicnn" in desc.weights_source
    enc = get_audio_encoder("musicnn", checkpoint="/nonexistent/checkpoint")
    assert isinstance(enc, AudioEncoder) and isinstance(enc, MusicnnEncoder)
    # Nothing was read: the bogus path only fails when the weights are needed.
    assert not enc.loaded
    with pytest.raises(EncoderUnavailable):
        enc.embed(np.zeros(SR * 4, np.float32), sr=SR)


def test_unknown_encoder_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown audio encoder 'no-such-encoder'.*musicnn"):
        get_audio_encoder("no-such-encoder")
    with pytest.raises(ValueError, match="musicnn"):
        describe_audio_encoder("no-such-encoder")


def test_missing_package_or_checkpoint_names_the_install(monkeypatch, tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match=r"pip install --no-deps musicnn==0\.1\.0"):
        MusicnnEncoder(checkpoint=tmp_path).load()
    monkeypatch.setattr(mm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EncoderUnavailable, match=r"pip install --no-deps musicnn"):
        MusicnnEncoder().embed(np.zeros(SR * 4, np.float32), sr=SR)
    assert issubclass(EncoderUnavailable, EncoreError)


# --------------------------------------------------------------------------------------------
# Features


def test_mel_filterbank_shape_and_slaney_area() -> None:
    fb = mel_filterbank(sr=SR, n_fft=512, n_mels=96)
    assert fb.shape == (96, 257) and fb.dtype == np.float32
    # Slaney normalisation: each triangle integrates to about 1 over Hz (bin width 31.25 Hz);
    # sampling a triangle 2-3 bins wide at the bins makes some a few percent off.
    areas = fb[1:].sum(axis=1) * (SR / 512)
    np.testing.assert_allclose(areas, 1.0, rtol=0.1)
    assert np.median(areas) == pytest.approx(1.0, rel=1e-3)
    assert np.all(np.argmax(fb, axis=1)[1:] >= np.argmax(fb, axis=1)[:-1])


def test_mel_spectrogram_matches_librosa(ref, signals) -> None:
    mel = mel_spectrogram(signals[0], sr=SR, n_fft=512, hop_length=256, n_mels=96)
    assert mel.shape == (96, int(ref["mel_n_frames"]))
    # First and last frames are where centring and reflection padding show.
    for ours, theirs in ((mel[:, :24], ref["mel_head"]), (mel[:, -24:], ref["mel_tail"])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * theirs.max())


def test_mel_spectrogram_padding_matters(ref, signals) -> None:
    # librosa >= 0.10 pads with zeros: only the edge frames change, which is what the test above pins.
    constant = mel_spectrogram(signals[0], pad_mode="constant")
    assert not np.allclose(constant[:, 0], ref["mel_head"][:, 0], rtol=1e-3)
    np.testing.assert_allclose(constant[:, 5:24], ref["mel_head"][:, 5:], rtol=1e-4, atol=1e-8)


# --------------------------------------------------------------------------------------------
# The network and the whole pipeline against TensorFlow


def test_network_matches_tensorflow_on_one_patch(encoder, ref) -> None:
    out = encoder.forward(ref["patch"][None])
    np.testing.assert_allclose(out.logits[0], ref["patch_logits"], atol=TOL)
    np.testing.assert_allclose(out.probs[0], ref["patch_probs"], atol=TOL)
    np.testing.assert_allclose(out.penultimate[0], ref["patch_penultimate"], atol=TOL)


@pytest.mark.parametrize("i", [0, 1, 2])
def test_pipeline_matches_tensorflow(encoder, ref, signals, i: int) -> None:
    y = signals[i]
    patches = encoder.patches(y, sr=SR)
    assert patches.shape == (len(ref[f"probs_{i}"]), 187, 96)
    out = encoder.forward(patches)
    np.testing.assert_allclose(out.probs, ref[f"probs_{i}"], atol=TOL)
    np.testing.assert_allclose(out.penultimate, ref[f"penultimate_{i}"], atol=TOL)

    emb = encoder.embed(y, sr=SR)
    assert emb.vector.shape == (200,) and emb.vector.dtype == np.float32
    assert emb.tags is not None and emb.tags.shape == (50,) and emb.tags.dtype == np.float32
    assert emb.tag_names == MSD_TAGS and emb.n_patches == len(patches)
    np.testing.assert_allclose(emb.vector, ref[f"penultimate_{i}"].mean(axis=0), atol=TOL)
    np.testing.assert_allclose(emb.tags, ref[f"probs_{i}"].mean(axis=0), atol=TOL)


def test_first_patch_features_match_reference_input(encoder, ref, signals) -> None:
    diff = np.abs(encoder.patches(signals[0], sr=SR)[0] - ref["patch"])
    # musicnn rounds mel powers to float16 before the log: the same rounding gives the same
    # values, bar the rare power that float32 noise puts on the other side of a float16 step.
    assert np.mean(diff > 1e-6) < 0.01
    assert diff.max() < 1e-3


# --------------------------------------------------------------------------------------------
# Behaviour


def test_batch_equals_one_by_one(signals) -> None:
    enc = MusicnnEncoder(params=MusicnnParams(batch_size=3))
    ys = [*signals, song(20.0, seed=4)]
    together = enc.embed_batch(ys, sr=SR)
    assert len(together) == len(ys) and enc.embed_batch([], sr=SR) == []
    for y, emb in zip(ys, together, strict=True):
        alone = enc.embed(y, sr=SR)
        assert alone.n_patches == emb.n_patches
        np.testing.assert_allclose(emb.vector, alone.vector, atol=1e-5)
        np.testing.assert_allclose(emb.tags, alone.tags, atol=1e-6)


def test_deterministic_finite_and_distinct(encoder, signals) -> None:
    a, b = encoder.embed(signals[1], sr=SR), encoder.embed(signals[1], sr=SR)
    np.testing.assert_array_equal(a.vector, b.vector)
    np.testing.assert_array_equal(a.tags, b.tags)
    assert np.all(np.isfinite(a.vector)) and np.all((a.tags >= 0) & (a.tags <= 1))
    other = encoder.embed(song(8.0, seed=9), sr=SR)
    assert not np.allclose(other.vector, a.vector, atol=1e-2)
    assert [name for name, _ in a.top_tags(3)] == [MSD_TAGS[j] for j in np.argsort(-a.tags)[:3]]


def test_long_tracks_embed_at_most_max_patches_evenly_spread() -> None:
    y = song(60.0, seed=1)  # 20 full patches
    every = MusicnnEncoder(params=MusicnnParams(max_patches=None))
    few = MusicnnEncoder(params=MusicnnParams(max_patches=4))
    all_patches = every.patches(y, sr=SR)
    assert len(all_patches) == 20
    chosen = few.patches(y, sr=SR)
    # First and last patches are always in, the others evenly between.
    np.testing.assert_array_equal(chosen, all_patches[[0, 6, 13, 19]])
    emb = few.embed(y, sr=SR)
    assert emb.n_patches == 4
    assert MusicnnEncoder().embed(y, sr=SR).n_patches == MusicnnParams().max_patches


def test_short_audio_is_repeat_padded_and_very_short_refused() -> None:
    enc = MusicnnEncoder()
    y = song(2.0, seed=3)  # 126 frames, less than one 187-frame patch
    patches = enc.patches(y, sr=SR)
    assert patches.shape == (1, 187, 96)
    n = 1 + y.size // 256
    np.testing.assert_array_equal(patches[0, n:], patches[0, :187 - n])
    emb = enc.embed(y, sr=SR)
    assert emb.n_patches == 1 and np.all(np.isfinite(emb.vector))
    with pytest.raises(BadAudio, match=r"too short .*at least 1 s"):
        enc.embed(y[: SR // 2], sr=SR)


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.zeros((2, SR * 4), np.float32), "mono"),
        (np.full(SR * 4, np.nan, np.float32), "non-finite"),
    ],
)
def test_bad_audio_is_refused(y: np.ndarray, message: str) -> None:
    with pytest.raises(BadAudio, match=message):
        MusicnnEncoder().embed(y, sr=SR)


def test_other_sample_rates_are_resampled() -> None:
    # Tones only: the same music at both rates (seeded noise would differ sample for sample).
    y16 = song(9.0, seed=5, noise=False)
    y44 = song(9.0, seed=5, sr=44100, noise=False)
    enc = MusicnnEncoder()
    a, b = enc.embed(y16, sr=SR), enc.embed(y44, sr=44100)
    assert a.n_patches == b.n_patches == 3
    cos = float(a.vector @ b.vector / np.linalg.norm(a.vector) / np.linalg.norm(b.vector))
    assert cos > 0.99
    np.testing.assert_allclose(a.tags, b.tags, atol=0.05)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="max_patches"):
        MusicnnParams(max_patches=0)
    with pytest.raises(ValueError, match="batch_size"):
        MusicnnParams(batch_size=0)
    with pytest.raises(ValueError, match="pad_mode"):
        MusicnnParams(pad_mode="wrap")  # type: ignore[arg-type]
