"""An encoder's tag layer, read as a linear map from its embedding: what the world tier needs of it.

musicnn's MSD model ends ``tags = sigmoid(h @ kernel + bias)`` over its 200-d penultimate ``h``,
which leaves a batch normalisation (``h = gamma * (relu(z) - mean) / sqrt(var + eps) + beta``). So
``beta`` and ``gamma`` are the typical value and spread of each embedding dimension, and
``beta - gamma * mean / sqrt(var + eps)`` the least value it can take. The world tier centres its
``tags`` space on the tags of that typical embedding, and the sample generator
(:mod:`indexers.sample`) draws embeddings around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from encore.encoders.tfcheckpoint import read_checkpoint

#: Batch-norm epsilon of tf.compat.v1.layers.batch_normalization.
_BN_EPS = 1e-3


@dataclass(frozen=True, slots=True, eq=False)
class TagHead:
    """An encoder's tag layer and the typical distribution of the embedding it reads.

    Attributes
    ----------
    names : tag names, in output order
    kernel : np.ndarray [shape=(dim, n_tags)]
    bias : np.ndarray [shape=(n_tags,)]
    mean, std : np.ndarray [shape=(dim,)]
        typical value and spread of each embedding dimension
    floor : np.ndarray [shape=(dim,)]
        the least value each dimension can take (the ReLU before the batch norm)
    """

    names: tuple[str, ...]
    kernel: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    floor: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.kernel.shape[0])

    def probabilities(self, h: np.ndarray) -> np.ndarray:
        """Tag probabilities [shape=(n, n_tags)] of embeddings ``h`` [shape=(n, dim)]."""
        return 1.0 / (1.0 + np.exp(-(h @ self.kernel + self.bias)))

    def reference(self) -> np.ndarray:
        """The tags of a typical embedding: the centre of the ``tags`` space."""
        return self.probabilities(self.mean[None, :])[0]


def musicnn_tag_head(checkpoint: str | Path, *, names: tuple[str, ...]) -> TagHead:
    """The tag head of a musicnn checkpoint (``dense_1`` over ``batch_normalization_10``).

    Parameters
    ----------
    checkpoint : the checkpoint prefix or directory (as :func:`read_checkpoint` takes it)
    names : the model's tag names, in output order
    """
    v = read_checkpoint(checkpoint)
    kernel, bias = v["dense_1/kernel"].astype(np.float64), v["dense_1/bias"].astype(np.float64)
    bn = "batch_normalization_10"
    gamma, beta = v[f"{bn}/gamma"].astype(np.float64), v[f"{bn}/beta"].astype(np.float64)
    mean, var = v[f"{bn}/moving_mean"].astype(np.float64), v[f"{bn}/moving_variance"].astype(np.float64)
    if kernel.shape != (gamma.size, len(names)):
        raise ValueError(f"tag layer of shape {kernel.shape} does not fit {gamma.size}-d embeddings and "
                         f"{len(names)} tags")
    return TagHead(names=names, kernel=kernel, bias=bias, mean=beta, std=np.abs(gamma),
                   floor=beta - gamma * mean / np.sqrt(var + _BN_EPS))
