"""LAION's CLAP (Wu, Chen et al., 2023) through Hugging Face ``transformers``: audio and text in one 512-d space.

An optional extra (it needs torch and transformers)::

    pip install -e '.[clap]'

Weights
-------
A local directory holding a CLAP checkpoint in Hugging Face format: ``config.json`` of
``model_type "clap"``, the weights (``model.safetensors`` or ``pytorch_model.bin``),
``preprocessor_config.json`` (the ``ClapFeatureExtractor``) and the tokenizer files. These are
the checkpoints LAION published on the Hugging Face Hub, downloaded once on a machine that is
online, with the ``hf`` command that comes with transformers (huggingface_hub), e.g.::

    hf download laion/clap-htsat-unfused --local-dir ~/models/clap-htsat-unfused

(or ``huggingface_hub.snapshot_download("laion/clap-htsat-unfused", local_dir=...)``), then
copied to the machine that runs Encore if that one is offline.

Accepted: ``laion/clap-htsat-unfused`` and ``laion/clap-htsat-fused`` (HTSAT-tiny audio tower,
RoBERTa-base text tower, the paper's general-audio models), and the later ports in the same
format, ``laion/larger_clap_general``, ``laion/larger_clap_music`` and
``laion/larger_clap_music_and_speech`` (HTSAT-base; the music ones suit a music catalogue
better). Nothing is ever fetched: every file is read with ``local_files_only=True``.
The ``laion_clap`` package itself is not used: it downloads RoBERTa, BERT and BART
tokenizers from the Hub when imported, so it cannot run offline, and it pins numpy < 2.

Pipeline
--------
1. mono audio at 48 kHz (other rates are resampled with a long Kaiser-windowed sinc, see
   :func:`resample`);
2. chunks of the checkpoint's clip length (10 s for LAION's), starting every clip length and
   one more ending at the end of the track, at most :attr:`ClapParams.max_chunks` of them
   spread evenly; audio shorter than one chunk is repeat-padded to it, as CLAP was trained;
3. per chunk, the checkpoint's own ``ClapFeatureExtractor`` (log-mel, 64 bands), the audio
   tower and its projection, normalised to unit length, as CLAP's contrastive space is;
4. per track, the mean over chunks, normalised again.

Unlike ``ClapFeatureExtractor`` on a whole track, nothing is random: a chunk never exceeds the
clip length, so no random crop is taken, and fused checkpoints see every chunk with
``is_longer=False`` (the extractor would otherwise mark one clip of each batch at random).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.signal import firwin, resample_poly

from encore.encoders.base import AudioEmbedding, EncoderDescription, EncoderUnavailable
from encore.errors import BadAudio

if TYPE_CHECKING:
    import torch

__all__ = ["CLAP_LAION", "ClapEncoder", "ClapParams", "resample", "window_starts"]

SR = 48000
DIM = 512

CLAP_LAION = EncoderDescription(
    name="clap",
    dim=DIM,
    sample_rate=SR,
    licence="Apache-2.0 (LAION's CLAP checkpoints as ported to Hugging Face transformers)",
    weights_source=(
        "a local Hugging Face checkpoint directory (config.json, weights, preprocessor and tokenizer files), "
        "e.g. laion/clap-htsat-unfused or laion/larger_clap_music downloaded from the Hub"
    ),
    description=(
        "LAION CLAP: mean over 10 s chunks of the 512-d joint audio-text embedding (unit length); "
        "text queries embed into the same space."
    ),
)

_INSTALL_HINT = "install the extra with: pip install -e '.[clap]' (torch and transformers)"


@dataclass(frozen=True, slots=True)
class ClapParams:
    """How much of a track :class:`ClapEncoder` looks at, and how it batches the work."""

    max_chunks: int | None = 6
    """Most clip-length (10 s) chunks embedded per track, spread evenly; ``None`` embeds them all.
    Each costs about 1 s of CPU with HTSAT-tiny (measured with random weights on two busy cores:
    6 chunks, 6.5 s in the network and 0.8 s in the feature extractor)."""
    batch_size: int = 8
    """Chunks (or texts) per forward pass; bounds peak memory."""
    min_seconds: float = 1.0
    """Shorter audio is refused (:class:`~encore.errors.BadAudio`); longer audio under one chunk
    is repeat-padded to it."""
    max_text_tokens: int = 77
    """Texts are cut to this many tokens, as LAION's CLAP was trained."""

    def __post_init__(self) -> None:
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ValueError(f"max_chunks must be at least 1 or None, not {self.max_chunks}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.max_text_tokens < 3:
            raise ValueError(f"max_text_tokens must be at least 3, not {self.max_text_tokens}")


@dataclass(frozen=True, slots=True, eq=False)
class _Loaded:
    model: Any  # transformers.ClapModel, in eval mode on the encoder's device
    features: Any  # transformers.ClapFeatureExtractor
    tokenizer: Any
    torch: Any  # the torch module, imported on load rather than with this module
    chunk_samples: int
    truncation: str


def window_starts(n: int, *, length: int, hop: int, limit: int | None) -> np.ndarray:
    """Where the analysis windows of an ``n``-sample signal start.

    Every ``hop`` samples while a whole window fits, plus one ending at the last sample when the
    grid leaves a tail; then at most ``limit`` of them, spread evenly (first and last kept).

    Returns
    -------
    np.ndarray [shape=(k,), dtype=intp]
        ``[0]`` when the signal is shorter than one window.
    """
    if n <= length:
        return np.zeros(1, dtype=np.intp)
    starts = np.arange(0, n - length + 1, hop, dtype=np.intp)
    if starts[-1] != n - length:
        starts = np.append(starts, n - length)
    if limit is not None and len(starts) > limit:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, limit)).astype(np.intp)]
    return starts


