"""With CLAP configured (a tiny checkpoint the test builds), world tracks get a clap vector and text
search also runs CLAP's text tower in that space."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from encore.config import Settings
from encore.service import Encore
from indexers.metadata import TrackInfo
from tests.utils.audio import synth_track

pytest.importorskip("torch")
pytest.importorskip("transformers")


def test_clap_space_in_the_world_and_in_text_search(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    import torch

    from tests.encoders.test_clap import DIM, build_checkpoint

    torch.set_num_threads(1)
    weights = build_checkpoint(tmp_path / "clap-tiny")
    settings = make_settings(tmp_path / "data", clap_weights=weights, clap_dim=DIM)
    with Encore.open(settings) as enc:
        ids = [enc.add_world_audio(synth_track(seed, seconds=8, sr=16000), sr=16000,
                                   info=TrackInfo(title=f"T{seed}", artist=f"A{seed % 3}", genre="rock")).track_id
               for seed in range(6)]
        record = enc.store.retrieve(enc.world.name, ids[:1], with_vectors=True)[0]
        similar = enc.similar_tracks(ids[0], limit=3)
        result = enc.search("calm piano music", limit=4)
        like = enc.search("something like A1", limit=4)

    assert set(record.vectors) == {"musicnn", "tags", "clap"}
    assert np.isclose(np.linalg.norm(record.vectors["clap"]), 1.0, atol=1e-4)
    assert len(similar) == 3 and ids[0] not in {t.track_id for t in similar}
    assert any("CLAP" in line for line in result.interpretation.explanations)
    assert result.results  # the mood's energy range may leave fewer than 4 of the 6
    assert like.interpretation.artists_like == ["A1"]
    assert not any("CLAP" in line and "A1" in line for line in like.interpretation.explanations)
    assert "A1" not in {t.artist for t in like.results}
