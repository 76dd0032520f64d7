"""OpenL3 in torch, run on tiny self-built weights (no real ones are reachable, here or in CI).

The weights have OpenL3's layers with a few filters each (``channels=(2, 4, 4, 8)``) and random
values, written in the documented ``.npz`` layout, or as a Keras ``.h5`` that
``scripts/convert_openl3_weights.py`` converts. The network is checked against a plain
``torch.nn`` build of the same layers, and the front end against what kapre's spectrogram must
show (frame alignment, mel bands, decibel range). The tests that need torch skip without it
(``pip install -e '.[openl3]'``); the rest run on the default install.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.signal import resample

from encore.encoders import AUDIO_ENCODERS, AudioEncoder, EncoderUnavailable, describe_audio_encoder, get_audio_encoder
from encore.encoders import openl3 as ol3
from encore.encoders.musicnn import mel_filterbank
from encore.encoders.openl3 import OpenL3Encoder, OpenL3Params, log_spectrogram
from encore.errors import BadAudio
from tests.utils.audio import synth_track

SR = 48000
TINY = (2, 4, 4, 8)
CONVERTER = Path(__file__).resolve().parents[2] / "scripts" / "convert_openl3_weights.py"


def tiny_weights(seed: int = 0, channels: tuple[int, ...] = TINY) -> dict[str, np.ndarray]:
    """OpenL3's layers in Keras layouts, random, under the encoder's documented names."""
    rng = np.random.default_rng(seed)
    w: dict[str, np.ndarray] = {}

    def bn(name: str, n: int, mean: float = 0.0, var: float = 1.0) -> None:
        w[f"{name}.gamma"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        w[f"{name}.beta"] = rng.normal(0, 0.1, n).astype(np.float32)
        w[f"{name}.moving_mean"] = (mean + rng.normal(0, 0.1, n)).astype(np.float32)
        w[f"{name}.moving_variance"] = (var * rng.uniform(0.5, 1.5, n)).astype(np.float32)

    bn("bn0", 1, mean=-40.0, var=400.0)  # the input is in dB, 0 down to -80
    widths = [1] + [c for c in channels for _ in range(2)]
    for i in range(1, 9):
        fan_in = 9 * widths[i - 1]
        w[f"conv{i}.kernel"] = rng.normal(0, np.sqrt(2 / fan_in), (3, 3, widths[i - 1], widths[i])).astype(np.float32)
        w[f"conv{i}.bias"] = rng.normal(0, 0.1, widths[i]).astype(np.float32)
        if i < 8:
            bn(f"bn{i}", widths[i])
    w["format"] = np.array(ol3.WEIGHTS_FORMAT)
    w["input_repr"] = np.array("mel128")
    w["content_type"] = np.array("music")
    return w


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
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("openl3") / "tiny.npz"
    np.savez(path, **tiny_weights())
    return path


@pytest.fixture(scope="module")
def encoder(weights_file: Path) -> OpenL3Encoder:
    pytest.importorskip("torch")
    return OpenL3Encoder(weights_file, channels=TINY, params=OpenL3Params(max_windows=6, batch_size=4))


def load_converter():
    spec = importlib.util.spec_from_file_location("convert_openl3_weights", CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------------
# Default install: no torch needed


def test_registry_describes_openl3_without_loading(tmp_path: Path) -> None:
    desc = describe_audio_encoder("openl3")
    assert AUDIO_ENCODERS["openl3"] is desc
    assert (desc.dim, desc.sample_rate, desc.n_tags) == (512, 48000, 0) and "MIT" in desc.licence
    enc = get_audio_encoder("openl3", weights=tmp_path / "nowhere.npz")
    assert isinstance(enc, AudioEncoder) and isinstance(enc, OpenL3Encoder)
    assert enc.description is desc and not enc.loaded
    # Other models are other vector spaces, with their own names and sizes.
    big = OpenL3Encoder(tmp_path / "x.npz", input_repr="mel256", content_type="env", embedding_size=6144)
    assert (big.description.name, big.description.dim) == ("openl3-mel256-env-6144", 6144)
    assert OpenL3Encoder(tmp_path / "x.npz", channels=TINY, embedding_size=6144).description.dim == 8 * 12
    with pytest.raises(ValueError, match="input_repr"):
        OpenL3Encoder(tmp_path / "x.npz", input_repr="mel64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embedding_size"):
        OpenL3Encoder(tmp_path / "x.npz", embedding_size=1024)


def test_missing_torch_names_the_install(monkeypatch, weights_file: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(EncoderUnavailable, match=r"needs torch; install the extra with: pip install -e '\.\[openl3\]'"):
        OpenL3Encoder(weights_file, channels=TINY).load()


def test_bad_audio_is_refused_before_loading(tmp_path: Path) -> None:
    enc = OpenL3Encoder(tmp_path / "nowhere.npz")
    with pytest.raises(BadAudio, match="too short"):
        enc.embed(np.zeros(SR // 2, np.float32), sr=SR)
    with pytest.raises(BadAudio, match="mono"):
        enc.embed(np.zeros((SR * 2, 2), np.float32), sr=SR)
    assert not enc.loaded


@pytest.mark.parametrize(("input_repr", "shape"), [("mel128", (128, 199)), ("mel256", (256, 199)), ("linear", (257, 197))])
def test_spectrogram_shapes_and_decibel_range(input_repr: str, shape: tuple[int, int]) -> None:
    y = synth_track(1, seconds=1.0, sr=SR)
    y[: SR // 2] = 0.0  # half a second of silence
    spec = log_spectrogram(np.stack([y, 1e-2 * y]), input_repr=input_repr)
    assert spec.shape == (2, *shape) and spec.dtype == np.float32
    # Each window's own maximum is 0 dB, nothing is below -80 dB, and silence in a loud window
    # sits on that floor.
    np.testing.assert_allclose(spec.max(axis=(1, 2)), 0.0, atol=1e-5)
    assert spec.min() >= -80.0
    np.testing.assert_array_equal(spec[0, :, :10], -80.0)
    # Loudness does not matter, down to the floor (which the quieter window reaches later).
    audible = spec[0] > -55.0
    np.testing.assert_allclose(spec[1][audible], spec[0][audible], atol=0.02)  # float32 FFT rounding


def test_spectrogram_frames_start_at_the_window_and_mel_bands_follow_pitch() -> None:
    # A click: frame i spans samples [242 i, 242 i + 2048) with no centring, so the Hann window
    # weighs a click at 242 * 100 + 1024 most in frame 100.
    y = np.zeros((1, SR), np.float32)
    y[0, 242 * 100 + 1024] = 1.0
    spec = log_spectrogram(y)
    assert int(np.argmax(spec[0].sum(axis=0))) == 100
    # A 1 kHz tone is loudest in the mel band whose filter weighs 1 kHz most.
    t = np.arange(SR) / SR
    spec = log_spectrogram(np.sin(2 * np.pi * 1000 * t)[None].astype(np.float32))
    band = int(np.argmax(mel_filterbank(sr=SR, n_fft=2048, n_mels=128)[:, round(1000 * 2048 / SR)]))
    assert int(np.argmax(spec[0, :, 50:150].mean(axis=1))) == band
    # Silence is flat: 0 dB everywhere after the per-window maximum is removed.
    np.testing.assert_array_equal(log_spectrogram(np.zeros((1, SR), np.float32)), 0.0)


def test_converter_writes_the_format_the_encoder_checks() -> None:
    assert load_converter().WEIGHTS_FORMAT == ol3.WEIGHTS_FORMAT


# --------------------------------------------------------------------------------------------
# With torch, on tiny weights


def reference_network(w: dict[str, np.ndarray]):
    """The same layers as plain torch.nn modules, batch norms kept apart (Keras's epsilon, 1e-3)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    def bn(name: str) -> nn.BatchNorm2d:
        layer = nn.BatchNorm2d(len(w[f"{name}.gamma"]), eps=1e-3)
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            getattr(layer, ours).data = torch.from_numpy(w[f"{name}.{theirs}"].copy())
        return layer

    layers: list[nn.Module] = [bn("bn0")]
    for i in range(1, 9):
        kernel = w[f"conv{i}.kernel"]
        conv = nn.Conv2d(kernel.shape[2], kernel.shape[3], 3, padding=1)
        conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(w[f"conv{i}.bias"].copy())
        layers.append(conv)
        if i < 8:
            layers += [bn(f"bn{i}"), nn.ReLU()]
        if i in (2, 4, 6):
            layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers).eval()


