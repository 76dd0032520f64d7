"""Word error rate and latency of voice queries, spoken by espeak-ng, through the pocketsphinx recognizer.

The recognizer's language model is built as the service builds it: from the query parser's
vocabulary (``SpeechDomain.from_vocabulary``) with the artists and titles below as the collection.

Four query sets, each spoken in five voices and speeds, clean and with white noise at 10 dB SNR:

``dev``
    the 32 queries this benchmark always had; the recognizer was tuned on them.
``held-out-a``
    32 phrasings written before any tuning, separately from the templates. Their errors were
    looked at while choosing the query templates, so they are not fully independent.
``held-out-b``
    32 phrasings written after that, before the final templates; never used for a decision.
``held-out-c``
    32 queries over every feature of the parser (moods, activities, genres, eras and spoken years,
    spoken tempos, artists in and out, instruments), written after the language model was built
    from the parser's vocabulary, before any result on them was seen; never used for a decision.

For each sentence the report says whether the recognizer's templates can produce it word for
word ("in grammar"): the model was built from those templates, so in-grammar sentences are the
easy case and the held-out sets hold mostly others.

Then 44 clips in which nothing is said (white, pink and brown noise at three levels, mains hum,
synthetic music, each 1, 3 and 6 s long, and eight queries played backwards): every transcript
that is not empty is a hallucinated query.

    apt-get install -y espeak-ng
    python bench/voice.py                     # all sets, voices and noise conditions
    python bench/voice.py --sets dev --general  # also pocketsphinx's general English model
    python bench/voice.py --errors            # print every wrong transcript
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from encore import augment  # noqa: E402
from encore.query import load_vocabulary  # noqa: E402
from encore.speech import PocketSphinxRecognizer, SpeechDomain, normalise_words, word_error_rate  # noqa: E402
from tests.utils.audio import synth_track  # noqa: E402

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
HELD_OUT_A = (
    "put on some relaxing jazz", "i need energetic music for the gym", "songs that sound like nirvana",
    "something similar to daft punk", "rock from the nineties without nirvana", "give me sad piano songs",
    "happy pop from the eighties", "chill electronic for studying over one hundred twenty bpm",
    "blues from nineteen seventy to nineteen seventy five", "jazz before nineteen seventy", "dance music for a party",
    "slow country songs", "fast punk rock", "metal except metallica", "play something by queen",
    "songs by the rolling stones from the sixties", "quiet music for sleeping", "recent hip hop with female vocals",
    "upbeat latin music for dancing", "acoustic guitar songs for a road trip",
    "i want to hear bohemian rhapsody by queen", "reggae without bob marley", "melancholic indie rock",
    "music like khruangbin but slower", "ambient music for meditation", "dark techno around one hundred thirty bpm",
    "romantic songs from the fifties", "some classical music for focus", "angry heavy metal",
    "more songs like karma police", "soul and funk from the seventies", "instrumental music for cooking",
)
HELD_OUT_B = (
    "can you play something relaxing", "i would like some upbeat music", "show me rock songs from the seventies",
    "find me music similar to radiohead", "play music that sounds like abba", "pop songs without female vocals",
    "jazz piano for a rainy day", "songs for running over one hundred forty bpm", "anything by beyonce",
    "old school hip hop", "party music from the two thousands", "soft acoustic songs for the evening",
    "punk but not nirvana", "electronic music under one hundred bpm", "let me hear get lucky by daft punk",
    "happy reggae for the summer", "sad songs from the nineties", "classical music for sleep",
    "heavy metal like metallica", "folk music with guitar", "play the best of queen",
    "something calm without vocals", "loud rock for the gym", "disco and funk for dancing",
    "music for a dinner party", "country songs from nineteen ninety five", "i want something like stromae",
    "energetic house music", "songs like dreams by fleetwood mac", "romantic jazz for tonight", "play some blues",
    "ambient music with no drums",
)
# Written after the language model was built from the parser's vocabulary and before any result on
# it was seen; never used for a decision.
HELD_OUT_C = (
    "play something cheerful for a sunday morning", "i want aggressive metal for lifting weights",
    "quiet piano pieces for reading", "songs from nineteen eighty seven", "soul music from the nineteen sixties",
    "techno faster than one hundred thirty bpm", "hip hop around ninety bpm",
    "dance music between one hundred twenty and one hundred thirty bpm", "r and b like beyonce", "anything but abba",
    "rock without the rolling stones", "something in the style of daft punk", "music by bob marley from the seventies",
    "sad country songs about heartbreak", "chill lo fi beats for studying", "upbeat latin music with guitar",
    "jazz with saxophone and piano", "electronic music without vocals", "female vocalists from the nineties",
    "old school soul for a dinner party", "slow romantic songs for date night", "punk rock from the late seventies",
    "new pop releases", "classic rock for a long drive", "folk songs from two thousand ten",
    "funky disco from nineteen seventy eight", "ambient music under eighty bpm", "happy songs like stromae",
    "metal but not metallica from the eighties", "relaxing acoustic guitar music",
    "energetic workout music over a hundred and forty bpm", "play karma police",
)
SETS = {"dev": QUERIES, "held-out-a": HELD_OUT_A, "held-out-b": HELD_OUT_B, "held-out-c": HELD_OUT_C}
VOICES = (("en-us+f3", 140), ("en-us+f4", 165), ("en-us", 150), ("en-us+m3", 180), ("en-gb", 130))
NOISE_SNR_DB = 10.0


def speak(text: str, voice: str, speed: int) -> tuple[np.ndarray, int]:
    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768, w.getframerate()


def in_grammar(domain: SpeechDomain, sentence: str) -> bool:
    """Whether one of ``domain``'s templates, its slots filled with the domain's values, is ``sentence``."""
    slots = {k: sorted({" ".join(normalise_words(v)) for v in vs} - {""}, key=len, reverse=True)
             for k, vs in domain.slots().items()}
    text = " ".join(normalise_words(sentence))
    for template in (*domain.templates, *domain.more_templates):
        pieces: list[str] = []
        for part in re.split(r"(\{\w+\})", template):
            if part.startswith("{"):
                pieces.append("(?:" + "|".join(map(re.escape, slots.get(part[1:-1]) or ["\0"])) + ")")
            else:
                pieces += map(re.escape, normalise_words(part))
        if re.fullmatch(" ".join(pieces), text):
            return True
    return False


def nothing_said() -> list[tuple[str, np.ndarray, int]]:
    """Clips without words: stationary noise, hum, synthetic music, and speech played backwards."""
    rng = np.random.default_rng(7)
    sr = 16000
    clips: list[tuple[str, np.ndarray, int]] = []
    for seconds in (1.0, 3.0, 6.0):
        n = int(seconds * sr)
        for rms in (0.003, 0.03, 0.2):
            brown = np.cumsum(rng.standard_normal(n))
            brown -= np.convolve(brown, np.ones(400) / 400, "same")  # no drift
            for kind, y in (("white", rng.standard_normal(n)), ("pink", augment.pink(n, rng=rng)), ("brown", brown)):
                clips.append((f"{kind} noise, RMS {rms:g}, {seconds:g} s", (y / y.std() * rms).astype(np.float32), sr))
        t = np.arange(n) / sr
        hum = 0.05 * np.sin(2 * np.pi * 50 * t) + 0.02 * np.sin(2 * np.pi * 150 * t)
        clips.append((f"50 Hz hum, {seconds:g} s", hum.astype(np.float32), sr))
        for seed in (1, 2):
            clips.append((f"music {seed}, {seconds:g} s", synth_track(seed, seconds=seconds, sr=22050), 22050))
    for i, query in enumerate(QUERIES[:8]):
        y, speech_sr = speak(query, *VOICES[i % len(VOICES)])
        clips.append((f"backwards: {query}", y[::-1].copy(), speech_sr))
    return clips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", choices=sorted(SETS), default=list(SETS))
    ap.add_argument("--general", action="store_true", help="also pocketsphinx's general English model")
    ap.add_argument("--errors", action="store_true", help="print every wrong transcript")
    args = ap.parse_args()

    # As the service builds it (Encore._speech_domain): the parser's vocabulary, the collection's artists.
    domain = SpeechDomain.from_vocabulary(load_vocabulary(artists=ARTISTS), titles=TITLES)
    models = {"domain": PocketSphinxRecognizer(domain)}
    if args.general:
        models["general"] = PocketSphinxRecognizer(None)
    for rec in models.values():
        rec.load()
    print(f"out-of-dictionary words guessed: {', '.join(sorted(models['domain'].guessed))}\n")
    for name in args.sets:
        inside = [q for q in SETS[name] if in_grammar(domain, q)]
        print(f"{name}: {len(inside)} of {len(SETS[name])} sentences in grammar: {'; '.join(inside) or '-'}")
    print()

    header = "| set | voice | speed | noise | " + " | ".join(f"WER {label}" for label in models)
    print(header + " | p50 s | p95 s |\n|---|---|---:|---|" + "---:|" * (len(models) + 2))
    totals: dict[tuple[str, str], list[float]] = {}
    latencies: list[float] = []
    for name in args.sets:
        for voice, speed in VOICES:
            rng = np.random.default_rng(0)
            for noisy in (False, True):
                errors = dict.fromkeys(models, 0.0)
                words = 0
                seconds: list[float] = []
                for query in SETS[name]:
                    y, sr = speak(query, voice, speed)
                    if noisy:
                        y = augment.white_noise(y, snr_db=NOISE_SNR_DB, rng=rng)
                    words += len(query.split())
                    for label, rec in models.items():
                        start = time.perf_counter()
                        text = rec.transcribe(y, sr=sr).text
                        if label == "domain":
                            seconds.append(time.perf_counter() - start)
                        errors[label] += word_error_rate(query, text) * len(query.split())
                        if args.errors and text != query:
                            print(f"    [{label} {voice}@{speed}{' noise' if noisy else ''}] {query!r} -> {text!r}")
                wer = {label: e / words for label, e in errors.items()}
                for label in models:
                    totals.setdefault((name, label), []).append(wer[label])
                latencies += seconds
                print(f"| {name} | {voice} | {speed} | {f'white {NOISE_SNR_DB:g} dB' if noisy else 'clean'} | "
                      + " | ".join(f"{wer[label]:.1%}" for label in models)
                      + f" | {np.median(seconds):.2f} | {np.percentile(seconds, 95):.2f} |")
    print()
    for (name, label), values in totals.items():
        clean, noisy = values[0::2], values[1::2]
        print(f"{name} ({label}): mean WER {np.mean(values):.1%} (clean {np.mean(clean):.1%}, "
              f"noise {np.mean(noisy):.1%})")
    print(f"transcription latency over {len(latencies)} queries: p50 {np.median(latencies):.2f} s, "
          f"p95 {np.percentile(latencies, 95):.2f} s")

    clips = nothing_said()
    heard = [(name, models["domain"].transcribe(y, sr=sr).text) for name, y, sr in clips]
    wrong = [(name, text) for name, text in heard if text]
    print(f"\nnothing said: {len(wrong)} of {len(clips)} clips gave a transcript")
    for name, text in wrong:
        print(f"    {name}: {text!r}")


if __name__ == "__main__":
    main()
