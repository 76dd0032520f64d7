# ruff: noqa: T201  (a command-line script: printing is its output)
"""Convert one of openl3's Keras audio weight files (``.h5``) to the ``.npz`` that ``encore.encoders.openl3`` reads.

Needs h5py and numpy only, no TensorFlow::

    python scripts/convert_openl3_weights.py openl3_audio_mel128_music.h5 [-o openl3_mel128_music.npz]

Where the ``.h5`` files come from (on a machine that is online; Encore never downloads them):
the openl3 package (MIT licence) keeps them gzipped on the ``models`` branch of its GitHub
repository (marl/openl3), as ``openl3_audio_<input_repr>_<content_type>-v0_4_0.h5.gz``
(gunzip first); building openl3 0.4.2 from source downloads and unpacks them into its package
directory too.

How the file is read: openl3's audio models are Keras models saved with ``save_weights``;
the root (or its ``model_weights`` group, for a whole saved model) lists ``layer_names`` in
model order, and each layer's group lists ``weight_names``. Keras loads them by that order,
so this script does too: it keeps the layers whose weights are a convolution (``kernel``,
``bias``) or a batch norm (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``), skips
any others (e.g. kapre spectrogram layers in pre-0.4 files, reported on stderr), and requires
OpenL3's sequence: batch norm, then seven times convolution + batch norm, then the last
convolution (``audio_embedding_layer``).

Verified: the sequence and shapes against openl3's ``models.py`` (0.4.x), and the whole path
on an ``.h5`` that tests/encoders/test_openl3.py writes in Keras 2's ``save_weights`` layout
(``layer_names`` and ``weight_names`` attributes, as openl3's own weight-patching script reads
them).
Not verified here: a real openl3 ``.h5`` (none could be downloaded where this was written),
nor embeddings against openl3 running in TensorFlow. Check one before relying on it: run openl3
on a clip with ``frontend="kapre"``, ``center=False``, ``hop_size=0.5`` and compare its
per-window output with ``OpenL3Encoder.forward(log_spectrogram(windows))``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import h5py
import numpy as np

# encore.encoders.openl3.WEIGHTS_FORMAT (tests/encoders/test_openl3.py checks they agree),
# written out rather than imported so that the script runs without Encore installed.
WEIGHTS_FORMAT = "encore.openl3/1"
_CONV = ("kernel", "bias")
_BN = ("gamma", "beta", "moving_mean", "moving_variance")
_NAME = re.compile(r"openl3_audio_(mel128|mel256|linear)_(music|env)")


def _decode(names: object) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(names)]


def _short(weight_name: str) -> str:
    """``conv2d_3/kernel:0`` -> ``kernel``."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def read_layers(path: Path) -> tuple[list[tuple[str, str, dict[str, np.ndarray]]], list[str]]:
    """The weighted layers of a Keras ``.h5``, in model order, as ``(kind, layer name, {short name: array})``.

    Returns the layers kept ("conv" or "bn") and the names of those skipped.
    """
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path} is not a Keras weights file (no layer_names)")
        kept, skipped = [], []
        for layer in _decode(root.attrs["layer_names"]):
            group = root[layer]
            names = _decode(group.attrs.get("weight_names", []))
            if not names:
                continue  # inputs, activations, pooling
            arrays = {_short(n): np.asarray(group[n], dtype=np.float32) for n in names}
            if set(arrays) == set(_CONV) and arrays["kernel"].ndim == 4:
                kept.append(("conv", layer, arrays))
            elif set(arrays) == set(_BN):
                kept.append(("bn", layer, arrays))
            else:
                skipped.append(f"{layer} ({', '.join(names)})")
        return kept, skipped


def convert(layers: list[tuple[str, str, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Map OpenL3's layer sequence to the encoder's names; raises ValueError for any other sequence."""
    kinds = [kind for kind, _, _ in layers]
    expected = ["bn"] + ["conv", "bn"] * 7 + ["conv"]
    if kinds != expected:
        found = ", ".join(f"{kind}:{name}" for kind, name, _ in layers)
        raise ValueError(f"not OpenL3's audio network: expected {len(expected)} layers "
                         f"(bn, 7 x conv+bn, conv), found {len(layers)}: {found}")
    out: dict[str, np.ndarray] = {}
    conv = bn = 0
    for kind, _, arrays in layers:
        if kind == "conv":
            conv += 1
            prefix = f"conv{conv}"
        else:
            prefix = f"bn{bn}"  # bn0 is the input's, bn<i> follows conv<i>
            bn += 1
        for key, value in arrays.items():
            out[f"{prefix}.{key}"] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("h5", type=Path, help="openl3_audio_<input_repr>_<content_type>.h5")
    parser.add_argument("-o", "--out", type=Path, help="the .npz to write (default: next to the .h5)")
    parser.add_argument("--input-repr", choices=("mel128", "mel256", "linear"),
                        help="default: read from the file name")
    parser.add_argument("--content-type", choices=("music", "env"), help="default: read from the file name")
    args = parser.parse_args(argv)

    match = _NAME.search(args.h5.name)
    input_repr = args.input_repr or (match.group(1) if match else None)
    content_type = args.content_type or (match.group(2) if match else None)
    if input_repr is None or content_type is None:
        parser.error("cannot tell the model from the file name; pass --input-repr and --content-type")

    layers, skipped = read_layers(args.h5)
    for name in skipped:
        print(f"skipped {name}", file=sys.stderr)
    weights = convert(layers)
    if layers[-1][1] != "audio_embedding_layer":
        print(f"note: the last convolution is named {layers[-1][1]!r}, not 'audio_embedding_layer'", file=sys.stderr)
    weights["format"] = np.array(WEIGHTS_FORMAT)
    weights["input_repr"] = np.array(input_repr)
    weights["content_type"] = np.array(content_type)
    out = args.out or args.h5.with_suffix(".npz")
    np.savez(out, **weights)
    widths = [int(weights[f"conv{i}.kernel"].shape[-1]) for i in (2, 4, 6, 8)]
    n_params = sum(v.size for k, v in weights.items() if v.dtype == np.float32)
    print(f"wrote {out}: OpenL3 {input_repr}/{content_type}, channels {widths}, {n_params:,} numbers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