@lru_cache(maxsize=8)
def _resampling_filter(up: int, down: int) -> np.ndarray:
    """A Kaiser-windowed sinc (beta 12), 32 zero crossings each side, cut at 95% of the lower Nyquist.

    scipy's default for ``resample_poly`` (10 zero crossings, beta 5) leaves images of the audio
    above the original Nyquist only about 65 dB down, and log spectrograms show them (OpenL3's
    floor is 80 dB down, CLAP's 100 dB). With this filter a 5 kHz tone upsampled from
    22.05 kHz has no image above -130 dB, close to resampy's ``kaiser_best``, which openl3 uses.
    It costs more: 0.7 s for 4 minutes at 44.1 kHz on one core (the default: 0.15 s).
    """
    rate = max(up, down)
    return firwin(2 * 32 * rate + 1, 0.95 / rate, window=("kaiser", 12.0)).astype(np.float32)


def resample(y: np.ndarray, *, sr: int, target_sr: int) -> np.ndarray:
    """``y`` [shape=(n,)] sampled at ``sr`` Hz, resampled to ``target_sr`` Hz: float32 [ceil(n target_sr / sr)]."""
    if sr == target_sr:
        return y.astype(np.float32, copy=False)
    ratio = Fraction(int(target_sr), int(sr))
    h = _resampling_filter(ratio.numerator, ratio.denominator)
    return resample_poly(y, ratio.numerator, ratio.denominator, window=h).astype(np.float32)


def _import_backend() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as err:
        raise EncoderUnavailable(f"the CLAP encoder needs {err.name}; {_INSTALL_HINT}") from err
    return torch, transformers


