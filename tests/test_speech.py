"""Voice search: spoken queries synthesized with espeak-ng, transcribed by the domain-built pocketsphinx model."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave

import numpy as np
import pytest

from encore.errors import BadAudio, TooLarge
from encore.speech import (
    PocketSphinxRecognizer,
    SpeechDomain,
    SpeechParams,
    Transcript,
    arpa_language_model,
    get_speech_recognizer,
    pronounce,
    word_error_rate,
)

pytest.importorskip("pocketsphinx")

ARTISTS = ("Queen", "Radiohead", "Daft Punk", "Beyoncé", "The Rolling Stones", "Nirvana", "ABBA")
TITLES = ("Bohemian Rhapsody", "Karma Police", "Get Lucky")
# "radiohead" is not in CMUdict: its pronunciation comes from pronounce() (radio + head).
QUERIES = (
    "play some happy songs for a workout",
    "eighties rock but not queen",
    "something like radiohead",
    "jazz from the seventies",
    "calm music for studying",
    "songs by daft punk",
    "hip hop but not daft punk",
    "sad indie songs",
    "play karma police by radiohead",
    "techno over one hundred twenty bpm",
)
VOICE, SPEED = "en-us+f3", 140


def speak(text: str, *, voice: str = VOICE, speed: int = SPEED) -> tuple[np.ndarray, int]:
    """``text`` spoken by espeak-ng: mono float32 samples and their rate."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)")
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True, timeout=30).stdout
    with wave.open(io.BytesIO(raw)) as w:
        sr = w.getframerate()
        y = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return y, sr


@pytest.fixture(scope="module")
def recognizer() -> PocketSphinxRecognizer:
    rec = PocketSphinxRecognizer(SpeechDomain(artists=ARTISTS, titles=TITLES))
    rec.load()
    return rec


def test_domain_model_transcribes_spoken_queries(recognizer):
    errors = words = 0
    for query in QUERIES:
        y, sr = speak(query)
        transcript = recognizer.transcribe(y, sr=sr)
        n = len(query.split())
        errors += word_error_rate(query, transcript.text) * n
        words += n
    assert "radiohead" in recognizer.guessed  # the out-of-dictionary name was really guessed
    assert errors / words <= 0.20, f"word error rate {errors / words:.0%}"


def test_out_of_the_box_model_is_much_worse(recognizer):
    general = PocketSphinxRecognizer(None)
    query = "eighties rock but not queen"
    y, sr = speak(query)
    assert word_error_rate(query, recognizer.transcribe(y, sr=sr).text) < word_error_rate(
        query, general.transcribe(y, sr=sr).text
    )


def test_silence_is_refused_as_no_speech(recognizer):
    with pytest.raises(BadAudio, match="no speech"):
        recognizer.transcribe(np.zeros(32000, dtype=np.float32), sr=16000)


def test_white_noise_gives_an_empty_transcript(recognizer):
    noise = np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32) * 0.1
    transcript = recognizer.transcribe(noise, sr=16000)
    assert transcript == Transcript("", transcript.confidence, "pocketsphinx", 3.0)
    assert not transcript.heard and (transcript.confidence or 0.0) < 0.5


def test_over_long_audio_is_refused_before_decoding():
    rec = PocketSphinxRecognizer(SpeechDomain(artists=ARTISTS), model_dir="/nonexistent")  # would fail to load
    with pytest.raises(TooLarge, match="15 s"):
        rec.transcribe(np.full(30 * 16000, 0.1, dtype=np.float32), sr=16000)
    short = PocketSphinxRecognizer(params=SpeechParams(max_seconds=5.0), model_dir="/nonexistent")
    with pytest.raises(TooLarge):
        short.transcribe(np.full(6 * 16000, 0.1, dtype=np.float32), sr=16000)


def test_rebuild_only_when_the_domain_changes(recognizer):
    same = SpeechDomain(artists=ARTISTS, titles=TITLES)
    assert recognizer.rebuild(same) is False
    rec = PocketSphinxRecognizer(SpeechDomain(artists=("Queen",)))
    assert rec.rebuild(SpeechDomain(artists=("Queen", "Radiohead"))) is True
    rec.load()
    y, sr = speak("something like radiohead")
    assert "radiohead" in rec.transcribe(y, sr=sr).text


def test_pronounce_falls_back_to_known_pieces_then_spelling():
    lexicon = {"radio": "R EY D IY OW", "head": "HH EH D", "queen": "K W IY N"}
    assert pronounce("queen", lexicon) == "K W IY N"
    assert pronounce("radiohead", lexicon) == "R EY D IY OW HH EH D"
    assert pronounce("zorb", lexicon) == "Z AO R B"


def test_language_model_is_valid_arpa():
    text = arpa_language_model([["play", "some", "rock"], ["play", "jazz"]])
    assert text.startswith("\\data\\\nngram 1=6\nngram 2=6\nngram 3=5\n") and text.rstrip().endswith("\\end\\")
    assert "play some rock" in text


def test_word_error_rate():
    assert word_error_rate("eighties rock but not queen", "eighties rock but not queen") == 0.0
    assert word_error_rate("eighties rock but not queen", "eighties rock queen") == pytest.approx(0.4)
    assert word_error_rate("a b", "") == 1.0


def test_registry_lists_known_names():
    assert isinstance(get_speech_recognizer("pocketsphinx"), PocketSphinxRecognizer)
    with pytest.raises(ValueError, match="pocketsphinx, whisper"):
        get_speech_recognizer("nope")


def test_whisper_adapter_with_tiny_random_checkpoint(tmp_path):
    whisper = pytest.importorskip("whisper")
    torch = pytest.importorskip("torch")
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(0)
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=64, n_text_state=32, n_text_head=2, n_text_layer=1)
    path = tmp_path / "tiny.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": Whisper(dims).state_dict()}, path)
    rec = get_speech_recognizer("whisper", checkpoint=path)
    with pytest.raises(TooLarge):
        rec.transcribe(np.full(30 * 16000, 0.1, dtype=np.float32), sr=16000)
    with pytest.raises(BadAudio, match="no speech"):
        rec.transcribe(np.zeros(32000, dtype=np.float32), sr=16000)
    assert rec._model is None  # refused before the model loaded
    y = (np.sin(np.linspace(0, 2000, 32000)) * 0.3).astype(np.float32)
    first, second = rec.transcribe(y, sr=16000), rec.transcribe(y, sr=16000)
    assert isinstance(first, Transcript) and first.recognizer == "whisper" and first.seconds == 2.0
    assert first == second
    assert whisper.__name__ == "whisper"
