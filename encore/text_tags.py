"""Free text to weights over the tag vocabulary, for a query in the world's ``tags`` space.

Each tag is embedded once, from a short description of what it means ("Hip-Hop" -> "hip hop rap
beats rapper", from ``encore/data/tag_descriptions.json``), since a bare tag name such as
"00s" or "Mellow" says little to a text encoder. A query is embedded with the same encoder, its
cosine similarity to every tag computed, and the most similar tags kept::

    mapper = TagMapper(get_text_encoder("wordllama"), MSD_TAGS)
    mapper.map("sad slow piano")          # {"beautiful": 1.0, "Mellow": 0.85, "sad": 0.74, "blues": 0.22}
    world.tag_space.profile(mapper.map("heavy guitar riffs"))

Weights are a softmax of the similarities at :attr:`TagMapperParams.temperature`, scaled so the
most similar tag weighs 1: only their ratios matter to a cosine query. Artist names should be
taken out of the text before it gets here: a bag-of-tokens encoder hears "punk" in
"like daft punk".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from encore.encoders.text import TextEncoder

__all__ = ["TagMapper", "TagMapperParams", "TagSimilarities", "default_tag_descriptions"]


@dataclass(frozen=True, slots=True)
class TagMapperParams:
    """How similarities become weights."""

    temperature: float = 0.15
    """Softmax temperature over cosine similarities: a tag ``temperature`` less similar than the
    best one weighs ``1/e`` of it. Lower keeps fewer tags."""
    top_k: int = 6
    """Most tags given a weight."""
    min_weight: float = 0.1
    """Tags weighing less than this (relative to the best, which weighs 1) are dropped."""
    min_similarity: float = 0.25
    """Tags less similar than this to the text are never kept; text close to no tag maps to ``{}``."""

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, not {self.temperature}")
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, not {self.top_k}")
        if not 0 <= self.min_weight <= 1:
            raise ValueError(f"min_weight must be in [0, 1], not {self.min_weight}")


@dataclass(frozen=True, slots=True, eq=False)
class TagSimilarities:
    """Why a text mapped to the weights it did.

    Attributes
    ----------
    text : str
    tag_names : tuple[str, ...]
    similarities : np.ndarray [shape=(n_tags,), dtype=float32]
        Cosine similarity of the text to each tag's description, in ``tag_names`` order
        (all zero for a text the encoder finds no token in).
    """

    text: str
    tag_names: tuple[str, ...]
    similarities: np.ndarray

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most similar tags, most similar first, as ``(name, similarity)``."""
        order = np.argsort(-self.similarities, kind="stable")[:k]
        return [(self.tag_names[i], float(self.similarities[i])) for i in order]


def default_tag_descriptions() -> dict[str, str]:
    """Encore's descriptions of musicnn's 50 MSD tags, from ``encore/data/tag_descriptions.json``."""
    text = resources.files("encore").joinpath("data/tag_descriptions.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


class TagMapper:
    """Maps free text to weights over a tag vocabulary, through a text encoder.

    Parameters
    ----------
    encoder : TextEncoder
        Embeds both the tag descriptions and the queries.
    tag_names : sequence of str
        The vocabulary, e.g. musicnn's ``MSD_TAGS``; weights are keyed by these names.
    descriptions : mapping of str to str, optional
        Text to embed for each tag; defaults to :func:`default_tag_descriptions`. A tag without
        one is embedded by its name.
    params : TagMapperParams, optional

    Nothing is embedded until the first :meth:`map` or :meth:`similarities`.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        tag_names: Sequence[str],
        *,
        descriptions: Mapping[str, str] | None = None,
        params: TagMapperParams | None = None,
    ) -> None:
        self.tag_names = tuple(tag_names)
        if not self.tag_names:
            raise ValueError("a TagMapper needs at least one tag")
        if len(set(self.tag_names)) != len(self.tag_names):
            raise ValueError("tag names must be distinct")
        self.encoder = encoder
        self.params = params or TagMapperParams()
        known = default_tag_descriptions() if descriptions is None else dict(descriptions)
        self.descriptions: dict[str, str] = {name: known.get(name) or name for name in self.tag_names}
        self._tags: np.ndarray | None = None
        self._lock = threading.Lock()

    def _tag_matrix(self) -> np.ndarray:
        """Unit embeddings of the tags' descriptions: float32 [n_tags, dim]."""
        if self._tags is None:
            with self._lock:
                if self._tags is None:
                    self._tags = self.encoder.embed([self.descriptions[n] for n in self.tag_names])
        return self._tags

    def similarities(self, text: str) -> TagSimilarities:
        """Cosine similarity of ``text`` to every tag's description."""
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        tags = self._tag_matrix()
        if not text.strip():
            sims = np.zeros(len(self.tag_names), dtype=np.float32)
        else:
            sims = (tags @ self.encoder.embed([text])[0]).astype(np.float32)
        return TagSimilarities(text=text, tag_names=self.tag_names, similarities=sims)

    def weights(self, similarities: TagSimilarities) -> dict[str, float]:
        """Tag weights from similarities, best first; the best weighs 1. ``{}`` when no tag is close."""
        p = self.params
        sims = similarities.similarities.astype(np.float64)
        best = float(sims.max())
        if best < p.min_similarity:
            return {}
        w = np.exp((sims - best) / p.temperature)
        order = np.argsort(-sims, kind="stable")[: p.top_k]
        return {
            self.tag_names[i]: round(float(w[i]), 4)
            for i in order
            if w[i] >= p.min_weight and sims[i] >= p.min_similarity
        }

    def map(self, text: str) -> dict[str, float]:
        """Weights over the tags for ``text``, e.g. ``{"sad": 1.0, "Mellow": 0.8}``, best first.

        ``{}`` for blank text or text close to no tag (below ``params.min_similarity``).
        """
        return self.weights(self.similarities(text))