class ClapEncoder:
    """A CLAP checkpoint as an :class:`~encore.encoders.base.AudioEncoder`, plus :meth:`embed_text`.

    Parameters
    ----------
    weights : str or Path
        A local Hugging Face CLAP checkpoint directory (see the module's documentation).
        Nothing is read until the first call that needs it.
    params : ClapParams
    dim : int
        The checkpoint's projection size: 512 for every LAION checkpoint; other values only
        describe small self-built models. Loading a checkpoint of another size fails.
    device : str
        A torch device, e.g. ``"cpu"`` or ``"cuda"``.
    """

    def __init__(
        self,
        weights: str | Path,
        *,
        params: ClapParams | None = None,
        dim: int = DIM,
        device: str = "cpu",
    ) -> None:
        self.params = params or ClapParams()
        self.description: EncoderDescription = CLAP_LAION if dim == DIM else replace(CLAP_LAION, dim=dim)
        self._weights = Path(weights).expanduser()
        self._device = device
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        """Read the checkpoint now rather than on the first embedding (e.g. at server start)."""
        self._net()

    def _net(self) -> _Loaded:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = self._read()
        return self._loaded

    def _read(self) -> _Loaded:
        torch, transformers = _import_backend()
        path = self._weights
        if not path.is_dir():
            raise EncoderUnavailable(
                f"CLAP weights {path} is not a directory; download a Hugging Face CLAP checkpoint there, "
                "e.g. hf download laion/clap-htsat-unfused --local-dir <dir>"
            )
        try:
            # A directory path never reaches the Hub; local_files_only makes sure of it.
            model, info = transformers.ClapModel.from_pretrained(path, local_files_only=True, output_loading_info=True)
            features = transformers.ClapFeatureExtractor.from_pretrained(path, local_files_only=True)
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise EncoderUnavailable(f"cannot load a CLAP checkpoint from {path}: {err}") from err
        # transformers fills parameters the file lacks with random values and only warns; an
        # encoder built so would embed noise, so refuse it.
        params = {name for name, _ in model.named_parameters()}
        missing = sorted(params.intersection(info.get("missing_keys", ())))
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise EncoderUnavailable(f"{path} is not a complete CLAP checkpoint: {len(missing)} weights missing ({shown})")
        if model.config.projection_dim != self.description.dim:
            raise EncoderUnavailable(
                f"{path} embeds into {model.config.projection_dim} dimensions, not {self.description.dim}"
            )
        if features.sampling_rate != SR:
            raise EncoderUnavailable(f"{path} expects {features.sampling_rate} Hz audio; Encore's CLAP runs at {SR} Hz")
        model = model.float().to(self._device).eval()
        return _Loaded(
            model=model,
            features=features,
            tokenizer=tokenizer,
            torch=torch,
            chunk_samples=int(features.nb_max_samples),
            # LAION's own rule: fused models take 4 stacked mels, the others one.
            truncation="fusion" if model.config.audio_config.enable_fusion else "rand_trunc",
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

    def chunks(self, y: np.ndarray, *, sr: int) -> list[np.ndarray]:
        """The 48 kHz chunks of ``y`` that are embedded, each at most the checkpoint's clip length.

        Parameters
        ----------
        y : np.ndarray [shape=(n,)]
            Mono audio, at least ``params.min_seconds`` long.
        sr : int
            Its sample rate; other rates than 48 kHz are resampled first.

        Returns
        -------
        list of np.ndarray [shape=(chunk_samples,), dtype=float32]
            One shorter array instead when the whole signal is shorter than a chunk.
        """
        y = self._prepare(y, sr)
        length = self._net().chunk_samples
        starts = window_starts(y.size, length=length, hop=length, limit=self.params.max_chunks)
        return [y[s:s + length] for s in starts]

    def _embed_chunks(self, chunks: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-length projected embeddings of audio chunks: [shape=(len(chunks), dim)], float32."""
        net = self._net()
        torch = net.torch
        out = []
        step = self.params.batch_size
        for i in range(0, len(chunks), step):
            batch = net.features(
                [c.astype(np.float64) for c in chunks[i:i + step]],
                sampling_rate=SR,
                truncation=net.truncation,
                padding="repeatpad",
                return_tensors="pt",
            )
            mel = batch["input_features"].to(self._device, torch.float32)
            is_longer = torch.zeros((mel.shape[0], 1), dtype=torch.bool, device=self._device)
            with torch.inference_mode():
                pooled = net.model.audio_model(input_features=mel, is_longer=is_longer).pooler_output
                out.append(_unit(torch, net.model.audio_projection(pooled)))
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
            ``vector`` [shape=(dim,)]: the unit-length mean of the chunks' embeddings; no tags.

        Raises
        ------
        BadAudio
            for audio that is not mono, too short or not finite.
        EncoderUnavailable
            when torch or transformers is missing, or the checkpoint cannot be read.
        """
        return self.embed_batch([y], sr=sr)[0]

    def embed_batch(self, ys: Sequence[np.ndarray], *, sr: int) -> list[AudioEmbedding]:
        """Embed several tracks, their chunks run through the network together.

        Same results as :meth:`embed` on each (to float rounding), in the same order.
        """
        per_track = [self.chunks(y, sr=sr) for y in ys]
        if not per_track:
            return []
        vectors = self._embed_chunks([c for chunks in per_track for c in chunks])
        bounds = np.cumsum([0] + [len(c) for c in per_track])
        return [
            AudioEmbedding(vector=_unit_np(vectors[lo:hi].mean(axis=0)), tags=None, tag_names=None, n_patches=int(hi - lo))
            for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
        ]

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Embed text queries into the audio embeddings' space (CLAP's text tower).

        Parameters
        ----------
        texts : sequence of str
            E.g. ``["calm solo piano", "distorted guitars and fast drums"]``; each is cut to
            ``params.max_text_tokens`` tokens.

        Returns
        -------
        np.ndarray [shape=(len(texts), dim), dtype=float32]
            Unit-length rows: a dot product with an audio ``vector`` is their cosine similarity.

        Raises
        ------
        EncoderUnavailable
            when torch or transformers is missing, or the checkpoint cannot be read.
        """
        if isinstance(texts, str):
            raise TypeError("embed_text takes a sequence of texts; wrap a single text in a list")
        texts = list(texts)
        net = self._net()
        if not texts:
            return np.zeros((0, self.description.dim), dtype=np.float32)
        torch = net.torch
        out = []
        step = self.params.batch_size
        for i in range(0, len(texts), step):
            tokens = net.tokenizer(
                texts[i:i + step],
                padding=True,
                truncation=True,
                max_length=self.params.max_text_tokens,
                return_tensors="pt",
            )
            with torch.inference_mode():
                pooled = net.model.text_model(
                    input_ids=tokens["input_ids"].to(self._device),
                    attention_mask=tokens["attention_mask"].to(self._device),
                ).pooler_output
                out.append(_unit(torch, net.model.text_projection(pooled)))
        return np.concatenate(out)


def _unit(torch: Any, x: torch.Tensor) -> np.ndarray:
    """Rows of ``x`` scaled to unit length, as float32 numpy."""
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy()


def _unit_np(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 0 else v).astype(np.float32)