def test_network_matches_a_plain_torch_build(encoder: OpenL3Encoder) -> None:
    import torch

    windows = encoder.windows(synth_track(3, seconds=2.0, sr=SR), sr=SR)
    spec = log_spectrogram(windows)
    with torch.inference_mode():
        grid = reference_network(tiny_weights())(torch.from_numpy(spec[:, None])).numpy()  # [n, 8, 16, 24]
    assert grid.shape[1:] == (8, 16, 24)
    # 512-style output: a max over the whole 16 x 24 grid.
    np.testing.assert_allclose(encoder.forward(spec), grid.max(axis=(2, 3)), rtol=1e-4, atol=1e-4)
    # 6144-style output: 4 x 3 cells of 4 x 8, flattened (height, width, channel) as Keras does.
    big = OpenL3Encoder(encoder._weights, channels=TINY, embedding_size=6144)
    cells = grid.reshape(len(grid), 8, 4, 4, 3, 8).max(axis=(3, 5)).transpose(0, 2, 3, 1).reshape(len(grid), -1)
    np.testing.assert_allclose(big.forward(spec), cells, rtol=1e-4, atol=1e-4)


def test_last_convolution_has_no_relu(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    # With a very negative last bias every output is negative: a ReLU there would make them 0.
    w = tiny_weights()
    w["conv8.bias"] = w["conv8.bias"] - 100.0
    np.savez(tmp_path / "negative.npz", **w)
    spec = log_spectrogram(np.stack([synth_track(3, seconds=1.0, sr=SR)]))
    out = OpenL3Encoder(tmp_path / "negative.npz", channels=TINY).forward(spec)
    with torch.inference_mode():
        expected = reference_network(w)(torch.from_numpy(spec[:, None])).numpy().max(axis=(2, 3))
    assert (out < 0).all()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_embeddings_are_unit_length_and_shaped(encoder: OpenL3Encoder) -> None:
    y = synth_track(1, seconds=3.2, sr=SR)
    emb = encoder.embed(y, sr=SR)
    assert encoder.loaded
    assert emb.vector.shape == (TINY[-1],) and emb.vector.dtype == np.float32
    assert np.linalg.norm(emb.vector) == pytest.approx(1.0, abs=1e-5)
    assert emb.tags is None and emb.top_tags() == []
    # Windows at 0, 0.5 ... 2.0 s and one ending at 3.2 s: 6, the cap.
    assert emb.n_patches == 6 and encoder.windows(y, sr=SR).shape == (6, SR)
    assert encoder.embed(synth_track(1, seconds=30.0, sr=SR), sr=SR).n_patches == 6


def test_embeddings_are_deterministic_and_tell_tracks_apart(encoder: OpenL3Encoder, weights_file: Path) -> None:
    a, b = synth_track(4, seconds=3.0, sr=SR), synth_track(5, seconds=3.0, sr=SR)
    first = encoder.embed(a, sr=SR).vector
    np.testing.assert_array_equal(encoder.embed(a, sr=SR).vector, first)
    again = OpenL3Encoder(weights_file, channels=TINY, params=encoder.params).embed(a, sr=SR).vector
    np.testing.assert_array_equal(again, first)
    assert np.linalg.norm(encoder.embed(b, sr=SR).vector - first) > 0.05


def test_batch_matches_one_by_one(encoder: OpenL3Encoder) -> None:
    # 3, 6 and 1 windows, so batches of 4 straddle tracks.
    ys = [synth_track(6, seconds=2.0, sr=SR), synth_track(7, seconds=4.0, sr=SR), synth_track(8, seconds=1.0, sr=SR)]
    batch = encoder.embed_batch(ys, sr=SR)
    assert [e.n_patches for e in batch] == [3, 6, 1]
    for y, emb in zip(ys, batch, strict=True):
        np.testing.assert_allclose(emb.vector, encoder.embed(y, sr=SR).vector, atol=1e-5)
    assert encoder.embed_batch([], sr=SR) == []


def test_other_rates_are_resampled(encoder: OpenL3Encoder) -> None:
    # Audio with nothing above 8 kHz, so that any good resampler makes the same 48 kHz signal.
    spectrum = np.fft.rfft(synth_track(9, seconds=3.0, sr=22050))
    spectrum[np.fft.rfftfreq(3 * 22050, 1 / 22050) > 8000] = 0
    y22 = np.fft.irfft(spectrum, 3 * 22050).astype(np.float32)
    y48 = resample(y22, 3 * SR).astype(np.float32)  # FFT resampling, not the encoder's polyphase filter
    # The windows hold the same sound: inside the track, mel bands below 8 kHz within 1 dB.
    filters = mel_filterbank(sr=SR, n_fft=2048, n_mels=128)
    low = filters[:, np.fft.rfftfreq(2048, 1 / SR) > 8000].sum(axis=1) == 0
    np.testing.assert_allclose(log_spectrogram(encoder.windows(y22, sr=22050)[2:4])[:, low],
                               log_spectrogram(encoder.windows(y48, sr=SR)[2:4])[:, low], atol=1.0)
    direct, resampled = encoder.embed(y48, sr=SR), encoder.embed(y22, sr=22050)
    assert resampled.n_patches == direct.n_patches == 5
    # Taken for 48 kHz audio, the same samples are another (shorter, lower) sound.
    misread = encoder.embed(y22, sr=SR)
    assert np.linalg.norm(resampled.vector - direct.vector) < 0.1 * np.linalg.norm(misread.vector - direct.vector)


def test_torch_state_dict_files_load_too(encoder: OpenL3Encoder, tmp_path: Path) -> None:
    import torch

    state = {k: torch.from_numpy(v) for k, v in tiny_weights().items() if v.dtype == np.float32}
    state.update(format=ol3.WEIGHTS_FORMAT, input_repr="mel128", content_type="music")
    torch.save(state, tmp_path / "tiny.pt")
    y = synth_track(11, seconds=2.0, sr=SR)
    from_pt = OpenL3Encoder(tmp_path / "tiny.pt", channels=TINY, params=encoder.params).embed(y, sr=SR)
    np.testing.assert_array_equal(from_pt.vector, encoder.embed(y, sr=SR).vector)


def write_keras_h5(path: Path, w: dict[str, np.ndarray], *, drop: str | None = None) -> Path:
    """``w`` laid out as Keras 2's ``save_weights`` writes openl3's audio model, extra layers included."""
    layers: list[tuple[str, list[tuple[str, np.ndarray]]]] = [
        ("input_1", []),
        # A kapre 0.1 spectrogram layer, as pre-0.4 openl3 files had: not a conv or batch norm.
        ("melspectrogram_1", [("real_kernels:0", np.zeros((4, 4), np.float32))]),
    ]
    keras_bn = ("gamma", "beta", "moving_mean", "moving_variance")
    layers.append(("batch_normalization_1", [(f"{k}:0", w[f"bn0.{k}"]) for k in keras_bn]))
    for i in range(1, 9):
        name = "audio_embedding_layer" if i == 8 else f"conv2d_{i}"
        layers.append((name, [("kernel:0", w[f"conv{i}.kernel"]), ("bias:0", w[f"conv{i}.bias"])]))
        if i < 8:
            layers.append((f"batch_normalization_{i + 1}", [(f"{k}:0", w[f"bn{i}.{k}"]) for k in keras_bn]))
            layers.append((f"activation_{i}", []))
        if i in (2, 4, 6):
            layers.append((f"max_pooling2d_{i // 2}", []))
    layers = [layer for layer in layers if layer[0] != drop]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name, _ in layers]
        for name, weights in layers:
            group = f.create_group(name)
            group.attrs["weight_names"] = [f"{name}/{wname}".encode() for wname, _ in weights]
            for wname, value in weights:
                group.create_dataset(f"{name}/{wname}", data=value)
    return path


