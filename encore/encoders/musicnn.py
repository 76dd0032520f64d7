"""musicnn's MSD model (Pons & Serra, 2019) run in numpy: a 200-d track embedding and 50 tag probabilities.

The weights are the TF1 checkpoint the ``musicnn`` wheel ships (ISC licence), read with
:mod:`encore.encoders.tfcheckpoint`; neither TensorFlow nor librosa is needed at run time.
Install the wheel without its dependencies (its metadata pins an old numpy and TensorFlow)::

    pip install --no-deps musicnn==0.1.0

Pipeline, as musicnn's ``extractor()`` does it:

1. mono audio at 16 kHz; power mel spectrogram (n_fft 512, hop 256, 96 slaney mel bands),
   stored as float16 and compressed as ``log10(10000 x + 1)``;
2. non-overlapping 187-frame patches (3 s) from the start; the tail that does not fill a
   patch is dropped;
3. per patch, the network: batch-normalised input; a front end of timbral convolutions
   (7x38 and 7x67 time x frequency kernels, 204 filters each) and temporal ones (128, 64 and 32
   frames, 51 filters each), each max-pooled over frequency; a mid end of three 7-frame
   convolutions (64 filters, residual); a back end that max- and mean-pools over time, then
   dense 200 (ReLU, batch norm: musicnn's "penultimate" features) and dense 50 (logits);
4. per track, the mean over patches of the penultimate features (the embedding) and of the
   sigmoid tag probabilities.

Unlike ``extractor()``, at most :attr:`MusicnnParams.max_patches` patches are embedded, spread
evenly over the track, so a long track costs no more than a short one; and audio shorter
than one patch is repeat-padded (as musicnn's training did) instead of failing.

Two details follow musicnn's data rather than librosa's current defaults: the STFT pads with
reflection (librosa's default when the model was trained; ``pad_mode`` changes it), and the
mel powers go through float16 before the log, as musicnn stored them.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import expit

from encore.encoders.base import AudioEmbedding, EncoderDescription, EncoderUnavailable
from encore.encoders.taghead import TagHead, musicnn_tag_head
from encore.encoders.tfcheckpoint import CheckpointError, read_checkpoint
from encore.errors import BadAudio

__all__ = [
    "MSD_TAGS",
    "MUSICNN_MSD",
    "MusicnnEncoder",
    "MusicnnParams",
    "PadMode",
    "PatchOutputs",
    "log_compress",
    "mel_filterbank",
    "mel_spectrogram",
]

SR = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
#: Frames per network input: 3 s at 16 kHz, hop 256 (``librosa.time_to_frames(3, ...) + 1``).
PATCH_FRAMES = 187
#: ``tf.compat.v1.layers.batch_normalization``'s default epsilon, which musicnn kept.
_BN_EPS = 1e-3

#: musicnn's ``configuration.MSD_LABELS``: the 50 most frequent last.fm tags of the Million Song Dataset.
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock",
    "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
)  # fmt: skip

MUSICNN_MSD = EncoderDescription(
    name="musicnn",
    dim=200,
    sample_rate=SR,
    licence="ISC (musicnn 0.1.0, code and weights)",
    weights_source="PyPI wheel musicnn==0.1.0, musicnn/MSD_musicnn/ (TF1 checkpoint, 792k parameters)",
    description=(
        "musicnn trained on the Million Song Dataset: mean over 3 s patches of the 200-d penultimate "
        "layer, plus 50 last.fm tag probabilities (genre, mood, era)."
    ),
    tag_names=MSD_TAGS,
)

_INSTALL_HINT = "install it with: pip install --no-deps musicnn==0.1.0"

#: ``numpy.pad`` modes that make sense for audio edges.
PadMode = Literal["reflect", "constant", "edge", "symmetric"]


@dataclass(frozen=True, slots=True)
class MusicnnParams:
    """How much of a track :class:`MusicnnEncoder` looks at, and how it batches the work."""

    max_patches: int | None = 16
    """Most 3 s patches embedded per track, spread evenly; ``None`` embeds every patch, as
    musicnn's ``extractor()`` does. 16 patches (48 s of a 4-minute track) cost about 0.5-1 s on
    two cores; on 8 real soundtrack pieces (1-11 min) their mean embedding had a cosine of 0.98
    or more to the all-patch one (median 0.995; 8 patches: 0.95, median 0.986)."""
    batch_size: int = 4
    """Patches per forward pass; bounds peak memory (about 20 MB per patch). Larger batches
    were no faster on two cores: the convolutions are already large matrix products."""
    min_seconds: float = 1.0
    """Shorter audio is refused (:class:`~encore.errors.BadAudio`); audio between this and 3 s
    is repeat-padded to one patch."""
    pad_mode: PadMode = "reflect"
    """STFT edge padding (``numpy.pad`` mode); ``"constant"`` is librosa >= 0.10's default."""

    def __post_init__(self) -> None:
        if self.max_patches is not None and self.max_patches < 1:
            raise ValueError(f"max_patches must be at least 1 or None, not {self.max_patches}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.pad_mode not in get_args(PadMode):
            raise ValueError(f"pad_mode must be one of {get_args(PadMode)}, not {self.pad_mode!r}")


@dataclass(frozen=True, slots=True, eq=False)
class PatchOutputs:
    """The network's outputs for a batch of patches.

    Attributes
    ----------
    logits : np.ndarray [shape=(n_patches, 50), dtype=float32]
    probs : np.ndarray [shape=(n_patches, 50), dtype=float32]
        ``sigmoid(logits)``: musicnn's taggram.
    penultimate : np.ndarray [shape=(n_patches, 200), dtype=float32]
        The batch-normalised dense-200 layer, which musicnn's ``extractor()`` names 'penultimate'.
    """

    logits: np.ndarray
    probs: np.ndarray
    penultimate: np.ndarray


# --------------------------------------------------------------------------------------------
# Features


def _hz_to_mel(hz: npt.ArrayLike) -> np.ndarray:
    """Slaney's mel scale (librosa's ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    return np.where(log_region, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(mel: npt.ArrayLike) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters, slaney scale and area normalisation, as ``librosa.filters.mel``'s defaults.

    Parameters
    ----------
    sr : int > 0
    n_fft : int > 0
    n_mels : int > 0
    fmin, fmax : float
        Lowest and highest edge, in Hz; ``fmax=None`` is ``sr / 2``.

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32]
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_hz = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    # Slaney normalisation: each triangle has unit area in Hz, so wide high bands do not dominate.
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def _power_frames(y: np.ndarray, frames: np.ndarray, *, n_fft: int, hop_length: int, pad_mode: PadMode) -> np.ndarray:
    """|STFT|^2 of centred frames ``frames`` only: [shape=(len(frames), 1 + n_fft // 2)], float32."""
    padded = np.pad(y.astype(np.float32, copy=False), n_fft // 2, mode=pad_mode)
    # Periodic Hann, as scipy.signal.get_window("hann", n_fft) and librosa use.
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    starts = np.asarray(frames, dtype=np.intp) * hop_length
    spec = np.fft.rfft(padded[starts[:, None] + np.arange(n_fft)[None, :]] * window, axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32, copy=False)


def mel_spectrogram(
    y: np.ndarray,
    *,
    sr: int = SR,
    n_fft: int = N_FFT,
    hop_length: int = HOP_LENGTH,
    n_mels: int = N_MELS,
    pad_mode: PadMode = "reflect",
) -> np.ndarray:
    """Power mel spectrogram of centred frames, as ``librosa.feature.melspectrogram`` (power 2, slaney).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio, longer than ``n_fft // 2`` samples for reflection padding.
    sr : int > 0
    n_fft : int > 0
    hop_length : int > 0
    n_mels : int > 0
    pad_mode : str
        ``numpy.pad`` mode for the ``n_fft // 2`` samples added at each end. librosa used
        ``"reflect"`` before 0.10 (musicnn was trained so) and ``"constant"`` since.

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n // hop_length), dtype=float32]
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n,), got {y.shape}")
    frames = np.arange(1 + y.size // hop_length)
    power = _power_frames(y, frames, n_fft=n_fft, hop_length=hop_length, pad_mode=pad_mode)
    return mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels) @ power.T


def log_compress(mel: np.ndarray) -> np.ndarray:
    """musicnn's input compression: ``log10(10000 x + 1)`` of the mel powers rounded to float16.

    musicnn stored its spectrograms as float16; rounding the same way keeps its inputs.

    Parameters
    ----------
    mel : np.ndarray [shape=(..., ), non-negative]

    Returns
    -------
    np.ndarray [same shape, dtype=float32]
    """
    # float16 tops out at 65504; clip so that audio past full scale cannot turn into inf.
    rounded = np.minimum(mel, np.float32(65504.0)).astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000.0) * rounded + np.float32(1.0))


# --------------------------------------------------------------------------------------------
# Network


@dataclass(frozen=True, slots=True, eq=False)
class _ConvBN:
    """A convolution as a matrix product, then ReLU and inference-mode batch norm (``y * scale + shift``)."""

    kernel: np.ndarray  # [patch length, filters]
    bias: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    sign: np.ndarray  # +1, or -1 for a filter _signed() negated (only in layers max-pooled over frequency)


@dataclass(frozen=True, slots=True, eq=False)
class _Weights:
    in_scale: np.float32
    in_shift: np.float32
    timbral: tuple[tuple[int, _ConvBN], ...]  # (frequency extent, layer), 7 frames tall
    temporal: tuple[tuple[int, _ConvBN], ...]  # (offset in a common 128-frame window, layer)
    midend: tuple[_ConvBN, ...]
    flat_scale: np.ndarray
    flat_shift: np.ndarray
    dense: _ConvBN
    out_kernel: np.ndarray
    out_bias: np.ndarray
    mel_filters: np.ndarray  # [96, 257], built with the weights rather than per call


def _bn(v: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    key = "batch_normalization" if i == 0 else f"batch_normalization_{i}"
    gamma, beta = v[f"{key}/gamma"], v[f"{key}/beta"]
    mean, var = v[f"{key}/moving_mean"], v[f"{key}/moving_variance"]
    scale = gamma / np.sqrt(var + np.float32(_BN_EPS))
    return scale.astype(np.float32), (beta - mean * scale).astype(np.float32)


def _signed(kernel: np.ndarray, bias: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip the filters whose batch-norm scale is negative, so a max-pool can stand in for a min-pool.

    ``max_f bn(relu(z_f))`` is ``bn(relu(max_f z_f))`` where the scale is positive and
    ``bn(relu(min_f z_f))`` where it is negative (both maps are monotone); with those filters
    negated, one max over frequency of the raw convolution gives both, so the ReLU and batch
    norm run on the pooled (96x smaller) array instead of the full one.
    """
    sign = np.where(scale < 0, np.float32(-1.0), np.float32(1.0))
    return (kernel * sign).astype(np.float32), (bias * sign).astype(np.float32), sign


def _build_weights(v: dict[str, np.ndarray]) -> _Weights:
    in_scale, in_shift = _bn(v, 0)
    timbral = []
    for conv, bn in ((0, 1), (1, 2)):  # conv2d: 7x38 (0.4 * 96 bands), conv2d_1: 7x67 (0.7 * 96)
        name = "conv2d" if conv == 0 else f"conv2d_{conv}"
        k = v[f"{name}/kernel"]  # [7, F, 1, 204]
        scale, shift = _bn(v, bn)
        kernel, bias, sign = _signed(k.reshape(-1, k.shape[-1]), v[f"{name}/bias"], scale)
        timbral.append((k.shape[1], _ConvBN(kernel, bias, scale, shift, sign)))

    # conv2d_2..4 are 128, 64 and 32 frames long with 'same' padding: TF pads (k-1)//2 before,
    # so inside a common 128-frame window (63 before, 64 after) they start at 0, 32 and 48.
    temporal = []
    for conv, bn, start in ((2, 3, 0), (3, 4, 32), (4, 5, 48)):
        k = v[f"conv2d_{conv}/kernel"][:, 0, 0, :]  # [frames, 51]
        scale, shift = _bn(v, bn)
        kernel, bias, sign = _signed(k, v[f"conv2d_{conv}/bias"], scale)
        temporal.append((start, _ConvBN(kernel, bias, scale, shift, sign)))

    midend = []
    for conv, bn in ((5, 6), (6, 7), (7, 8)):
        k = v[f"conv2d_{conv}/kernel"]  # [7, channels in, 1, 64]
        scale, shift = _bn(v, bn)
        kernel = k.reshape(-1, k.shape[-1]).astype(np.float32)
        midend.append(_ConvBN(kernel, v[f"conv2d_{conv}/bias"], scale, shift, np.ones_like(scale)))

    flat_scale, flat_shift = _bn(v, 9)
    scale, shift = _bn(v, 10)
    return _Weights(
        in_scale=np.float32(in_scale[0]),
        in_shift=np.float32(in_shift[0]),
        timbral=tuple(timbral),
        temporal=tuple(temporal),
        midend=tuple(midend),
        flat_scale=flat_scale,
        flat_shift=flat_shift,
        dense=_ConvBN(v["dense/kernel"], v["dense/bias"], scale, shift, np.ones_like(scale)),
        out_kernel=v["dense_1/kernel"],
        out_bias=v["dense_1/bias"],
        mel_filters=mel_filterbank(sr=SR, n_fft=N_FFT, n_mels=N_MELS),
    )


def _pooled(windows: np.ndarray, layer: _ConvBN, shape: tuple[int, int, int]) -> np.ndarray:
    """Convolve (as ``windows @ kernel``), max-pool over positions, then ReLU and batch norm.

    ``windows`` [B * T * positions, patch length], ``shape`` (B, T, positions) -> [B, T, filters].
    Some filters were negated by :func:`_signed`; multiplying by ``layer.sign`` turns their max
    back into the min they need.
    """
    z = (windows @ layer.kernel).reshape(*shape, -1)
    return np.maximum((z.max(axis=2) + layer.bias) * layer.sign, 0) * layer.scale + layer.shift


def _conv_time(x: np.ndarray, layer: _ConvBN) -> np.ndarray:
    """7-frame 'same' convolution over time of [B, T, C] (musicnn's mid end), ReLU, batch norm."""
    padded = np.pad(x, ((0, 0), (3, 3), (0, 0)))
    b, t, c = x.shape
    # windows[b, t, dt, c] = padded[b, t + dt, c], matching the kernel's [7, C] row order.
    windows = sliding_window_view(padded, 7, axis=1).transpose(0, 1, 3, 2).reshape(b * t, 7 * c)
    z = windows @ layer.kernel + layer.bias
    return (np.maximum(z, 0) * layer.scale + layer.shift).reshape(b, t, -1)


def _forward(w: _Weights, x: np.ndarray) -> PatchOutputs:
    """The network on a batch of log-mel patches ``x`` [B, 187, 96], in float32."""
    x = x.astype(np.float32, copy=False) * w.in_scale + w.in_shift
    b, t, _ = x.shape

    # Timbral front end: 7 x F kernels over (time, mel), time padded by 3 each side ('same'
    # in time, 'valid' in frequency), then max over all frequency positions.
    padded = np.pad(x, ((0, 0), (3, 3), (0, 0)))
    features = []
    for f, layer in w.timbral:
        windows = sliding_window_view(padded, (7, f), axis=(1, 2))  # [B, T, 96 - f + 1, 7, f]
        features.append(_pooled(windows.reshape(-1, 7 * f), layer, windows.shape[:3]))

    # Temporal front end: each mel band alone, convolved over time, then max over bands. One
    # copy of the 128-frame windows serves all three kernels: the shorter ones multiply a
    # column slice of it (a strided view BLAS reads in place).
    padded = np.pad(x, ((0, 0), (63, 64), (0, 0)))
    windows = sliding_window_view(padded, 128, axis=1)  # [B, T, 96, 128]
    flat = windows.reshape(-1, 128)
    for start, layer in w.temporal:
        features.append(_pooled(flat[:, start:start + layer.kernel.shape[0]], layer, windows.shape[:3]))
    front = np.concatenate(features, axis=2)  # [B, T, 561]

    # Mid end: three 7-frame convolutions; the 2nd and 3rd add their input back (residual).
    cnn1 = _conv_time(front, w.midend[0])
    cnn2 = _conv_time(cnn1, w.midend[1]) + cnn1
    cnn3 = _conv_time(cnn2, w.midend[2]) + cnn2
    mid = np.concatenate([front, cnn1, cnn2, cnn3], axis=2)  # [B, T, 753]

    # Back end: max and mean over time, interleaved per channel as TF's flatten of [753, 2] lays them.
    pooled = np.stack([mid.max(axis=1), mid.mean(axis=1)], axis=2).reshape(b, -1)
    flat = pooled * w.flat_scale + w.flat_shift
    penultimate = np.maximum(flat @ w.dense.kernel + w.dense.bias, 0) * w.dense.scale + w.dense.shift
    logits = penultimate @ w.out_kernel + w.out_bias
    return PatchOutputs(logits=logits, probs=expit(logits).astype(np.float32), penultimate=penultimate)


# --------------------------------------------------------------------------------------------
# Encoder


def default_checkpoint() -> Path:
    """The ``MSD_musicnn`` checkpoint directory inside the installed ``musicnn`` package.

    Raises
    ------
    EncoderUnavailable
        when the package is not installed.
    """
    # find_spec, not import: musicnn/__init__.py is empty, but importing its modules pulls TensorFlow.
    spec = importlib.util.find_spec("musicnn")
    if spec is None:
        raise EncoderUnavailable(f"the musicnn encoder needs the musicnn package's weights; {_INSTALL_HINT}")
    if not spec.submodule_search_locations:
        raise EncoderUnavailable(f"'musicnn' resolves to {spec.origin}, not the musicnn package; {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "MSD_musicnn"


class MusicnnEncoder:
    """musicnn's MSD model as an :class:`~encore.encoders.base.AudioEncoder`.

    Parameters
    ----------
    checkpoint : str or Path, optional
        A checkpoint directory (or prefix) with musicnn's MSD weights; by default the one in the
        installed ``musicnn`` package. Nothing is read until the first call that needs it.
    params : MusicnnParams
    """

    description: EncoderDescription = MUSICNN_MSD

    def __init__(self, *, checkpoint: str | Path | None = None, params: MusicnnParams | None = None) -> None:
        self.params = params or MusicnnParams()
        self._checkpoint = Path(checkpoint) if checkpoint is not None else None
        self._weights: _Weights | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._weights is not None

    def load(self) -> None:
        """Read the weights now rather than on the first embedding (e.g. at server start)."""
        self._net()

    def _net(self) -> _Weights:
        if self._weights is None:
            with self._lock:
                if self._weights is None:
                    path = self._checkpoint or default_checkpoint()
                    try:
                        variables = read_checkpoint(path)
                        weights = _build_weights(variables)
                    except CheckpointError as err:
                        raise EncoderUnavailable(f"cannot load musicnn's MSD weights from {path}: {err}; {_INSTALL_HINT}") from err
                    except KeyError as err:
                        raise EncoderUnavailable(f"{path} is not musicnn's MSD checkpoint: no variable {err}") from err
                    self._weights = weights
        return self._weights

    def _prepare(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Validate, downmix nothing (mono is required), resample to 16 kHz: float32 [n]."""
        y = np.asarray(y)
        if y.ndim != 1:
            raise BadAudio(f"expected mono audio of shape (n,), got shape {y.shape}")
        if sr <= 0:
            raise ValueError(f"sr must be positive, not {sr}")
        if y.size / sr < self.params.min_seconds:
            raise BadAudio(f"{y.size / sr:.2f} s of audio is too short to embed (at least {self.params.min_seconds:g} s needed)")
        if not np.all(np.isfinite(y)):
            raise BadAudio("the audio holds non-finite samples")
        y = y.astype(np.float32, copy=False)
        if sr != SR:
            from scipy.signal import resample_poly

            ratio = Fraction(SR, int(sr))
            y = resample_poly(y, ratio.numerator, ratio.denominator).astype(np.float32)
        return y

    def patches(self, y: np.ndarray, *, sr: int) -> np.ndarray:
        """The log-mel patches the network sees for ``y``, at most ``params.max_patches`` of them.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Mono audio, at least ``params.min_seconds`` long.
        sr : int
            Its sample rate; other rates than 16 kHz are resampled first.

        Returns
        -------
        np.ndarray [shape=(n_patches, 187, 96), dtype=float32]
        """
        y = self._prepare(y, sr)
        filters = self._net().mel_filters
        n_frames = 1 + y.size // HOP_LENGTH
        n_total = n_frames // PATCH_FRAMES
        if n_total == 0:
            # Shorter than one patch: repeat the spectrogram until it fills one, as musicnn's
            # training input pipeline did ("repeat-pad").
            starts = np.zeros(1, dtype=np.intp)
            frames = np.resize(np.arange(n_frames), PATCH_FRAMES)
        else:
            chosen = np.arange(n_total)
            limit = self.params.max_patches
            if limit is not None and n_total > limit:
                chosen = np.round(np.linspace(0, n_total - 1, limit)).astype(np.intp)
            starts = chosen * PATCH_FRAMES
            frames = (starts[:, None] + np.arange(PATCH_FRAMES)[None, :]).ravel()
        power = _power_frames(y, frames, n_fft=N_FFT, hop_length=HOP_LENGTH, pad_mode=self.params.pad_mode)
        mel = power @ filters.T  # [frames, 96]
        return log_compress(mel).reshape(len(starts), PATCH_FRAMES, N_MELS)

    def forward(self, x: np.ndarray) -> PatchOutputs:
        """Run the network on log-mel patches.

        Parameters
        ----------
        x : np.ndarray [shape=(n_patches, 187, 96)]
            As :meth:`patches` makes them (time, mel band), e.g. musicnn's ``batch_data``.

        Returns
        -------
        PatchOutputs
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ValueError(f"expected patches of shape (n, {PATCH_FRAMES}, {N_MELS}), got {x.shape}")
        weights = self._net()
        step = self.params.batch_size
        parts = [_forward(weights, x[i:i + step]) for i in range(0, len(x), step)]
        if len(parts) == 1:
            return parts[0]
        return PatchOutputs(
            logits=np.concatenate([p.logits for p in parts]),
            probs=np.concatenate([p.probs for p in parts]),
            penultimate=np.concatenate([p.penultimate for p in parts]),
        )

    def embed(self, y: np.ndarray, *, sr: int) -> AudioEmbedding:
        """Embed one track.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Mono audio, at least ``params.min_seconds`` long; decode at 16 kHz to skip resampling.
        sr : int

        Returns
        -------
        AudioEmbedding
            ``vector`` [shape=(200,)]: mean penultimate features over the patches used;
            ``tags`` [shape=(50,)]: mean tag probabilities, named by :data:`MSD_TAGS`.

        Raises
        ------
        BadAudio
            for audio that is not mono, too short or not finite.
        EncoderUnavailable
            when the weights cannot be found or read.
        """
        return self.embed_batch([y], sr=sr)[0]

    def embed_batch(self, ys: Sequence[np.ndarray], *, sr: int) -> list[AudioEmbedding]:
        """Embed several tracks, their patches run through the network together.

        Same results as :meth:`embed` on each, in the same order.
        """
        batches = [self.patches(y, sr=sr) for y in ys]
        if not batches:
            return []
        out = self.forward(np.concatenate(batches))
        bounds = np.cumsum([0] + [len(b) for b in batches])
        return [
            AudioEmbedding(
                vector=out.penultimate[lo:hi].mean(axis=0, dtype=np.float32),
                tags=out.probs[lo:hi].mean(axis=0, dtype=np.float32),
                tag_names=MSD_TAGS,
                n_patches=int(hi - lo),
            )
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]

    def tag_head(self) -> TagHead:
        """The tag layer as a linear map of the embedding, with the embedding's typical spread.

        Read from the checkpoint without building the network (milliseconds): the world tier
        needs it at start-up to centre its ``tags`` space.
        """
        try:
            return musicnn_tag_head(self._checkpoint or default_checkpoint(), names=MSD_TAGS)
        except (CheckpointError, OSError, KeyError, ValueError) as exc:
            raise EncoderUnavailable(f"cannot read musicnn's tag layer: {exc}; {_INSTALL_HINT}") from exc
