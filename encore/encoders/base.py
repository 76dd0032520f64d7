"""What every audio encoder is: a description (known without loading anything) and an ``embed`` method.

Descriptions let a collection schema ask for a vector size, or the API list encoders, without
touching weights; weights load on an encoder's first ``embed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from encore.errors import EncoreError

__all__ = ["AudioEmbedding", "AudioEncoder", "EncoderDescription", "EncoderUnavailable"]


class EncoderUnavailable(EncoreError):
    """An encoder's weights or the package that ships them cannot be found or read (HTTP 500, exit 1)."""


@dataclass(frozen=True, slots=True)
class EncoderDescription:
    """Everything about an encoder that is known without loading it."""

    name: str
    """Registry key and vector-space name, e.g. ``"musicnn"``."""
    dim: int
    """Length of :attr:`AudioEmbedding.vector`."""
    sample_rate: int
    """Rate the network was trained at; decode audio at this rate to skip resampling."""
    licence: str
    """Licence of the weights (and of the code they come with)."""
    weights_source: str
    """Where the weights come from, e.g. a PyPI package and the path inside it."""
    description: str
    tag_names: tuple[str, ...] | None = None
    """Names of :attr:`AudioEmbedding.tags`, in order; ``None`` when the encoder has no tag head."""

    @property
    def n_tags(self) -> int:
        return len(self.tag_names) if self.tag_names else 0


@dataclass(frozen=True, slots=True, eq=False)
class AudioEmbedding:
    """What an encoder makes of one track or clip.

    Attributes
    ----------
    vector : np.ndarray [shape=(dim,), dtype=float32]
        The embedding, not normalised (use cosine distance, or normalise before dot products).
    tags : np.ndarray [shape=(n_tags,), dtype=float32] or None
        Tag probabilities in [0, 1], in the order of ``tag_names``.
    tag_names : tuple[str, ...] or None
    n_patches : int
        How many analysis windows were averaged into ``vector`` and ``tags``.
    """

    vector: np.ndarray
    tags: np.ndarray | None
    tag_names: tuple[str, ...] | None
    n_patches: int = 1

    def top_tags(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable tags, most probable first, as ``(name, probability)``."""
        if self.tags is None or self.tag_names is None:
            return []
        order = np.argsort(-self.tags, kind="stable")[:k]
        return [(self.tag_names[i], float(self.tags[i])) for i in order]


@runtime_checkable
class AudioEncoder(Protocol):
    """An audio embedding model. Implementations load their weights lazily, on first use."""

    @property
    def description(self) -> EncoderDescription: ...

    def embed(self, y: np.ndarray, *, sr: int) -> AudioEmbedding:
        """Embed one mono signal ``y`` [shape=(n,)] sampled at ``sr`` Hz."""
        ...

    def embed_batch(self, ys: Sequence[np.ndarray], *, sr: int) -> list[AudioEmbedding]:
        """Embed several signals at once (faster than one by one); same results as :meth:`embed`."""
        ...
