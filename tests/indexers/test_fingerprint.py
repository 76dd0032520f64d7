"""Landmark fingerprints: determinism, hash space, density, and the speed hypothesis."""

from __future__ import annotations

import numpy as np
import pytest

from encore import augment
from indexers.fingerprint import (
    HASH_SPACE,
    PEAK_KEY_OFFSET,
    PEAK_KEY_SPAN,
    FingerprintParams,
    Peaks,
    analyze,
    analyze_catalog,
    analyze_query,
    landmark_peaks,
    landmarks,
    strongest,
    unique_sorted,
)
from tests.utils.audio import synth_track

P = FingerprintParams()


def _track(seed: int, seconds: float = 20.0) -> np.ndarray:
    return synth_track(seed, seconds=seconds, sr=P.sr)


def _shared(a: np.ndarray, b: np.ndarray) -> float:
    """Share of ``a``'s distinct hashes also in ``b``."""
    ua = np.unique(a)
    return float(np.isin(ua, b).mean())


def test_landmarks_are_deterministic_and_in_hash_space():
    y = _track(1)
    lm1, env1 = analyze_catalog(y, params=P)
    lm2, env2 = analyze_catalog(y.copy(), params=P)
    assert lm1.hashes.size > 1000
    np.testing.assert_array_equal(lm1.hashes, lm2.hashes)
    np.testing.assert_array_equal(lm1.frames, lm2.frames)
    assert int(lm1.hashes.max()) < HASH_SPACE
    assert env1.shape[1] == P.env_bands and env1.shape[0] > lm1.frames.max()
    np.testing.assert_array_equal(env1, env2)


def test_peak_density_follows_params():
    y = _track(2, seconds=30.0)
    sparse = analyze_query(y, params=FingerprintParams(query_peaks_per_second=10.0)).peaks
    dense = analyze_query(y, params=FingerprintParams(query_peaks_per_second=40.0)).peaks
    assert 5.0 <= sparse.frames.size / 30.0 <= 12.0
    assert dense.frames.size > 2.5 * sparse.frames.size


