"""OpenL3's audio network (Cramer, Wu, Salamon & Bello, 2019) in torch, from converted weights.

An optional extra (it needs torch)::

    pip install -e '.[openl3]'

Weights
-------
The openl3 package (MIT licence) ships its audio models as Keras ``.h5`` weight files,
``openl3_audio_<input_repr>_<content_type>.h5`` (v0.4.0 weights: its ``models`` branch on
GitHub holds them gzipped; ``pip install openl3`` unpacks them next to its code).
``scripts/convert_openl3_weights.py`` turns one into the ``.npz`` this module reads, with h5py
only (no TensorFlow)::

    python scripts/convert_openl3_weights.py openl3_audio_mel128_music.h5 -o openl3_mel128_music.npz

The ``.npz`` (or a ``.pt`` holding the same dict of tensors) has Keras's layouts under fixed
names: ``bn0.*`` for the input batch norm, ``conv1.kernel`` [3, 3, in, out] and ``conv1.bias``
through ``conv8.*``, ``bn1.*`` to ``bn7.*`` (``gamma``, ``beta``, ``moving_mean``,
``moving_variance``) after convolutions 1 to 7, and ``format``, ``input_repr`` and
``content_type`` strings.

Pipeline, as the openl3 package (0.4, kapre front end) does it
--------------------------------------------------------------
1. mono audio at 48 kHz (resampled with a Kaiser-windowed sinc about as clean as the resampy
   ``kaiser_best`` filter openl3 uses);
2. 1 s windows every :attr:`OpenL3Params.hop_seconds` (0.5 s), one more ending at the end of
   the track, at most :attr:`OpenL3Params.max_windows` spread evenly; audio shorter than a
   window is zero-padded to it, as openl3 does. Unlike openl3, windows are not centred
   (openl3 pads half a window of silence before the first);
3. per window, kapre's spectrogram: Hann-windowed STFT frames from the window's first sample
   (no centring), ``mel128``/``mel256``: n_fft 2048, hop 242, zero-padded at the end to 199
   frames, magnitudes through 128/256 slaney mel filters; ``linear``: n_fft 512, hop 242,
   197 frames, 257 magnitude bins. Then kapre 0.1.4's decibels, which openl3 keeps:
   ``10 log10(max(x, 1e-10))`` minus the window's maximum, floored at -80;
4. the network: batch norm; four blocks of two 3x3 convolutions (64, 128, 256, 512 filters)
   each followed by batch norm and ReLU, max-pooled 2x2 after blocks 1-3; the last
   convolution has neither batch norm nor ReLU; a final max-pool to 1 x 1 x 512 (512-d) or
   4 x 3 x 512 (6144-d, flattened in Keras's height, width, channel order);
5. per track, the mean over windows, scaled to unit length.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from encore.encoders.base import AudioEmbedding, EncoderDescription, EncoderUnavailable
from encore.encoders.clap import resample, window_starts
from encore.encoders.musicnn import mel_filterbank
from encore.errors import BadAudio

if TYPE_CHECKING:
    import torch

__all__ = [
    "OPENL3_MEL128_MUSIC",
    "WEIGHTS_FORMAT",
    "ContentType",
    "InputRepr",
    "OpenL3Encoder",
    "OpenL3Params",
    "log_spectrogram",
]

SR = 48000
#: One analysis window: 1 s at 48 kHz.
WINDOW = SR
#: STFT hop of every OpenL3 front end, in samples.
HOP_LENGTH = 242
#: Written by scripts/convert_openl3_weights.py; bumped if the layout of the file changes.
WEIGHTS_FORMAT = "encore.openl3/1"
#: OpenL3's filter counts per block, the real model's ``channels``.
CHANNELS = (64, 128, 256, 512)
#: Keras's BatchNormalization default, which OpenL3 kept.
_BN_EPS = 1e-3

InputRepr = Literal["mel128", "mel256", "linear"]
ContentType = Literal["music", "env"]
EmbeddingSize = Literal[512, 6144]


@dataclass(frozen=True, slots=True)
class _Frontend:
    n_fft: int
    n_mels: int | None  # None: linear magnitudes
    pad_end: bool
    pools: dict[int, tuple[int, int]]  # embedding size -> final max-pool (openl3's AUDIO_POOLING_SIZES)

    @property
    def n_frames(self) -> int:
        if self.pad_end:
            return ceil(WINDOW / HOP_LENGTH)
        return 1 + (WINDOW - self.n_fft) // HOP_LENGTH

    @property
    def n_bins(self) -> int:
        return self.n_mels if self.n_mels is not None else self.n_fft // 2 + 1


_FRONTENDS: dict[str, _Frontend] = {
    "mel128": _Frontend(n_fft=2048, n_mels=128, pad_end=True, pools={6144: (4, 8), 512: (16, 24)}),
    "mel256": _Frontend(n_fft=2048, n_mels=256, pad_end=True, pools={6144: (8, 8), 512: (32, 24)}),
    "linear": _Frontend(n_fft=512, n_mels=None, pad_end=False, pools={6144: (8, 8), 512: (32, 24)}),
}

OPENL3_MEL128_MUSIC = EncoderDescription(
    name="openl3",
    dim=512,
    sample_rate=SR,
    licence="MIT (openl3 package, code and weights)",
    weights_source=(
        "openl3's Keras weights openl3_audio_mel128_music.h5 (v0.4.0), converted to .npz by "
        "scripts/convert_openl3_weights.py"
    ),
    description=(
        "OpenL3 (Look, Listen and Learn) audio embedding, mel128 input, trained on music videos: "
        "mean over 1 s windows (hop 0.5 s) of the 512-d max-pooled last convolution, unit length."
    ),
)


@dataclass(frozen=True, slots=True)
class OpenL3Params:
    """How much of a track :class:`OpenL3Encoder` looks at, and how it batches the work."""

    max_windows: int | None = 16
    """Most 1 s windows embedded per track, spread evenly; ``None`` embeds them all. Each costs
    about 0.4-0.6 s of CPU with the real model's widths (5 GMAC; measured with random weights
    on two busy cores: 16 windows, 6.5-9 s)."""
    hop_seconds: float = 0.5
    """Step between windows (openl3's ``hop_size``; its default is 0.1 s)."""
    batch_size: int = 16
    """Windows per forward pass; bounds peak memory (about 20 MB per window for the real model)."""
    min_seconds: float = 1.0
    """Shorter audio is refused (:class:`~encore.errors.BadAudio`)."""

    def __post_init__(self) -> None:
        if self.max_windows is not None and self.max_windows < 1:
            raise ValueError(f"max_windows must be at least 1 or None, not {self.max_windows}")
        if self.hop_seconds <= 0:
            raise ValueError(f"hop_seconds must be positive, not {self.hop_seconds}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")


# --------------------------------------------------------------------------------------------
# Features


def log_spectrogram(windows: np.ndarray, *, input_repr: InputRepr = "mel128", filters: np.ndarray | None = None) -> np.ndarray:
    """OpenL3's input: kapre's spectrogram of 1 s windows, in kapre 0.1.4's decibels.

    Parameters
    ----------
    windows : np.ndarray [shape=(n, 48000)]
        Audio at 48 kHz.
    input_repr : "mel128", "mel256" or "linear"
    filters : np.ndarray [shape=(n_mels, 1 + n_fft // 2)], optional
        The mel filterbank (slaney scale and normalisation, 0 to 24 kHz), to skip rebuilding
        it per call; ignored for ``"linear"``.

    Returns
    -------
    np.ndarray [shape=(n, n_bins, n_frames), dtype=float32]
        ``(128, 199)``, ``(256, 199)`` or ``(257, 197)`` per window; each window's maximum is
        0 dB and nothing is below -80 dB.
    """
    front = _FRONTENDS[input_repr]
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 2 or windows.shape[1] != WINDOW:
        raise ValueError(f"expected windows of shape (n, {WINDOW}), got {windows.shape}")
    n_frames = front.n_frames
    # tf.signal.stft with pad_end: zeros after the window until the last frame is whole.
    padded_len = (n_frames - 1) * HOP_LENGTH + front.n_fft
    padded = np.pad(windows, ((0, 0), (0, max(0, padded_len - WINDOW))))
    idx = (np.arange(n_frames) * HOP_LENGTH)[:, None] + np.arange(front.n_fft)[None, :]
    # Periodic Hann, tf.signal.hann_window's default.
    hann = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(front.n_fft) / front.n_fft)).astype(np.float32)
    magnitude = np.abs(np.fft.rfft(padded[:, idx] * hann, axis=-1)).astype(np.float32)  # [n, frames, bins]
    if front.n_mels is not None:
        if filters is None:
            filters = mel_filterbank(sr=SR, n_fft=front.n_fft, n_mels=front.n_mels)
        magnitude = magnitude @ filters.T
    db = 10.0 * np.log10(np.maximum(magnitude, np.float32(1e-10)))
    db -= db.max(axis=(1, 2), keepdims=True)
    return np.maximum(db, np.float32(-80.0)).transpose(0, 2, 1).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Network


