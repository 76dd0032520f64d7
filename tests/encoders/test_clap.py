"""The CLAP adapter, run on tiny self-built checkpoints (no real one is reachable, here or in CI).

Each checkpoint is a ``transformers.ClapModel`` with tiny audio and text towers and random
weights, saved with ``save_pretrained`` next to a ``ClapFeatureExtractor`` (1 s clips) and a
byte-level BPE tokenizer trained on a few words: the layout of LAION's checkpoints on the Hub.
``ClapEncoder`` loads it from that directory, so its own loading, chunking, feature extraction,
pooling and text path all run. The tests that need torch and transformers skip without them
(``pip install -e '.[clap]'``); the rest run on the default install.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample

from encore.encoders import AUDIO_ENCODERS, AudioEncoder, EncoderUnavailable, describe_audio_encoder, get_audio_encoder
from encore.encoders.clap import ClapEncoder, ClapParams, window_starts
from encore.errors import BadAudio
from tests.utils.audio import synth_track

SR = 48000
#: The tiny checkpoints' projection size (LAION's is 512).
DIM = 12
WORDS = ["calm piano music", "loud rock guitar with drums", "a dog barking", "soft jazz trio at night"]


def build_checkpoint(path: Path, *, fused: bool = False, seed: int = 0) -> Path:
    """Save a tiny CLAP checkpoint directory (model, feature extractor, tokenizer) at ``path``."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(WORDS, vocab_size=300, min_frequency=1, show_progress=False,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = transformers.RobertaTokenizerFast(tokenizer_object=bpe._tokenizer, model_max_length=77)

    audio = dict(spec_size=64, num_mel_bins=16, window_size=4, patch_size=4, patch_stride=[4, 4], depths=[1, 1],
                 num_attention_heads=[1, 2], patch_embeds_hidden_size=8, hidden_size=16, mlp_ratio=2.0, num_classes=4,
                 initializer_factor=10.0,
                 enable_fusion=fused, fusion_type="aff_2d" if fused else None)
    text = dict(vocab_size=bpe.get_vocab_size(), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=32, max_position_embeddings=80)
    # Random weights of the default scale map any audio near one point; ten times larger ones
    # spread different audio apart, so that the tests below can tell tracks from each other.
    torch.manual_seed(seed)
    model = transformers.ClapModel(transformers.ClapConfig(audio_config=audio, text_config=text, projection_dim=DIM))
    features = transformers.ClapFeatureExtractor(
        feature_size=16, sampling_rate=SR, hop_length=480, max_length_s=1, fft_window_size=256,
        truncation="fusion" if fused else "rand_trunc", padding="repeatpad",
    )
    model.save_pretrained(path)
    features.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread; two spin-waiting threads on a busy 2-core machine run 20x slower."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("clap-tiny"))


@pytest.fixture(scope="module")
def encoder(checkpoint: Path) -> ClapEncoder:
    return ClapEncoder(checkpoint, dim=DIM, params=ClapParams(max_chunks=4, batch_size=3))


# --------------------------------------------------------------------------------------------
# Default install: no torch needed