def test_query_landmarks_cover_catalog_landmarks_of_the_same_audio():
    y = _track(3)
    ref, _ = analyze_catalog(y, params=P)
    hop = P.hop_length
    in_window = ref.hashes[(ref.frames >= 160 + 3) & (ref.frames < 320 - 70)]
    # A clip cut on a frame boundary finds nearly every catalog landmark ...
    aligned = y[160 * hop : 320 * hop]
    q = landmarks(analyze_query(aligned, params=P).peaks, params=P, fan_out=P.query_fan_out)
    assert _shared(in_window, q.hashes) > 0.8
    # ... and one cut between frames (peaks may move by a frame) still most of them.
    shifted = y[160 * hop + hop // 2 : 320 * hop + hop // 2]
    q = landmarks(analyze_query(shifted, params=P).peaks, params=P, fan_out=P.query_fan_out)
    assert _shared(in_window, q.hashes) > 0.4


def test_speed_hypothesis_undoes_a_playback_speed_change():
    y = _track(4)
    ref, _ = analyze_catalog(y, params=P)
    fast = augment.speed(y, sr=P.sr, factor=1.02)
    peaks = analyze_query(fast, params=P).peaks
    plain = landmarks(peaks, params=P, fan_out=P.query_fan_out, speed=1.0)
    undone = landmarks(peaks, params=P, fan_out=P.query_fan_out, speed=1.02)
    assert _shared(ref.hashes, undone.hashes) > 2.0 * _shared(ref.hashes, plain.hashes)
    assert _shared(ref.hashes, undone.hashes) > 0.4


def test_unrelated_audio_shares_few_hashes():
    a, _ = analyze_catalog(_track(5), params=P)
    b, _ = analyze_catalog(_track(6), params=P)
    assert _shared(a.hashes, b.hashes) < 0.35


def test_landmark_peaks_recover_the_peaks_a_catalog_track_was_hashed_from():
    """The catalog keeps landmarks, not peaks; the strongest-peaks test rebuilds the peaks from them."""
    a = analyze(_track(5), params=P, peaks_per_second=P.peaks_per_second)
    lm = landmarks(a.peaks, params=P, fan_out=P.fan_out)
    keys = landmark_peaks(lm, params=P)
    assert np.all(np.diff(keys) > 0)
    frames, steps = keys // PEAK_KEY_SPAN, keys % PEAK_KEY_SPAN - PEAK_KEY_OFFSET
    truth = {(int(f), int(np.floor(o * P.steps_per_octave))) for f, o in zip(a.peaks.frames, a.peaks.octaves, strict=True)}
    got = set(zip(frames.tolist(), steps.tolist(), strict=True))
    # Every rebuilt peak is a real one (a target's step may round to its neighbour) ...
    assert all((f, s) in truth or (f, s - 1) in truth or (f, s + 1) in truth for f, s in got)
    # ... and almost every real peak took part in a landmark (the last ones of the track may not).
    near = sum(any((f, s + d) in got for d in (-1, 0, 1)) for f, s in truth)
    assert near >= 0.97 * len(truth)
    # Ranks: 0 is the loudest peak of its density block, and every block has one.
    assert a.peaks.ranks is not None and a.peaks.ranks.min() == 0
    blocks = a.peaks.frames // P.density_block
    assert set(blocks[a.peaks.ranks == 0].tolist()) == set(blocks.tolist())


def test_the_peak_neighbourhood_maximum_is_scipys():
    """Peaks are local maxima over a (2 * 10 + 1) x (2 * 3 + 1) neighbourhood, computed by a numpy
    running maximum for speed; it must pick exactly what scipy.ndimage's filter picks, or clips
    would stop finding catalog peaks."""
    from scipy import ndimage

    from indexers.fingerprint import _running_max

    rng = np.random.default_rng(0)
    S = rng.standard_normal((97, 40)).astype(np.float32)
    S[10:20, 5] = 3.0  # plateaus and edges: ties and the repeated border
    for size in (1, 2, 3, 7, 21, 64):
        for axis in (0, 1):
            np.testing.assert_array_equal(_running_max(S, size, axis=axis),
                                          ndimage.maximum_filter1d(S, size, axis=axis, mode="nearest"))


@pytest.mark.parametrize("dtype", [np.int64, np.uint32, np.float64])
def test_unique_sorted_is_np_unique(dtype) -> None:
    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 50, 5000):
        a = rng.integers(0, max(1, n // 3), n).astype(dtype)
        got = unique_sorted(a)
        assert got.dtype == a.dtype
        np.testing.assert_array_equal(got, np.unique(a))


def test_interval_tolerance_finds_pairs_whose_target_moved_a_frame():
    """Noise moves a peak by a frame: the exact hash misses the pair, the tolerant one finds it."""
    a = analyze(_track(7), params=P, peaks_per_second=P.peaks_per_second)
    ref = landmarks(a.peaks, params=P, fan_out=P.fan_out)
    # Every other peak one frame later: about half the pairs change their interval.
    moved = a.peaks.frames + (np.arange(a.peaks.frames.size) % 2).astype(np.int32)
    order = np.argsort(moved, kind="stable")
    shaken = Peaks(frames=moved[order], octaves=a.peaks.octaves[order], n_frames=a.peaks.n_frames + 1)
    exact = landmarks(shaken, params=P, fan_out=P.query_fan_out)
    tolerant = landmarks(shaken, params=P, fan_out=P.query_fan_out, dt_tolerance=1)
    assert _shared(ref.hashes, exact.hashes) < 0.7
    assert _shared(ref.hashes, tolerant.hashes) > 0.95
    # The tolerant set holds the exact one, each pair hashed with its interval -1, 0 and +1.
    assert np.isin(exact.hashes, tolerant.hashes).all()
    assert 2.5 * exact.hashes.size < tolerant.hashes.size <= 3 * exact.hashes.size


def test_strongest_keeps_the_top_ranked_peaks_of_each_block():
    q = analyze_query(_track(8), params=P).peaks
    top = strongest(q, 8)
    assert 0 < top.frames.size < q.frames.size
    assert top.ranks is not None and int(top.ranks.max()) == 7
    assert np.all(np.diff(top.frames) >= 0)
    assert top.stable is not None and top.stable.size == top.frames.size
    kept = set(zip(top.frames.tolist(), top.octaves.tolist(), strict=True))
    assert kept == {(int(f), float(o)) for f, o, r in zip(q.frames, q.octaves, q.ranks, strict=True) if r < 8}
