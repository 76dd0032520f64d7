"""Test data for the world tier: a tag head with musicnn's shape and tag names, built from a seed.

The real head is read from musicnn's checkpoint (tests/encoders); world tests only need one with the
same structure, so their behaviour does not hang on the shipped weights.
"""

from __future__ import annotations

import numpy as np

from encore.encoders.taghead import TagHead

MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
)


def random_tag_head(seed: int = 0, *, dim: int = 200) -> TagHead:
    rng = np.random.default_rng(seed)
    return TagHead(
        names=MSD_TAGS,
        kernel=rng.normal(0, 0.15, (dim, len(MSD_TAGS))),
        bias=np.full(len(MSD_TAGS), -3.0),
        mean=rng.uniform(0.0, 0.4, dim),
        std=rng.uniform(0.6, 0.8, dim),
        floor=np.full(dim, -1.5),
    )
