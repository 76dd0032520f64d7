# ruff: noqa: T201  (a command-line script: printing is its output)
"""Compute ``tests/data/musicnn_reference.npz`` with real TensorFlow running musicnn's own graph.

Run once, by hand, whenever the reference must be remade; CI never runs it (it needs
TensorFlow, which Encore does not depend on). It was made with tensorflow-cpu 2.15.1,
librosa 0.10.2.post1, numpy 1.26.4 and musicnn 0.1.0 on Python 3.11::

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install "tensorflow-cpu==2.15.*" "librosa==0.10.*" "numpy<2"
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfenv/bin/python scripts/make_musicnn_reference.py [--out tests/data/musicnn_reference.npz]

What it stores (all float32 unless said):

``signal_seeds``, ``signal_seconds``, ``signal_tones`` [3, 3, 2] (Hz, amplitude)
    The recipe of three synthetic signals (seeded noise, gated in a rhythm, plus tones).
    Storing the recipe instead of the samples keeps the file small;
    ``tests/encoders/test_musicnn.py`` rebuilds them with the same code and checks
    ``signal_head`` / ``signal_rms`` first, so a drifting recipe fails loudly.
``mel_head``, ``mel_tail`` [96, 24]
    ``librosa.feature.melspectrogram`` (power, slaney, ``pad_mode="reflect"``) of signal 0:
    its first and last 24 frames, where centring and padding matter most.
``patch`` [187, 96], ``patch_logits`` [50], ``patch_probs`` [50], ``patch_penultimate`` [200]
    One network input (signal 0's first patch, log-compressed as musicnn does) and what
    TensorFlow makes of it: checks the network apart from the features.
``probs_<i>`` [P, 50], ``penultimate_<i>`` [P, 200], ``logits_<i>`` [P, 50]
    Per-patch outputs for signal ``i``, from musicnn's non-overlapping 187-frame patches.

Besides, it checks that its own feature pipeline reproduces musicnn's ``extractor()`` run on
a WAV file of signal 0 (with librosa's current default padding, which is what extractor uses),
so the reference is musicnn's, not a re-implementation's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

SR = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
N_FRAMES = 187

#: (seed, seconds, ((Hz, amplitude) x 3)); 7, 9.5 and 6.2 s give 2, 3 and 2 patches.
RECIPES = [
    (1, 7.0, ((220.0, 0.30), (330.0, 0.20), (440.0, 0.10))),
    (2, 9.5, ((110.0, 0.40), (523.25, 0.15), (1760.0, 0.05))),
    (3, 6.2, ((82.4, 0.50), (987.77, 0.10), (2637.0, 0.03))),
]


def reference_signal(seed: int, seconds: float, tones, *, sr: int = SR) -> np.ndarray:
    """Seeded noise gated on a 1/8 s grid plus steady tones; float64 maths, float32 out.

    Mirrored in tests/encoders/test_musicnn.py: keep the two identical.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    step = sr // 8
    gate = np.repeat(rng.random(n // step + 1) < 0.5, step)[:n]
    y = 0.1 * rng.standard_normal(n) * (0.2 + 0.8 * gate)
    for hz, amp in tones:
        y += amp * np.sin(2 * np.pi * hz * t)
    return y.astype(np.float32)


def log_mel(y: np.ndarray, *, pad_mode: str) -> np.ndarray:
    """musicnn's ``batch_data`` features: (frames, mels) float32, via float16 as musicnn stores them."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=y, sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS, pad_mode=pad_mode
    ).T
    mel = mel.astype(np.float16)
    return np.log10(10000 * mel + 1)


def patches(rep: np.ndarray) -> np.ndarray:
    """Non-overlapping 187-frame patches, as musicnn's ``batch_data`` cuts them (tail dropped)."""
    starts = range(0, rep.shape[0] - N_FRAMES + 1, N_FRAMES)
    return np.stack([rep[s:s + N_FRAMES] for s in starts]).astype(np.float32)


def build_graph():
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_features, penultimate = models.define_model(x, is_training, "MSD_musicnn", 50)
        probs = tf.nn.sigmoid(logits)
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    import musicnn

    ckpt = os.path.join(os.path.dirname(musicnn.__file__), "MSD_musicnn") + "/"
    tf.compat.v1.train.Saver().restore(sess, ckpt)

    def run(batch: np.ndarray):
        return sess.run([logits, probs, penultimate], feed_dict={x: batch, is_training: False})

    return run


def check_against_extractor(y: np.ndarray, run) -> None:
    """musicnn's own extractor on a WAV of ``y`` must agree with this script's pipeline."""
    import soundfile as sf
    from musicnn.extractor import extractor

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "signal0.wav"
        sf.write(wav, y, SR, subtype="FLOAT")
        taggram, labels, features = extractor(str(wav), model="MSD_musicnn", extract_features=True)
    _, probs, pen = run(patches(log_mel(y, pad_mode="constant")))
    err_tags = float(np.abs(taggram - probs).max())
    # extractor() only refreshes 'penultimate' for the first batch (it reuses the first
    # batch's array in its loop), so compare the first patch's only.
    err_pen = float(np.abs(features["penultimate"][0] - pen[0]).max())
    print(f"extractor() vs this pipeline: taggram {err_tags:.2e}, penultimate[0] {err_pen:.2e}")
    if err_tags > 1e-6 or err_pen > 1e-5:
        sys.exit("this script's features do not reproduce musicnn's extractor()")
    import musicnn.configuration as config

    if list(labels) != list(config.MSD_LABELS):
        sys.exit("extractor() labels differ from musicnn.configuration.MSD_LABELS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "tests/data/musicnn_reference.npz"))
    args = ap.parse_args()

    import librosa
    import tensorflow as tf

    run = build_graph()
    out: dict[str, np.ndarray] = {
        "signal_seeds": np.array([r[0] for r in RECIPES], dtype=np.int64),
        "signal_seconds": np.array([r[1] for r in RECIPES], dtype=np.float64),
        "signal_tones": np.array([r[2] for r in RECIPES], dtype=np.float64),
        "versions": np.array([f"tensorflow {tf.__version__}", f"librosa {librosa.__version__}",
                              f"numpy {np.__version__}"]),
    }
    signals = [reference_signal(seed, sec, tones) for seed, sec, tones in RECIPES]
    out["signal_head"] = np.stack([y[:64] for y in signals])
    out["signal_rms"] = np.array([np.sqrt(np.mean(np.square(y, dtype=np.float64))) for y in signals])

    mel = librosa.feature.melspectrogram(y=signals[0], sr=SR, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS,
                                         pad_mode="reflect")
    out["mel_head"], out["mel_tail"] = mel[:, :24].astype(np.float32), mel[:, -24:].astype(np.float32)
    out["mel_n_frames"] = np.array(mel.shape[1])

    for i, y in enumerate(signals):
        batch = patches(log_mel(y, pad_mode="reflect"))
        logits, probs, pen = run(batch)
        out[f"logits_{i}"], out[f"probs_{i}"], out[f"penultimate_{i}"] = logits, probs, pen
        if i == 0:
            out["patch"] = batch[0]
            out["patch_logits"], out["patch_probs"], out["patch_penultimate"] = logits[0], probs[0], pen[0]
        print(f"signal {i}: {len(y) / SR:.1f} s, {len(batch)} patches, top tags",
              [int(k) for k in np.argsort(-probs.mean(0))[:3]])

    check_against_extractor(signals[0], run)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