def test_converted_keras_weights_embed_as_the_originals(encoder: OpenL3Encoder, tmp_path: Path, capsys) -> None:
    converter = load_converter()
    h5 = write_keras_h5(tmp_path / "openl3_audio_mel128_music.h5", tiny_weights())
    assert converter.main([str(h5), "-o", str(tmp_path / "converted.npz")]) == 0
    assert "skipped melspectrogram_1" in capsys.readouterr().err
    converted = OpenL3Encoder(tmp_path / "converted.npz", channels=TINY, params=encoder.params)
    y = synth_track(12, seconds=2.5, sr=SR)
    np.testing.assert_array_equal(converted.embed(y, sr=SR).vector, encoder.embed(y, sr=SR).vector)
    # The model is read from the file name, and a wrong one is refused when loading.
    with pytest.raises(EncoderUnavailable, match="input_repr 'mel128', not 'mel256'"):
        OpenL3Encoder(tmp_path / "converted.npz", channels=TINY, input_repr="mel256").load()
    # A file missing a layer is not OpenL3's network.
    broken = write_keras_h5(tmp_path / "openl3_audio_mel128_env.h5", tiny_weights(), drop="batch_normalization_4")
    with pytest.raises(ValueError, match="not OpenL3's audio network"):
        converter.main([str(broken), "-o", str(tmp_path / "broken.npz")])


def test_unreadable_weights_are_unavailable(weights_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    y = synth_track(1, seconds=2.0, sr=SR)
    with pytest.raises(EncoderUnavailable, match="not found; convert openl3's openl3_audio_mel128_music.h5"):
        OpenL3Encoder(tmp_path / "missing.npz", channels=TINY).embed(y, sr=SR)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(EncoderUnavailable, match="cannot load OpenL3 weights"):
        OpenL3Encoder(garbage, channels=TINY).load()
    # Real-size channels, tiny weights: the widths are checked, not broadcast.
    with pytest.raises(EncoderUnavailable, match=r"conv1.kernel has shape \(3, 3, 1, 2\), expected \(3, 3, 1, 64\)"):
        OpenL3Encoder(weights_file).load()
    unmarked = tmp_path / "unmarked.npz"
    np.savez(unmarked, **{k: v for k, v in tiny_weights().items() if k != "format"})
    with pytest.raises(EncoderUnavailable, match="format None"):
        OpenL3Encoder(unmarked, channels=TINY).load()
    with pytest.raises(EncoderUnavailable, match="expected a .npz or .pt file"):
        OpenL3Encoder(CONVERTER, channels=TINY).load()
