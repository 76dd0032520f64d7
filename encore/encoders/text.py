"""Text encoders: free text to unit-length vectors, registered by name and loaded lazily.

::

    from encore.encoders.text import TEXT_ENCODERS, get_text_encoder

    TEXT_ENCODERS["wordllama"].dim           # 256, no weights read
    enc = get_text_encoder("wordllama")      # still nothing read
    enc.embed(["sad slow piano"])            # weights load here, once: float32 [1, 256]

    st = get_text_encoder("sentence-transformers", path="~/models/all-MiniLM-L6-v2")   # optional extra

``wordllama`` is the default and a core dependency: its PyPI wheel ships its weights (a 32k x
256 token-embedding table, 16 MB), so it runs offline and without torch. Sentence-transformers
models embed better but need the ``text`` extra (torch) and a model directory on disk.
Importing this module imports neither.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from encore.encoders.base import EncoderUnavailable

__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "SENTENCE_TRANSFORMERS",
    "TEXT_ENCODERS",
    "WORDLLAMA",
    "SentenceTransformerEncoder",
    "TextEncoder",
    "TextEncoderDescription",
    "WordLlamaEncoder",
    "describe_text_encoder",
    "get_text_encoder",
]


@dataclass(frozen=True, slots=True)
class TextEncoderDescription:
    """Everything about a text encoder that is known without loading it."""

    name: str
    """Registry key, e.g. ``"wordllama"``."""
    dim: int
    """Length of each embedding row."""
    licence: str
    """Licence of the weights (and of the code they come with)."""
    weights_source: str
    """Where the weights come from, e.g. a PyPI package and the path inside it."""
    description: str


@runtime_checkable
class TextEncoder(Protocol):
    """A text embedding model. Implementations load their weights lazily, on first use."""

    @property
    def description(self) -> TextEncoderDescription: ...

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None:
        """Read the weights now rather than on the first :meth:`embed` (e.g. at server start)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``: float32 [shape=(len(texts), dim)], unit-length rows (see implementations)."""
        ...


WORDLLAMA = TextEncoderDescription(
    name="wordllama",
    dim=256,
    licence="MIT (wordllama 0.4, code and weights)",
    weights_source="PyPI wheel wordllama, wordllama/weights/l2_supercat_256.safetensors and its tokenizer",
    description=(
        "WordLlama l2_supercat: LLM token embeddings distilled into a 32k x 256 table, "
        "mean-pooled over a text's tokens (no context, no word order); fast, small, offline."
    ),
)

SENTENCE_TRANSFORMERS = TextEncoderDescription(
    name="sentence-transformers",
    dim=384,
    licence="that of the model directory used (e.g. Apache-2.0 for all-MiniLM-L6-v2)",
    weights_source=(
        "a local sentence-transformers model directory (modules.json, config, weights, tokenizer), "
        "e.g. sentence-transformers/all-MiniLM-L6-v2 downloaded from the Hub"
    ),
    description="A sentence-transformers model: a transformer, pooled, unit-length rows.",
)

_WORDLLAMA_DIMS = (64, 128, 256)
_WORDLLAMA_CONFIG = "l2_supercat"


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length, as float32; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _as_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed takes a sequence of texts; wrap a single text in a list")
    texts = list(texts)
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, not {type(text).__name__}")
    return texts


class _Lazy:
    """Loads a model once, on first use, even when several threads ask at the same time."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        self._net()

    def _net(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._read()
        return self._model

    def _read(self) -> Any:
        raise NotImplementedError


class WordLlamaEncoder(_Lazy):
    """The WordLlama model shipped inside the ``wordllama`` wheel, read with downloads disabled.

    Parameters
    ----------
    dim : int
        64, 128 or 256. The model is Matryoshka-trained, so its first ``dim`` components are a
        smaller embedding of their own.
    batch_size : int
        Texts per tokenizer call.
    """

    def __init__(self, *, dim: int = WORDLLAMA.dim, batch_size: int = 256) -> None:
        super().__init__()
        if dim not in _WORDLLAMA_DIMS:
            raise ValueError(f"wordllama dim must be one of {_WORDLLAMA_DIMS}, not {dim}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.description: TextEncoderDescription = WORDLLAMA if dim == WORDLLAMA.dim else replace(WORDLLAMA, dim=dim)
        self._batch_size = batch_size

    def _read(self) -> Any:
        try:
            import wordllama
        except ImportError as err:
            raise EncoderUnavailable(f"the wordllama text encoder needs {err.name}; pip install wordllama") from err
        package = Path(wordllama.__file__).parent
        # wordllama looks for weights in <package>/weights/, which the wheel ships, but for the
        # tokenizer in <package>/tokenizer/ while the wheel ships <package>/tokenizers/. Its cache
        # lookup (<cache_dir>/tokenizers/) finds the shipped file when the package itself is the
        # cache, so nothing is copied or written, and with downloads disabled nothing is fetched.
        trunc = None if self.description.dim == WORDLLAMA.dim else self.description.dim
        try:
            return wordllama.WordLlama.load(
                config=_WORDLLAMA_CONFIG,
                cache_dir=package,
                dim=WORDLLAMA.dim,
                trunc_dim=trunc,
                disable_download=True,
            )
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise EncoderUnavailable(f"cannot load the WordLlama weights shipped in {package}: {err}") from err

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts (the mean of their token embeddings).

        Parameters
        ----------
        texts : sequence of str

        Returns
        -------
        np.ndarray [shape=(len(texts), dim), dtype=float32]
            Unit-length rows, except an all-zero row for a text with no tokens (e.g. ``""``).

        Raises
        ------
        EncoderUnavailable
            when the wordllama package or its weights cannot be found.
        """
        texts = _as_list(texts)
        model = self._net()
        if not texts:
            return np.zeros((0, self.description.dim), dtype=np.float32)
        # norm=False: wordllama's own normalisation divides an empty text's zero vector by zero.
        raw = model.embed(texts, norm=False, batch_size=self._batch_size)
        return _unit_rows(raw)


class SentenceTransformerEncoder(_Lazy):
    """A sentence-transformers model read from a local directory (the ``text`` extra: torch).

    Parameters
    ----------
    path : str or Path
        A directory written by ``SentenceTransformer.save`` (or downloaded from the Hub with
        ``hf download sentence-transformers/all-MiniLM-L6-v2 --local-dir <dir>``). Nothing is read
        until the first call that needs it, and nothing is ever fetched.
    dim : int
        The model's embedding size (384 for all-MiniLM-L6-v2). Loading a model of another size fails.
    batch_size : int
    device : str
        A torch device, e.g. ``"cpu"`` or ``"cuda"``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        dim: int = SENTENCE_TRANSFORMERS.dim,
        batch_size: int = 32,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.description: TextEncoderDescription = (
            SENTENCE_TRANSFORMERS if dim == SENTENCE_TRANSFORMERS.dim else replace(SENTENCE_TRANSFORMERS, dim=dim)
        )
        self._path = Path(path).expanduser()
        self._batch_size = batch_size
        self._device = device

    def _read(self) -> Any:
        try:
            import sentence_transformers
        except ImportError as err:
            raise EncoderUnavailable(
                f"the sentence-transformers text encoder needs {err.name}; "
                "install the extra with: pip install -e '.[text]'"
            ) from err
        path = self._path
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise EncoderUnavailable(
                f"{path} is not a sentence-transformers model directory (no modules.json or config.json); "
                "save or download one there, e.g. hf download sentence-transformers/all-MiniLM-L6-v2 --local-dir <dir>"
            )
        try:
            model = sentence_transformers.SentenceTransformer(str(path), device=self._device, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise EncoderUnavailable(f"cannot load a sentence-transformers model from {path}: {err}") from err
        # Renamed in sentence-transformers 6; the old name still works there, with a warning.
        dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = dimension()
        if dim != self.description.dim:
            raise EncoderUnavailable(f"{path} embeds into {dim} dimensions, not {self.description.dim}")
        return model.eval()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        texts : sequence of str
            Each is cut to the model's maximum sequence length.

        Returns
        -------
        np.ndarray [shape=(len(texts), dim), dtype=float32]
            Unit-length rows.

        Raises
        ------
        EncoderUnavailable
            when sentence-transformers is missing or the model cannot be read.
        """
        texts = _as_list(texts)
        model = self._net()
        if not texts:
            return np.zeros((0, self.description.dim), dtype=np.float32)
        out = model.encode(
            texts,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return _unit_rows(out)


DEFAULT_TEXT_ENCODER = WORDLLAMA.name

#: Every text encoder Encore knows, by name.
TEXT_ENCODERS: dict[str, TextEncoderDescription] = {
    WORDLLAMA.name: WORDLLAMA,
    SENTENCE_TRANSFORMERS.name: SENTENCE_TRANSFORMERS,
}

_CLASSES: dict[str, type[Any]] = {
    WORDLLAMA.name: WordLlamaEncoder,
    SENTENCE_TRANSFORMERS.name: SentenceTransformerEncoder,
}


def _known(name: str) -> None:
    if name not in TEXT_ENCODERS:
        known = ", ".join(sorted(TEXT_ENCODERS))
        raise ValueError(f"unknown text encoder {name!r}; known text encoders: {known}")


def describe_text_encoder(name: str = DEFAULT_TEXT_ENCODER) -> TextEncoderDescription:
    """The description of text encoder ``name``, without loading it.

    Raises
    ------
    ValueError
        for an unknown name; the message lists the known ones.
    """
    _known(name)
    return TEXT_ENCODERS[name]


def get_text_encoder(name: str = DEFAULT_TEXT_ENCODER, **options: Any) -> TextEncoder:
    """A new text encoder ``name``; its weights load on first use.

    Parameters
    ----------
    name : str
        A key of :data:`TEXT_ENCODERS`.
    **options
        Passed to the encoder's constructor: ``"wordllama"`` takes ``dim`` and ``batch_size``;
        ``"sentence-transformers"`` needs ``path=Path(...)`` and takes ``dim``, ``batch_size``
        and ``device``.

    Raises
    ------
    ValueError
        for an unknown name; the message lists the known ones.
    """
    _known(name)
    encoder: TextEncoder = _CLASSES[name](**options)
    return encoder