@dataclass(frozen=True, slots=True, eq=False)
class _Net:
    in_scale: float
    in_shift: float
    convs: tuple[tuple[Any, Any], ...]  # 8 x (weight [out, in, 3, 3], bias [out]) torch tensors, batch norm folded in
    torch: Any  # the torch module, imported on load rather than with this module
    filters: np.ndarray | None


def _bn(w: Mapping[str, np.ndarray], name: str) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta = w[f"{name}.gamma"], w[f"{name}.beta"]
    mean, var = w[f"{name}.moving_mean"], w[f"{name}.moving_variance"]
    scale = gamma / np.sqrt(var + _BN_EPS)
    return scale, beta - mean * scale


def _build(w: Mapping[str, np.ndarray], channels: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Convolutions in torch's layout with the batch norm after each folded in; checks the widths."""
    widths = [1] + [c for c in channels for _ in range(2)]
    convs = []
    for i in range(1, 9):
        kernel, bias = w[f"conv{i}.kernel"], w[f"conv{i}.bias"]
        expected = (3, 3, widths[i - 1], widths[i])
        if kernel.shape != expected or bias.shape != (widths[i],):
            raise ValueError(f"conv{i}.kernel has shape {kernel.shape}, expected {expected} for channels {tuple(channels)}")
        weight = kernel.transpose(3, 2, 0, 1)  # Keras [kh, kw, in, out] -> torch [out, in, kh, kw]
        if i < 8:  # conv -> BN -> ReLU: the affine batch norm folds into the convolution exactly
            scale, shift = _bn(w, f"bn{i}")
            weight, bias = weight * scale[:, None, None, None], bias * scale + shift
        convs.append((np.ascontiguousarray(weight, dtype=np.float32), bias.astype(np.float32)))
    return convs


def _same_max_pool(torch: Any, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
    """Keras's ``MaxPooling2D(pool, padding="same")``: stride = pool, padded with -inf, more after than before."""
    pads = []
    for size, k in zip(reversed(x.shape[2:]), reversed(pool), strict=True):
        total = max((ceil(size / k) - 1) * k + k - size, 0)
        pads += [total // 2, total - total // 2]
    x = torch.nn.functional.pad(x, pads, value=float("-inf"))
    return torch.nn.functional.max_pool2d(x, pool, stride=pool)


def _grid(front: _Frontend) -> tuple[int, int]:
    """Height and width of the last convolution's output: three 2x2 'valid' max-pools."""
    h, w = front.n_bins, front.n_frames
    for _ in range(3):
        h, w = h // 2, w // 2
    return h, w


def _cells(front: _Frontend, embedding_size: int) -> int:
    (h, w), (ph, pw) = _grid(front), front.pools[embedding_size]
    return ceil(h / ph) * ceil(w / pw)


# --------------------------------------------------------------------------------------------
# Encoder


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    if path.suffix == ".pt":
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError("the file does not hold a dict of tensors")
        return {k: (v.numpy() if hasattr(v, "numpy") else np.asarray(v)) for k, v in state.items()}
    raise ValueError("expected a .npz or .pt file")


def _text(w: Mapping[str, np.ndarray], key: str) -> str | None:
    return str(w[key]) if key in w else None


class OpenL3Encoder:
    """OpenL3's audio model as an :class:`~encore.encoders.base.AudioEncoder`.

    Parameters
    ----------
    weights : str or Path
        A ``.npz`` (or ``.pt``) made by ``scripts/convert_openl3_weights.py``. Nothing is read
        until the first call that needs it.
    content_type : "music" or "env"
        Which OpenL3 model the weights are: trained on music videos or environmental ones.
    input_repr : "mel128", "mel256" or "linear"
        The model's input spectrogram.
    embedding_size : 512 or 6144
        How far the last convolution is max-pooled (openl3's two sizes).
    params : OpenL3Params
    channels : tuple of 4 ints
        Filters per convolution block; OpenL3's are (64, 128, 256, 512). Other values only
        describe small self-built models (tests). Weights of other widths fail to load.
    device : str
        A torch device, e.g. ``"cpu"`` or ``"cuda"``.
    """

    def __init__(
        self,
        weights: str | Path,
        *,
        content_type: ContentType = "music",
        input_repr: InputRepr = "mel128",
        embedding_size: int = 512,
        params: OpenL3Params | None = None,
        channels: tuple[int, int, int, int] = CHANNELS,
        device: str = "cpu",
    ) -> None:
        if input_repr not in _FRONTENDS:
            raise ValueError(f"input_repr must be one of {tuple(_FRONTENDS)}, not {input_repr!r}")
        if content_type not in get_args(ContentType):
            raise ValueError(f"content_type must be one of {get_args(ContentType)}, not {content_type!r}")
        if embedding_size not in get_args(EmbeddingSize):
            raise ValueError(f"embedding_size must be one of {get_args(EmbeddingSize)}, not {embedding_size!r}")
        if len(channels) != 4 or min(channels) < 1:
            raise ValueError(f"channels must be 4 positive filter counts, not {channels!r}")
        self.params = params or OpenL3Params()
        self.content_type = content_type
        self.input_repr = input_repr
        self.embedding_size = embedding_size
        self.channels = tuple(channels)
        self._front = _FRONTENDS[input_repr]
        self._pool = self._front.pools[embedding_size]
        self._weights = Path(weights).expanduser()
        self._device = device
        self._net_: _Net | None = None
        self._lock = threading.Lock()
        dim = self.channels[-1] * _cells(self._front, embedding_size)
        if (input_repr, content_type, dim) == ("mel128", "music", 512):
            self.description: EncoderDescription = OPENL3_MEL128_MUSIC
        else:
            # Another model, another vector space: its own name.
            self.description = replace(
                OPENL3_MEL128_MUSIC,
                name=f"openl3-{input_repr}-{content_type}-{dim}",
                dim=dim,
                weights_source=OPENL3_MEL128_MUSIC.weights_source.replace("mel128_music", f"{input_repr}_{content_type}"),
                description=f"OpenL3 audio embedding, {input_repr} input, {content_type} model, {dim}-d; "
                "mean over 1 s windows, unit length.",
            )

    @property
    def loaded(self) -> bool:
        return self._net_ is not None

    def load(self) -> None:
        """Read the weights now rather than on the first embedding (e.g. at server start)."""
        self._net()

    def _net(self) -> _Net:
        if self._net_ is None:
            with self._lock:
                if self._net_ is None:
                    self._net_ = self._read()
        return self._net_

    def _read(self) -> _Net:
        try:
            import torch
        except ImportError as err:
            raise EncoderUnavailable("the OpenL3 encoder needs torch; install the extra with: pip install -e '.[openl3]'") from err
        path = self._weights
        if not path.is_file():
            raise EncoderUnavailable(
                f"OpenL3 weights {path} not found; convert openl3's openl3_audio_{self.input_repr}_{self.content_type}.h5 "
                "with scripts/convert_openl3_weights.py"
            )
        try:
            w = _read_weights(path)
            found = _text(w, "format")
            if found != WEIGHTS_FORMAT:
                raise ValueError(f"format {found!r} is not {WEIGHTS_FORMAT!r}")
            for key, wanted in (("input_repr", self.input_repr), ("content_type", self.content_type)):
                found = _text(w, key)
                if found is not None and found != wanted:
                    raise ValueError(f"the weights are OpenL3's {key} {found!r}, not {wanted!r}")
            in_scale, in_shift = _bn(w, "bn0")
            convs = _build(w, self.channels)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise EncoderUnavailable(f"cannot load OpenL3 weights from {path}: {err}") from err
        filters = None
        if self._front.n_mels is not None:
            filters = mel_filterbank(sr=SR, n_fft=self._front.n_fft, n_mels=self._front.n_mels)
        return _Net(
            in_scale=float(in_scale.reshape(-1)[0]),
            in_shift=float(in_shift.reshape(-1)[0]),
            convs=tuple((torch.from_numpy(k).to(self._device), torch.from_numpy(b).to(self._device)) for k, b in convs),
            torch=torch,
            filters=filters,
        )

    def _prepare(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Validate and resample to 48 kHz: float32 [n]."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise BadAudio(f"expected mono audio of shape (n,), got shape {y.shape}")
        if sr <= 0:
            raise ValueError(f"sr must be positive, not {sr}")
        if y.size / sr < self.params.min_seconds:
            raise BadAudio(f"{y.size / sr:.2f} s of audio is too short to embed (at least {self.params.min_seconds:g} s needed)")
        if not np.all(np.isfinite(y)):
            raise BadAudio("the audio holds non-finite samples")
        return resample(y, sr=sr, target_sr=SR)

    def windows(self, y: np.ndarray, *, sr: int) -> np.ndarray:
        """The 1 s windows of ``y`` that are embedded.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Mono audio, at least ``params.min_seconds`` long.
        sr : int
            Its sample rate; other rates than 48 kHz are resampled first.

        Returns
        -------
        np.ndarray [shape=(n_windows, 48000), dtype=float32]
        """
        y = self._prepare(y, sr)
        if y.size < WINDOW:
            y = np.pad(y, (0, WINDOW - y.size))
        hop = max(1, int(round(self.params.hop_seconds * SR)))
        starts = window_starts(y.size, length=WINDOW, hop=hop, limit=self.params.max_windows)
        return y[starts[:, None] + np.arange(WINDOW)[None, :]]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Run the network on spectrograms.

        Parameters
        ----------
        x : np.ndarray [shape=(n, n_bins, n_frames)]
            As :func:`log_spectrogram` makes them.

        Returns
        -------
        np.ndarray [shape=(n, dim), dtype=float32]
            Per-window embeddings, not normalised (openl3's own output).
        """
        net = self._net()
        torch = net.torch
        expected = (self._front.n_bins, self._front.n_frames)
        if x.ndim != 3 or x.shape[1:] != expected:
            raise ValueError(f"expected spectrograms of shape (n, {expected[0]}, {expected[1]}), got {x.shape}")
        out = []
        step = self.params.batch_size
        with torch.inference_mode():
            for i in range(0, len(x), step):
                h = torch.from_numpy(np.ascontiguousarray(x[i:i + step], dtype=np.float32)).to(self._device)
                h = h[:, None] * net.in_scale + net.in_shift
                for j, (weight, bias) in enumerate(net.convs):
                    h = torch.nn.functional.conv2d(h, weight, bias, padding=1)
                    if j < 7:
                        h = torch.relu(h)
                    if j in (1, 3, 5):  # the end of blocks 1-3
                        h = torch.nn.functional.max_pool2d(h, 2)
                h = _same_max_pool(torch, h, self._pool)
                # Keras flattens (height, width, channel); torch holds (channel, height, width).
                out.append(h.permute(0, 2, 3, 1).reshape(h.shape[0], -1).cpu().numpy())
        return np.concatenate(out)

    def embed(self, y: np.ndarray, *, sr: int) -> AudioEmbedding:
        """Embed one track.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Mono audio, at least ``params.min_seconds`` long; decode at 48 kHz to skip resampling.
        sr : int

        Returns
        -------
        AudioEmbedding
            ``vector`` [shape=(dim,)]: the mean of the windows' embeddings, unit length; no tags.

        Raises
        ------
        BadAudio
            for audio that is not mono, too short or not finite.
        EncoderUnavailable
            when torch is missing or the weights cannot be read.
        """
        return self.embed_batch([y], sr=sr)[0]

    def embed_batch(self, ys: Sequence[np.ndarray], *, sr: int) -> list[AudioEmbedding]:
        """Embed several tracks, their windows run through the network together.

        Same results as :meth:`embed` on each (to float rounding), in the same order.
        """
        per_track = [self.windows(y, sr=sr) for y in ys]
        if not per_track:
            return []
        filters = self._net().filters
        windows = np.concatenate(per_track)
        step = self.params.batch_size
        # Spectrograms a batch at a time: 1 s of mel128 input costs 1.6 MB, its STFT frames 26 MB.
        vectors = np.concatenate([
            self.forward(log_spectrogram(windows[i:i + step], input_repr=self.input_repr, filters=filters))
            for i in range(0, len(windows), step)
        ])
        bounds = np.cumsum([0] + [len(w) for w in per_track])
        out = []
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            mean = vectors[lo:hi].mean(axis=0)
            norm = float(np.linalg.norm(mean))
            out.append(AudioEmbedding(vector=(mean / norm if norm > 0 else mean).astype(np.float32), tags=None, tag_names=None, n_patches=int(hi - lo)))
        return out

