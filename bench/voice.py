"""Word error rate of voice queries: pocketsphinx out of the box vs the domain-built language model.

Queries are synthesized with espeak-ng (apt-get install -y espeak-ng) in several voices and speeds.

    .venv/bin/python bench/voice.py
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encore.speech import PocketSphinxRecognizer, SpeechDomain, word_error_rate  # noqa: E402

ARTISTS = ("Queen", "Radiohead", "Daft Punk", "Beyoncé", "The Rolling Stones", "Nirvana", "ABBA", "Metallica",
           "Khruangbin", "Stromae", "Fleetwood Mac", "Bob Marley")
TITLES = ("Bohemian Rhapsody", "Karma Police", "Get Lucky", "Dreams", "Enter Sandman")
QUERIES = (
    "play some happy songs for a workout", "eighties rock but not queen", "something like radiohead",
    "jazz from the seventies", "calm music for studying", "songs by daft punk", "hip hop but not daft punk",
    "sad indie songs", "play karma police by radiohead", "techno over one hundred twenty bpm",
    "play some chill electronic songs", "nineties grunge", "songs by fleetwood mac", "reggae like bob marley",
    "heavy metal but not metallica", "relaxing piano music for sleeping", "upbeat pop songs for running",
    "something like khruangbin", "music by stromae", "disco from the seventies", "play dreams by fleetwood mac",
    "energetic songs for the gym", "house over one hundred twenty eight bpm", "romantic soul",
    "sixties rock but not the rolling stones", "play some acoustic folk", "dark techno", "songs by abba",
    "mellow jazz for dinner", "play enter sandman by metallica", "instrumental hip hop for focus",
    "country music for driving",
)
VOICES = (("en-us+f3", 140), ("en-us+f4", 165), ("en-us", 150))


def speak(text: str, voice: str, speed: int) -> tuple[np.ndarray, int]:
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768, w.getframerate()


def main() -> None:
    models = {"out of the box": PocketSphinxRecognizer(None),
              "domain LM": PocketSphinxRecognizer(SpeechDomain(artists=ARTISTS, titles=TITLES))}
    for rec in models.values():
        rec.load()
    print(f"{len(QUERIES)} queries per voice; out-of-dictionary words guessed: "
          f"{', '.join(sorted(models['domain LM'].guessed))}\n")
    print("| voice | speed | WER out of the box | WER domain LM | ratio | s/query (domain) |")
    print("|---|---|---|---|---|---|")
    for voice, speed in VOICES:
        wer: dict[str, float] = {}
        seconds = 0.0
        words = sum(len(q.split()) for q in QUERIES)
        for label, rec in models.items():
            errors = 0.0
            for query in QUERIES:
                y, sr = speak(query, voice, speed)
                start = time.perf_counter()
                text = rec.transcribe(y, sr=sr).text
                seconds += (time.perf_counter() - start) if label == "domain LM" else 0.0
                errors += word_error_rate(query, text) * len(query.split())
            wer[label] = errors / words
        ratio = wer["out of the box"] / max(wer["domain LM"], 1e-9)
        print(f"| {voice} | {speed} | {wer['out of the box']:.1%} | {wer['domain LM']:.1%} | {ratio:.1f}x | "
              f"{seconds / len(QUERIES):.2f} |")


if __name__ == "__main__":
    main()
