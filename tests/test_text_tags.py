"""Text to tag weights, with the real wordllama weights (shipped in its wheel) and musicnn's 50 MSD tags.

The assertions are orderings a listener would agree with, not exact numbers, so that a better
encoder or better descriptions keep passing while a broken mapping fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from encore.encoders.musicnn import MSD_TAGS
from encore.encoders.text import WordLlamaEncoder
from encore.text_tags import TagMapper, TagMapperParams, default_tag_descriptions
from encore.world import TagSpace

MOODS_UNWANTED = {"metal", "heavy metal", "hard rock", "punk", "Hip-Hop", "happy", "party", "dance"}


@pytest.fixture(scope="module")
def mapper() -> TagMapper:
    return TagMapper(WordLlamaEncoder(), MSD_TAGS)


def rank(mapper: TagMapper, text: str) -> list[str]:
    sims = mapper.similarities(text)
    return [name for name, _ in sims.top(len(MSD_TAGS))]


def test_every_tag_has_a_description() -> None:
    descriptions = default_tag_descriptions()
    assert set(descriptions) == set(MSD_TAGS)
    assert all(isinstance(text, str) and text.strip() for text in descriptions.values())


def test_happy_upbeat_dance_music(mapper: TagMapper) -> None:
    order = rank(mapper, "happy upbeat dance music")
    assert {"happy", "dance", "party"} <= set(order[:4])
    for low in ("sad", "Mellow", "metal", "heavy metal", "ambient", "country"):
        assert order.index("catchy") < order.index(low)
    weights = mapper.map("happy upbeat dance music")
    assert {"happy", "dance", "party"} <= set(weights)
    assert not {"sad", "Mellow", "metal"} & set(weights)


def test_sad_slow_piano(mapper: TagMapper) -> None:
    order = rank(mapper, "sad slow piano")
    assert set(order[:3]) == {"sad", "Mellow", "beautiful"}
    weights = mapper.map("sad slow piano")
    assert {"sad", "Mellow", "beautiful"} <= set(weights)
    assert not MOODS_UNWANTED & set(weights)


def test_heavy_guitar_riffs(mapper: TagMapper) -> None:
    order = rank(mapper, "heavy guitar riffs")
    assert set(order[:4]) == {"metal", "hard rock", "heavy metal", "guitar"}
    weights = mapper.map("heavy guitar riffs")
    assert {"metal", "hard rock", "heavy metal", "guitar"} <= set(weights)
    assert not {"sad", "Mellow", "happy", "chill", "jazz"} & set(weights)


def test_weights_are_ordered_and_bounded(mapper: TagMapper) -> None:
    sims = mapper.similarities("heavy guitar riffs")
    weights = mapper.weights(sims)
    assert list(weights) == [name for name, _ in sims.top(len(weights))]
    values = list(weights.values())
    assert values[0] == 1.0 and values == sorted(values, reverse=True)
    assert all(mapper.params.min_weight <= v <= 1.0 for v in values)
    assert len(weights) <= mapper.params.top_k


def test_temperature_sets_how_many_tags_are_kept(mapper: TagMapper) -> None:
    sharp = TagMapper(mapper.encoder, MSD_TAGS, params=TagMapperParams(temperature=0.02))
    soft = TagMapper(mapper.encoder, MSD_TAGS, params=TagMapperParams(temperature=0.5, top_k=10))
    assert len(sharp.map("sad slow piano")) < len(soft.map("sad slow piano"))


def test_blank_or_meaningless_text_maps_to_nothing(mapper: TagMapper) -> None:
    assert mapper.map("") == {}
    assert mapper.map("   ") == {}
    assert not np.any(mapper.similarities("").similarities)
    assert mapper.map("xyzzy qwerty") == {}


def test_similarities_explain_the_weights(mapper: TagMapper) -> None:
    sims = mapper.similarities("chill relaxing")
    assert sims.tag_names == MSD_TAGS and sims.similarities.shape == (len(MSD_TAGS),)
    assert sims.top(2)[0][0] in {"chill", "chillout"}
    assert all(-1.0 <= s <= 1.0 for _, s in sims.top(50))


def test_custom_descriptions_change_the_mapping(mapper: TagMapper) -> None:
    swapped = dict(default_tag_descriptions(), jazz="heavy distorted guitar riffs")
    custom = TagMapper(mapper.encoder, MSD_TAGS, descriptions=swapped)
    assert rank(custom, "heavy guitar riffs")[0] == "jazz"
    names_only = TagMapper(mapper.encoder, ["sad", "party"], descriptions={})
    assert names_only.descriptions == {"sad": "sad", "party": "party"}
    assert list(names_only.map("sad slow piano")) == ["sad"]


def test_weights_make_a_tag_profile(mapper: TagMapper) -> None:
    space = TagSpace(names=MSD_TAGS, reference=np.zeros(len(MSD_TAGS), dtype=np.float32))
    q = space.profile(mapper.map("heavy guitar riffs"))
    assert MSD_TAGS[int(np.argmax(q))] in {"metal", "hard rock", "heavy metal", "guitar"}


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one tag"):
        TagMapper(WordLlamaEncoder(), [])
    with pytest.raises(ValueError, match="distinct"):
        TagMapper(WordLlamaEncoder(), ["rock", "rock"])
    with pytest.raises(ValueError, match="temperature"):
        TagMapperParams(temperature=0)
