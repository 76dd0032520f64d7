"""Audio encoders, registered by name and described without loading anything.

::

    from encore.encoders import AUDIO_ENCODERS, get_audio_encoder

    AUDIO_ENCODERS["musicnn"].dim            # 200, no weights read
    enc = get_audio_encoder("musicnn")       # still nothing read
    emb = enc.embed(y, sr=16000)             # weights load here, once
    emb.vector, emb.top_tags(3)

    clap = get_audio_encoder("clap", weights="~/models/clap-htsat-unfused")   # optional extra

Importing this package builds no model and reads no file, and imports neither torch nor
transformers: the optional encoders (``clap``, ``openl3``) import them when they load.
"""

from __future__ import annotations

from typing import Any

from encore.encoders.base import AudioEmbedding, AudioEncoder, EncoderDescription, EncoderUnavailable
from encore.encoders.clap import CLAP_LAION, ClapEncoder
from encore.encoders.musicnn import MUSICNN_MSD, MusicnnEncoder, MusicnnParams
from encore.encoders.openl3 import OPENL3_MEL128_MUSIC, OpenL3Encoder

__all__ = [
    "AUDIO_ENCODERS",
    "DEFAULT_AUDIO_ENCODER",
    "AudioEmbedding",
    "AudioEncoder",
    "ClapEncoder",
    "EncoderDescription",
    "EncoderUnavailable",
    "MusicnnEncoder",
    "MusicnnParams",
    "OpenL3Encoder",
    "describe_audio_encoder",
    "get_audio_encoder",
]

DEFAULT_AUDIO_ENCODER = "musicnn"

#: Every encoder Encore knows, by name.
AUDIO_ENCODERS: dict[str, EncoderDescription] = {
    MUSICNN_MSD.name: MUSICNN_MSD,
    CLAP_LAION.name: CLAP_LAION,
    OPENL3_MEL128_MUSIC.name: OPENL3_MEL128_MUSIC,
}

_CLASSES: dict[str, type[Any]] = {
    MUSICNN_MSD.name: MusicnnEncoder,
    CLAP_LAION.name: ClapEncoder,
    OPENL3_MEL128_MUSIC.name: OpenL3Encoder,
}


def _known(name: str) -> None:
    if name not in AUDIO_ENCODERS:
        known = ", ".join(sorted(AUDIO_ENCODERS))
        raise ValueError(f"unknown audio encoder {name!r}; known encoders: {known}")


def describe_audio_encoder(name: str = DEFAULT_AUDIO_ENCODER) -> EncoderDescription:
    """The description of encoder ``name`` (dimension, sample rate, tags ...), without loading it.

    Raises
    ------
    ValueError
        for an unknown name; the message lists the known ones.
    """
    _known(name)
    return AUDIO_ENCODERS[name]


def get_audio_encoder(name: str = DEFAULT_AUDIO_ENCODER, **options: Any) -> AudioEncoder:
    """A new encoder ``name``; its weights load on first use.

    Parameters
    ----------
    name : str
        A key of :data:`AUDIO_ENCODERS`.
    **options
        Passed to the encoder's constructor, e.g. for ``"musicnn"``
        ``checkpoint=Path(...)`` and ``params=MusicnnParams(max_patches=...)``; ``"clap"`` and
        ``"openl3"`` need ``weights=Path(...)``.

    Raises
    ------
    ValueError
        for an unknown name; the message lists the known ones.
    """
    _known(name)
    encoder: AudioEncoder = _CLASSES[name](**options)
    return encoder