def test_importing_the_encoders_needs_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, encore.encoders, encore.encoders.clap, encore.encoders.openl3\n"
        "loaded = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "sys.exit(f'imported {loaded}' if loaded else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_registry_describes_clap_without_loading(tmp_path: Path) -> None:
    desc = describe_audio_encoder("clap")
    assert AUDIO_ENCODERS["clap"] is desc
    assert (desc.dim, desc.sample_rate, desc.n_tags) == (512, 48000, 0)
    enc = get_audio_encoder("clap", weights=tmp_path / "nowhere")
    assert isinstance(enc, AudioEncoder) and isinstance(enc, ClapEncoder)
    assert enc.description is desc and not enc.loaded


def test_missing_package_names_the_install(monkeypatch, tmp_path: Path) -> None:
    # A None entry in sys.modules makes `import transformers` fail, as if it were not installed
    # (without the extra, torch is missing first).
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(EncoderUnavailable, match=r"needs (transformers|torch); install the extra with: pip install -e '\.\[clap\]'"):
        ClapEncoder(tmp_path).load()


def test_bad_audio_is_refused_before_loading(tmp_path: Path) -> None:
    enc = ClapEncoder(tmp_path / "nowhere")
    with pytest.raises(BadAudio, match="too short"):
        enc.embed(np.zeros(SR // 2, np.float32), sr=SR)
    with pytest.raises(BadAudio, match="mono"):
        enc.embed(np.zeros((SR * 2, 2), np.float32), sr=SR)
    with pytest.raises(BadAudio, match="non-finite"):
        enc.embed(np.full(SR * 2, np.nan, np.float32), sr=SR)
    assert not enc.loaded


def test_window_starts_cover_the_track_evenly() -> None:
    assert window_starts(50, length=100, hop=100, limit=None).tolist() == [0]
    # A whole grid, then one window ending at the last sample.
    assert window_starts(350, length=100, hop=100, limit=None).tolist() == [0, 100, 200, 250]
    assert window_starts(300, length=100, hop=50, limit=None).tolist() == [0, 50, 100, 150, 200]
    # Capped: spread evenly, first and last kept.
    assert window_starts(1000, length=100, hop=100, limit=3).tolist() == [0, 400, 900]


# --------------------------------------------------------------------------------------------
# With torch and transformers, on the tiny checkpoint


def test_embeddings_are_unit_length_and_shaped(encoder: ClapEncoder) -> None:
    y = synth_track(1, seconds=3.5, sr=SR)
    emb = encoder.embed(y, sr=SR)
    assert encoder.loaded
    assert emb.vector.shape == (DIM,) and emb.vector.dtype == np.float32
    assert np.linalg.norm(emb.vector) == pytest.approx(1.0, abs=1e-5)
    # 1 s chunks at 0, 1, 2 and one ending at 3.5 s.
    assert emb.n_patches == 4 and emb.tags is None and emb.top_tags() == []
    assert [len(c) for c in encoder.chunks(y, sr=SR)] == [SR] * 4


def test_embeddings_are_deterministic_and_tell_tracks_apart(encoder: ClapEncoder, checkpoint: Path) -> None:
    a, b = synth_track(1, seconds=3.0, sr=SR), synth_track(2, seconds=3.0, sr=SR)
    first = encoder.embed(a, sr=SR).vector
    np.testing.assert_array_equal(encoder.embed(a, sr=SR).vector, first)
    # Another encoder reading the same directory makes the same vectors.
    again = ClapEncoder(checkpoint, dim=DIM, params=encoder.params).embed(a, sr=SR).vector
    np.testing.assert_allclose(again, first, atol=1e-6)
    assert not np.allclose(encoder.embed(b, sr=SR).vector, first, atol=1e-3)


def test_batch_matches_one_by_one(encoder: ClapEncoder) -> None:
    # Lengths give 2, 4 and 1 chunks, so batches of 3 chunks straddle tracks.
    ys = [synth_track(3, seconds=1.5, sr=SR), synth_track(4, seconds=3.5, sr=SR), synth_track(5, seconds=1.0, sr=SR)]
    batch = encoder.embed_batch(ys, sr=SR)
    assert [e.n_patches for e in batch] == [2, 4, 1]
    for y, emb in zip(ys, batch, strict=True):
        np.testing.assert_allclose(emb.vector, encoder.embed(y, sr=SR).vector, atol=1e-5)
    assert encoder.embed_batch([], sr=SR) == []


def test_other_rates_are_resampled(encoder: ClapEncoder) -> None:
    # Audio with nothing above 8 kHz, so that any good resampler makes the same 48 kHz signal.
    spectrum = np.fft.rfft(synth_track(6, seconds=3.0, sr=22050))
    spectrum[np.fft.rfftfreq(3 * 22050, 1 / 22050) > 8000] = 0
    y22 = np.fft.irfft(spectrum, 3 * 22050).astype(np.float32)
    y48 = resample(y22, 3 * SR).astype(np.float32)  # FFT resampling, not the encoder's polyphase filter
    chunks22, chunks48 = encoder.chunks(y22, sr=22050), encoder.chunks(y48, sr=SR)
    assert len(chunks22) == len(chunks48) == 3
    # Inside the track (the edges see different padding), the same waveform.
    np.testing.assert_allclose(chunks22[1], chunks48[1], atol=1e-5 * np.abs(y48).max())
    direct, resampled = encoder.embed(y48, sr=SR), encoder.embed(y22, sr=22050)
    # Taken for 48 kHz audio, the same samples are another (shorter, lower) sound.
    misread = encoder.embed(y22, sr=SR)
    assert np.linalg.norm(resampled.vector - direct.vector) < 0.02 * np.linalg.norm(misread.vector - direct.vector)


def test_text_embeddings(encoder: ClapEncoder) -> None:
    texts = ["calm piano music", "loud rock guitar with drums", "calm piano music"]
    out = encoder.embed_text(texts)
    assert out.shape == (3, DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)
    assert not np.allclose(out[0], out[1], atol=1e-3)
    # Padding to the longest text in a batch changes nothing.
    np.testing.assert_allclose(encoder.embed_text(texts[:1])[0], out[0], atol=1e-5)
    assert encoder.embed_text([]).shape == (0, DIM)
    with pytest.raises(TypeError, match="sequence of texts"):
        encoder.embed_text("calm piano music")


def test_fused_checkpoints_are_deterministic_too(tmp_path: Path) -> None:
    # Given clips no longer than its clip length, ClapFeatureExtractor marks one of each batch
    # "longer" at random, which changes a fused model's output; the encoder must not.
    enc = ClapEncoder(build_checkpoint(tmp_path, fused=True, seed=1), dim=DIM, params=ClapParams(batch_size=2))
    ys = [synth_track(8, seconds=2.5, sr=SR), synth_track(9, seconds=1.2, sr=SR)]
    batch = enc.embed_batch(ys, sr=SR)
    for y, emb in zip(ys, batch, strict=True):
        np.testing.assert_allclose(enc.embed(y, sr=SR).vector, emb.vector, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(emb.vector), 1.0, atol=1e-5)


def test_unreadable_checkpoints_are_unavailable(checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    y = synth_track(1, seconds=2.0, sr=SR)
    with pytest.raises(EncoderUnavailable, match="not a directory.*hf download laion/clap-htsat-unfused"):
        ClapEncoder(tmp_path / "missing", dim=DIM).embed(y, sr=SR)

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "config.json").write_text("not json")
    (garbage / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(EncoderUnavailable, match="cannot load a CLAP checkpoint"):
        ClapEncoder(garbage, dim=DIM).load()

    no_weights = tmp_path / "no-weights"
    shutil.copytree(checkpoint, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(EncoderUnavailable, match="cannot load a CLAP checkpoint"):
        ClapEncoder(no_weights, dim=DIM).load()

    # The wrong size: LAION's checkpoints embed into 512 dimensions, this one into 12.
    with pytest.raises(EncoderUnavailable, match="embeds into 12 dimensions, not 512"):
        ClapEncoder(checkpoint).load()


def test_incomplete_checkpoint_is_refused_not_filled_with_noise(checkpoint: Path, tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    state = safetensors_torch.load_file(partial / "model.safetensors")
    dropped = [k for k in state if k.startswith("audio_projection.")]
    assert dropped
    safetensors_torch.save_file({k: v for k, v in state.items() if k not in dropped}, partial / "model.safetensors",
                                metadata={"format": "pt"})
    with pytest.raises(EncoderUnavailable, match=r"not a complete CLAP checkpoint: \d+ weights missing \(audio_projection"):
        ClapEncoder(partial, dim=DIM).load()
