"""Speech to text for voice search: a spoken query in, its words out (another stage parses them).

Two recognizers share one protocol, :class:`SpeechRecognizer`:

``pocketsphinx`` (default, :class:`PocketSphinxRecognizer`)
    CMU PocketSphinx 5 from PyPI, with the English acoustic model and CMUdict it ships. Its
    general English language model gets almost every word of a short query wrong, so the
    recognizer builds its own trigram language model (ARPA format, written by this module)
    from a :class:`SpeechDomain`: query templates expanded with the words the query parser
    reads (:meth:`SpeechDomain.from_vocabulary`: genres and their synonyms, the mood table's
    moods, activities, tempo words, instruments and vocals, era words, the phrasings around
    artists, tempos and years, spoken years and tempos) and the artists and titles of the live
    collection; usual words and shapes of query weigh more than rare ones, every name of several
    words is one dictionary token. Words CMUdict
    lacks get a pronunciation from :func:`pronounce`: letter names for a short word without a
    vowel ("bpm"), joined dictionary words when the word splits into them ("radiohead" = radio
    + head), else simple letter-to-sound rules (pocketsphinx 5 ships no grapheme-to-phoneme
    model). Before decoding, audio without the rise and fall of speech is answered "no speech"
    (:func:`speech_contrast`); the rest is level-normalised, Wiener-denoised and dithered, and
    decoded at three frequency warps (:class:`PocketSphinxParams`).
``whisper`` (:class:`WhisperRecognizer`)
    OpenAI Whisper from a local checkpoint file; an optional extra
    (``pip install -e '.[voice]'``: openai-whisper and torch).

Both refuse audio that cannot hold a query before any model runs: longer than
:attr:`SpeechParams.max_seconds` (:class:`~encore.errors.TooLarge`), shorter than
:attr:`SpeechParams.min_seconds`, or silent (:class:`~encore.errors.BadAudio`, "no speech").
Noise, or speech the model is not sure of, gives an empty :class:`Transcript` with
``confidence`` 0: :attr:`Transcript.heard` is False and callers answer "no speech recognised"
rather than search for words that were never said.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import tempfile
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from encore.errors import BadAudio, EncoreError, TooLarge

if TYPE_CHECKING:
    from encore.query import QueryVocabulary

__all__ = [
    "DEFAULT_MORE_NUMBERS",
    "DEFAULT_MORE_TEMPLATES",
    "DEFAULT_MORE_YEARS",
    "DEFAULT_PHRASINGS",
    "DEFAULT_TEMPLATES",
    "PocketSphinxParams",
    "PocketSphinxRecognizer",
    "SpeechDomain",
    "SpeechParams",
    "SpeechRecognizer",
    "SpeechUnavailable",
    "Transcript",
    "WhisperRecognizer",
    "arpa_language_model",
    "get_speech_recognizer",
    "normalise_level",
    "normalise_words",
    "pronounce",
    "speech_contrast",
    "wiener_denoise",
    "word_error_rate",
]

SR = 16000


class SpeechUnavailable(EncoreError):
    """A recognizer's package or model files cannot be found or read (HTTP 500, exit 1)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a recognizer heard.

    Attributes
    ----------
    text : lower-case words separated by single spaces; ``""`` when nothing was recognised
    confidence : 0-1 (pocketsphinx: mean word posterior; whisper: mean token probability),
        or None when the recognizer gives none
    recognizer : registry name of the recognizer, e.g. ``"pocketsphinx"``
    seconds : length of the audio heard
    """

    text: str
    confidence: float | None
    recognizer: str
    seconds: float

    @property
    def heard(self) -> bool:
        """True when there are words to act on; False means "no speech recognised"."""
        return bool(self.text)


@dataclass(frozen=True, slots=True)
class SpeechParams:
    """What audio a recognizer accepts, and how sure it must be of what it heard."""

    max_seconds: float = 15.0
    """Longer audio is refused (:class:`~encore.errors.TooLarge`): a query is a sentence."""
    min_seconds: float = 0.3
    silence_rms: float = 3e-4
    """Below this RMS (about -70 dBFS) the audio is silent: :class:`~encore.errors.BadAudio`."""
    margin_seconds: float = 0.3
    """Silence added before and after the audio (pocketsphinx reads its noise floor from the edges)."""
    min_confidence: float = 0.5
    """Below this confidence the transcript is emptied (noise, mumbling, another language)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds < self.max_seconds:
            raise ValueError(f"need 0 < min_seconds < max_seconds, got {self.min_seconds}, {self.max_seconds}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within [0, 1], not {self.min_confidence}")


@runtime_checkable
class SpeechRecognizer(Protocol):
    """Speech to text. Implementations load their models lazily (on :meth:`load` or first use)."""

    name: str
    params: SpeechParams

    def load(self) -> None:
        """Load the model now (it otherwise loads on the first :meth:`transcribe`)."""
        ...

    def transcribe(self, y: np.ndarray, *, sr: int) -> Transcript:
        """The words in mono ``y`` [shape=(n,)] sampled at ``sr`` Hz.

        Raises
        ------
        TooLarge
            longer than ``params.max_seconds``.
        BadAudio
            not mono, not finite, too short, or silent ("no speech").
        """
        ...


def check_query_audio(y: np.ndarray, *, sr: int, params: SpeechParams) -> np.ndarray:
    """Validate a spoken query before any model sees it; returns ``y`` as float32 [shape=(n,)]."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise BadAudio(f"voice query: expected mono samples, got shape {y.shape}")
    if sr <= 0:
        raise BadAudio(f"voice query: invalid sample rate {sr}")
    seconds = y.size / sr
    if seconds > params.max_seconds:
        raise TooLarge(f"voice query: {seconds:.1f} s of audio is longer than the limit of {params.max_seconds:g} s")
    if seconds < params.min_seconds:
        raise BadAudio(f"voice query: {seconds:.2f} s of audio is too short to hold speech")
    if not np.all(np.isfinite(y)):
        raise BadAudio("voice query: the audio holds non-finite samples")
    y = y.astype(np.float32, copy=False)
    if float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) < params.silence_rms:
        raise BadAudio("voice query: no speech, the recording is silent")
    return y


def _to_16k(y: np.ndarray, *, sr: int) -> np.ndarray:
    if sr == SR:
        return y
    from indexers.decode import resample

    return resample(y, orig_sr=sr, target_sr=SR)


# -- front end ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PocketSphinxParams:
    """How pocketsphinx hears a query: the clean-up before decoding and the search widths.

    Every default was chosen by word error rate on ``bench/voice.py`` (espeak-ng voices, clean
    and with white noise at 10 dB); BENCHMARKS.md has the figures.
    """

    level: float = 0.1
    """RMS the loudest 30% of 25 ms frames are scaled to: uploads arrive at any gain."""
    denoise: bool = True
    """Wiener-filter stationary noise out first (:func:`wiener_denoise`). On top of
    pocketsphinx's own noise removal it took word errors under white noise at 10 dB SNR from
    16% to 12% on the benchmark's tuning set."""
    noise_quantile: float = 0.2
    smoothing: float = 0.9
    gain_floor: float = 0.15
    dither: float = 3e-3
    """RMS of the seeded white noise added last. Synthetic and gated audio holds runs of exact
    zeros; their log filterbank energies drag the utterance's cepstral mean so far that the
    first words (and most of a low male voice) were lost."""
    warps: tuple[float, ...] = (1.0, 1.1, 1.2)
    """Frequency warps tried (pocketsphinx's inverse-linear VTLN); the transcript with the
    highest confidence wins. Warps above 1 fit voices with shorter vocal tracts (women,
    children) than the acoustic model was trained on. Each warp is one more decoding pass:
    one warp had 15-17% word errors, two 14%, three 13.5%."""
    min_contrast_db: float = 12.0
    """Audio whose :func:`speech_contrast` is lower holds no speech and is not decoded. Speech
    measured 20 dB and up (clean or at 10 dB SNR), stationary noise 2-9 dB, synthetic music 4-9
    dB. The domain language model would otherwise hear "pop" in plain hiss."""
    beam: float = 1e-60
    wbeam: float = 1e-40
    pbeam: float = 1e-60
    """Wider than pocketsphinx's defaults (1e-48, 7e-29, 1e-48): a query is short, the
    vocabulary small, and the narrow beams pruned the right word away."""
    language_weight: float = 1.0
    """pocketsphinx's language-model weights of its three passes (``lw`` 6.5, ``fwdflatlw`` 8.5,
    ``bestpathlw`` 9.5) times this: above 1 the domain's language model counts for more against
    the acoustic model. Measured on bench/voice.py's tuning set with the parser's whole
    vocabulary: 1.5x took word errors from 15.3% to 18.2%, 2x to 22.6%; 0.75x left them at 15.3%."""
    word_insertion: float = 0.65
    """pocketsphinx's word insertion penalty (``wip``; lower: fewer, longer words)."""

    def __post_init__(self) -> None:
        if self.language_weight <= 0 or not 0 < self.word_insertion <= 1:
            raise ValueError(f"need language_weight > 0 and 0 < word_insertion <= 1, got {self.language_weight}, "
                             f"{self.word_insertion}")
        if not self.warps or any(not 0.5 <= w <= 1.5 for w in self.warps):
            raise ValueError(f"warps must be one or more factors within [0.5, 1.5], not {self.warps}")
        if not 0.0 < self.noise_quantile < 1.0:
            raise ValueError(f"noise_quantile must be within (0, 1), not {self.noise_quantile}")
        if self.level <= 0 or self.dither < 0:
            raise ValueError(f"need level > 0 and dither >= 0, got {self.level}, {self.dither}")


def normalise_level(y: np.ndarray, *, sr: int, level: float = 0.1, frame_seconds: float = 0.025) -> np.ndarray:
    """``y`` [shape=(n,)] scaled so that its loudest 30% of frames have RMS ``level``.

    The loud frames stand for the speech: the whole clip's RMS would depend on how much
    silence surrounds it.
    """
    frame = max(1, int(frame_seconds * sr))
    n = y.size // frame
    if n == 0:
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    else:
        frames = np.sqrt(np.mean(np.square(y[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
        rms = float(np.mean(frames[frames >= np.percentile(frames, 70)]))
    return (y * (level / max(rms, 1e-9))).astype(np.float32)


def wiener_denoise(
    y: np.ndarray,
    *,
    sr: int,
    n_fft: int = 512,
    hop_length: int = 128,
    noise_quantile: float = 0.2,
    smoothing: float = 0.9,
    floor: float = 0.15,
) -> np.ndarray:
    """Stationary noise removed from ``y`` [shape=(n,)] by a Wiener filter.

    The noise spectrum is the mean power of the quietest ``noise_quantile`` of the STFT frames
    (a spoken query pauses between words). The a priori SNR of each bin is smoothed over time
    ("decision-directed", Ephraim and Malah 1984) with ``smoothing``, which keeps the gain from
    flickering ("musical noise"), and no bin is attenuated below ``floor``.

    Returns
    -------
    y_clean : np.ndarray [shape=(n,), dtype=float32]
    """
    from scipy.signal import istft, stft

    _, _, spec = stft(y, fs=sr, nperseg=n_fft, noverlap=n_fft - hop_length)
    power = np.abs(spec) ** 2
    quiet = np.argsort(power.sum(axis=0))[: max(1, int(noise_quantile * power.shape[1]))]
    noise = power[:, quiet].mean(axis=1) + 1e-12
    gain = np.empty_like(power)
    clean_snr = np.zeros(power.shape[0])  # |previous clean estimate|^2 / noise
    for t in range(power.shape[1]):
        posterior = power[:, t] / noise
        prior = smoothing * clean_snr + (1.0 - smoothing) * np.maximum(posterior - 1.0, 0.0)
        g = np.maximum(prior / (1.0 + prior), floor)
        gain[:, t] = g
        clean_snr = g * g * posterior
    _, out = istft(spec * gain, fs=sr, nperseg=n_fft, noverlap=n_fft - hop_length)
    return out[: y.size].astype(np.float32)


def speech_contrast(
    y: np.ndarray,
    *,
    sr: int,
    n_fft: int = 512,
    hop_length: int = 128,
    fmin: float = 250.0,
    fmax: float = 4000.0,
) -> float:
    """How far, in dB, the loudest frames of ``y`` [shape=(n,)] rise above its quietest, in the speech band.

    Speech comes and goes: its loudest tenth of frames is 20 dB and more above its quietest
    fifth, even under white noise at 10 dB SNR. Stationary noise (hiss, hum, fans, brown noise)
    stays within a few dB. The band (``fmin``-``fmax``) keeps rumble and hum from counting, and
    energy outside it sets a floor, so a clip with next to nothing in the band scores low.
    """
    from scipy.signal import stft

    freqs, _, spec = stft(y, fs=sr, nperseg=n_fft, noverlap=n_fft - hop_length)
    power = np.abs(spec) ** 2
    band = power[(freqs >= fmin) & (freqs <= fmax)].sum(axis=0)
    floor = 1e-3 * float(power.sum(axis=0).mean()) + 1e-20
    ranked = np.sort(band)
    quiet = ranked[: max(1, ranked.size // 5)].mean()
    loud = ranked[-max(1, ranked.size // 10):].mean()
    return float(10.0 * np.log10((loud + floor) / (quiet + floor)))


def _front_end(y16: np.ndarray, *, params: PocketSphinxParams, margin_seconds: float) -> bytes:
    """16 kHz float samples as the 16-bit PCM pocketsphinx decodes: level, noise, margins, dither."""
    y16 = normalise_level(y16, sr=SR, level=params.level)
    if params.denoise:
        y16 = wiener_denoise(y16, sr=SR, noise_quantile=params.noise_quantile, smoothing=params.smoothing,
                             floor=params.gain_floor)
    # Quiet margins: pocketsphinx estimates its noise floor from the edges, and a query cut tight
    # to its first word loses that word without them.
    pad = np.zeros(int(margin_seconds * SR), dtype=np.float32)
    y16 = np.concatenate([pad, y16, pad])
    if params.dither:
        # Seeded: the same upload always gives the same transcript.
        y16 = y16 + params.dither * np.random.default_rng(0).standard_normal(y16.size).astype(np.float32)
    return (np.clip(y16, -1.0, 1.0) * 32767).astype("<i2").tobytes()


# -- words ----------------------------------------------------------------------------------------

_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalise_words(text: str) -> list[str]:
    """``text`` as recognizer words: lower case, accents and punctuation dropped, "&" as "and"."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = text.replace("&", " and ").replace("-", " ").replace("_", " ")
    return [w.strip("'") for w in _NOT_WORD.sub(" ", text).split() if w.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference's length (0 when both are empty)."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return float(len(hyp) > 0)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """``n`` (0-999) in English words, as a speaker says a tempo: 128 -> "one hundred twenty eight"."""
    if not 0 <= n < 1000:
        raise ValueError(f"only 0-999 are spelled out, not {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    rest = n % 100
    return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))


# Letter-to-sound fallback: longest grapheme first. Crude, but the acoustic model only has to
# prefer the right entry among the few hundred words of the domain, not spell English.
_LTS: list[tuple[str, str]] = sorted(
    {
        "tch": "CH", "sch": "SH K", "igh": "AY", "eau": "OW", "ough": "AO", "tion": "SH AH N",
        "ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "ng": "NG", "ck": "K", "qu": "K W", "wh": "W",
        "gh": "G", "kh": "K", "zh": "ZH", "dg": "JH",
        "ee": "IY", "ea": "IY", "oo": "UW", "ai": "EY", "ay": "EY", "ei": "EY", "ey": "IY", "oa": "OW",
        "ou": "AW", "ow": "OW", "oi": "OY", "oy": "OY", "au": "AO", "aw": "AO", "ie": "IY", "ue": "UW",
        "ew": "UW", "ar": "AA R", "er": "ER", "ir": "ER", "ur": "ER", "or": "AO R",
        "a": "AE", "b": "B", "c": "K", "d": "D", "e": "EH", "f": "F", "g": "G", "h": "HH", "i": "IH",
        "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "o": "AA", "p": "P", "q": "K", "r": "R",
        "s": "S", "t": "T", "u": "AH", "v": "V", "w": "W", "x": "K S", "y": "IY", "z": "Z",
        "0": "", "1": "", "2": "", "3": "", "4": "", "5": "", "6": "", "7": "", "8": "", "9": "",
    }.items(),
    key=lambda kv: -len(kv[0]),
)
_DIGIT_NAMES = dict(zip("0123456789", _ONES[:10], strict=True))


def letters_to_sounds(word: str) -> str:
    """ARPABET phones for ``word`` from spelling alone (the fallback of :func:`pronounce`)."""
    word = word.replace("'", "")
    if len(word) > 1 and word.endswith("e") and not word.endswith(("ee", "ie", "ye")):
        word = word[:-1]  # silent final e
    phones: list[str] = []
    i = 0
    while i < len(word):
        for graph, sound in _LTS:
            if word.startswith(graph, i):
                if sound and not (phones and phones[-1] == sound):  # doubled consonants sound once
                    phones.append(sound)
                i += len(graph)
                break
        else:
            i += 1
    if word and word[0] == "y" and phones and phones[0] == "IY":
        phones[0] = "Y"
    return " ".join(phones) or "AH"


def pronounce(word: str, lexicon: Mapping[str, str]) -> str:
    """ARPABET phones for a word: CMUdict's entry, else known words joined, else spelling rules.

    A short word without a vowel is an abbreviation said letter by letter ("bpm" = b p m, not
    "b piano" as the spelling rules would have it). Digits in a word are spelled ("ub40" ->
    "u b forty" is beyond this: each digit is said on its own).
    """
    if word in lexicon:
        return lexicon[word]
    if word.isdigit():
        return " ".join(lexicon.get(_DIGIT_NAMES[d], "") for d in word)
    if word.isalpha() and len(word) <= 5 and not re.search("[aeiouy]", word) and all(c in lexicon for c in word):
        return " ".join(lexicon[c] for c in word)
    n = len(word)
    # Fewest dictionary pieces of at least 3 letters covering the word (dynamic programme).
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for end in range(3, n + 1):
        for start in range(0, end - 2):
            prev = best[start]
            if prev is not None and word[start:end] in lexicon and (
                best[end] is None or len(prev) + 1 < len(best[end])  # type: ignore[arg-type]
            ):
                best[end] = [*prev, word[start:end]]
    pieces = best[n]
    if pieces is not None and len(pieces) <= 3:
        return " ".join(lexicon[p] for p in pieces)
    return letters_to_sounds(word)


# -- domain and language model --------------------------------------------------------------------

# The shapes of query encore.query understands (its artist triggers, negations, year and tempo
# patterns, mood and activity words), each a template whose {slots} take the values below. They
# are generic on purpose: bench/voice.py measures them on phrasings written apart from them.
# DEFAULT_TEMPLATES are the usual shapes; DEFAULT_MORE_TEMPLATES the parser's other phrasings
# (the slots named after encore.query.phrasings' roles: {like}, {tempo_above}, {years_before}...),
# each said less often (SpeechDomain.usual_weight).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    # what and how
    "{request} {genre}", "{request} {mood} {genre}", "{request} {genre} {noun}", "{request} {mood} {noun}",
    "{request} {mood} {genre} {noun}", "{request} {tag} {genre}", "{request} {genre} with {tag}",
    "{genre}", "{mood} {genre}", "{genre} {noun}", "{mood} {noun}", "{mood} {genre} {noun}", "{tag} {genre}",
    "{request} something {mood}", "something {mood}", "{genre} and {genre}", "{genre} or {genre}",
    "{mood} and {mood} {noun}", "{genre} but {negation} {genre}", "{genre} but not too {mood}", "{mood} but not {mood}",
    # activities
    "{noun} for {activity}", "{mood} {noun} for {activity}", "{genre} for {activity}",
    "{mood} {genre} for {activity}", "{request} {noun} for {activity}", "{request} {mood} {noun} for {activity}",
    "{request} {genre} for {activity}", "something {mood} for {activity}", "{request} something for {activity}",
    # eras and years
    "{genre} from the {era}", "{era} {genre}", "{mood} {genre} from the {era}", "{noun} from the {era}",
    "{mood} {noun} from the {era}", "the best of {era} {genre}", "{recency} {genre}", "{recency} {noun}",
    "{genre} from {year}", "{genre} {years_before} {year}", "{genre} {years_after} {year}", "{genre} since {year}",
    "{genre} from {year} to {year}", "{genre} between {year} and {year}", "{noun} from {year}",
    # tempo
    "{genre} {tempo_above} {number} bpm", "{genre} {tempo_below} {number} bpm", "{genre} {tempo_around} {number} bpm",
    "{noun} {tempo_above} {number} bpm", "{mood} {genre} {tempo_above} {number} bpm", "{noun} {tempo_around} {number} bpm",
    "{genre} between {number} and {number} bpm", "{genre} for {activity} {tempo_above} {number} bpm",
    # instruments and vocals
    "{genre} with {tag}", "{genre} without {tag}", "{noun} with {tag}", "{noun} without {tag}",
    "{mood} {tag} {noun}",
    # artists and titles
    "{noun} {by} {artist}", "{genre} {by} {artist}", "{request} {artist}", "{request} something {by} {artist}",
    "{noun} {like} {artist}", "something {like} {artist}", "{genre} {like} {artist}", "more {like} {artist}",
    "sounds like {artist}", "{noun} that sound like {artist}", "something similar to {artist}",
    "{noun} similar to {artist}", "{genre} {not} {artist}", "{genre} without {artist}",
    "{genre} except {artist}", "{era} {genre} {not} {artist}", "{noun} {by} {artist} from the {era}",
    "{artist}", "{title}", "{request} {title}", "{request} {title} by {artist}", "{title} by {artist}",
    "{noun} {like} {title}", "something {like} {title}",
)
DEFAULT_MORE_TEMPLATES: tuple[str, ...] = (
    "{genre} {number} bpm {tempo_above_after}", "{genre} {number} bpm {tempo_below_after}",
    "{genre} {tempo_range_start} {number} {tempo_range_to} {number} bpm", "{genre} {years_until} {year}",
    "{genre} {years_since} {year} {years_later}", "{genre} {years_in} {year}",
    "{genre} {years_range_start} {year} {years_range_to} {year}", "{genre} from the {years_last} {years_count} years",
    "{genre} from the {decade_part} {era}", "{genre} {negation} {tag}", "{noun} for a {activity}",
    "{noun} for the {activity}",
)
DEFAULT_REQUESTS = (
    "play", "play some", "play me some", "put on", "put on some", "give me", "give me some", "i want",
    "i want some", "i want to hear", "i need", "i need some", "i would like", "i would like some", "can you play",
    "let me hear", "find", "find me", "find me some", "show me", "show me some", "something", "anything", "some",
    "more",
)
DEFAULT_NOUNS = ("songs", "music", "tracks", "tunes", "stuff")
DEFAULT_RECENCY = ("recent", "new", "old", "modern", "classic", "latest")
# Style and mood words of the small default domain; SpeechDomain.from_vocabulary adds the parser's
# own word lists to them (the text encoder still reads what the parser leaves as free text).
DEFAULT_GENRES = (
    "rock", "pop", "jazz", "blues", "metal", "heavy metal", "punk", "hip hop", "rap", "folk", "country",
    "soul", "funk", "disco", "techno", "house", "trance", "drum and bass", "dubstep", "reggae", "ska",
    "classical", "electronic", "ambient", "indie", "indie rock", "alternative", "grunge", "r and b",
    "gospel", "latin", "salsa", "k pop", "synthwave", "lo fi", "lounge", "opera", "soundtrack", "swing",
)
DEFAULT_MOODS = (
    "happy", "sad", "calm", "chill", "relaxing", "upbeat", "energetic", "dark", "angry", "romantic",
    "mellow", "uplifting", "melancholic", "aggressive", "peaceful", "dreamy", "fast", "slow", "loud",
    "quiet", "groovy", "epic", "fun", "party",
)
DEFAULT_ACTIVITIES = (
    "workout", "running", "the gym", "studying", "sleeping", "sleep", "driving", "a road trip", "dinner",
    "a party", "dancing", "cooking", "focus", "meditation", "yoga", "work", "the morning", "the weekend",
)
DEFAULT_TAGS = (
    "guitar", "piano", "vocals", "female vocals", "male vocals", "strings", "drums", "bass", "synth",
    "saxophone", "violin", "acoustic", "instrumental", "live", "beats", "no vocals", "slow tempo",
)
DEFAULT_ERAS = (
    "fifties", "sixties", "seventies", "eighties", "nineties", "two thousands", "twenty tens",
    "nineteen fifties", "nineteen sixties", "nineteen seventies", "nineteen eighties", "nineteen nineties",
)
DEFAULT_YEARS = tuple(f"nineteen {number_words(n)}" for n in range(50, 100)) + tuple(
    f"two thousand {number_words(n)}" if n else "two thousand" for n in range(0, 10)
) + tuple(f"twenty {number_words(n)}" for n in range(10, 30))
DEFAULT_NUMBERS = tuple(number_words(n) for n in range(60, 201, 5)) + tuple(
    number_words(n) for n in (128, 124, 126, 122, 174)
)
# Other ways of saying them, which encore.query reads as well (less common values): "two
# thousand fifteen" besides "twenty fifteen", the forties, "a hundred and forty (bpm)".
DEFAULT_MORE_YEARS = tuple(f"two thousand {number_words(n)}" for n in range(10, 26)) + tuple(
    f"nineteen {number_words(n)}" for n in range(40, 50)
)
DEFAULT_MORE_NUMBERS = ("a hundred",) + tuple(f"a hundred and {number_words(n)}" for n in range(10, 100, 10))


# The usual words around numbers and artists; the parser reads more (encore.query.phrasings),
# which SpeechDomain.from_vocabulary adds as less common values.
DEFAULT_PHRASINGS: dict[str, tuple[str, ...]] = {
    "like": ("like",), "not": ("but not",), "by": ("by",), "negation": ("not",), "tempo_above": ("over",),
    "tempo_below": ("under",), "tempo_around": ("around",), "years_before": ("before",), "years_after": ("after",),
    "years_until": ("until",), "years_later": ("onwards",), "tempo_above_after": ("or more",),
    "tempo_below_after": ("or less",), "decade_part": ("early", "mid", "late"),
}


def _merge(*groups: Iterable[str]) -> tuple[str, ...]:
    """The values of ``groups`` in order, each once, none with digits (a digit has no one spoken
    form: "top 40").

    Spellings that sound the same count as one value, the one of most words kept ("hip hop", not
    "hiphop"; "r and b", not "randb"): typed variants are one spoken phrase, and two tokens for it
    would only let the recognizer write the variant a transcript is not compared with.
    """
    kept: dict[str, tuple[int, str]] = {}  # letters without spaces -> (first position, value)
    order = 0
    for group in groups:
        for value in group:
            words = normalise_words(value)
            if not words or any(c.isdigit() for w in words for c in w):
                continue
            key = "".join(words)
            if key not in kept:
                kept[key] = (order, value)
                order += 1
            elif len(words) > len(normalise_words(kept[key][1])):
                kept[key] = (kept[key][0], value)
    return tuple(value for _, value in sorted(kept.values()))


def _less(values: Iterable[str], usual: Iterable[str]) -> tuple[str, ...]:
    """``values`` (merged, see :func:`_merge`) that do not sound like one of ``usual``."""
    taken = {"".join(normalise_words(v)) for v in usual}
    return tuple(v for v in _merge(values) if "".join(normalise_words(v)) not in taken)


@dataclass(frozen=True, slots=True)
class SpeechDomain:
    """What users say to Encore: query templates and the words that fill their ``{slots}``.

    Templates and slot values come in two kinds: the usual ones (:attr:`templates` and the fields
    named after the slots) and less common ones (:attr:`more_templates`, :attr:`more`), each said
    :attr:`usual_weight` times less often. ``SpeechDomain()`` is a small hand-made domain;
    :meth:`from_vocabulary` adds everything the query parser reads, which is what the service
    uses. ``artists`` and ``titles`` come from the live collection; rebuild the recognizer
    (:meth:`PocketSphinxRecognizer.rebuild`) when they change. Slot values may hold several words
    and any spelling (accents and punctuation are dropped, see :func:`normalise_words`).
    """

    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    genres: tuple[str, ...] = DEFAULT_GENRES
    moods: tuple[str, ...] = DEFAULT_MOODS
    activities: tuple[str, ...] = DEFAULT_ACTIVITIES
    tags: tuple[str, ...] = DEFAULT_TAGS
    eras: tuple[str, ...] = DEFAULT_ERAS
    years: tuple[str, ...] = DEFAULT_YEARS
    numbers: tuple[str, ...] = DEFAULT_NUMBERS
    artists: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    requests: tuple[str, ...] = DEFAULT_REQUESTS
    nouns: tuple[str, ...] = DEFAULT_NOUNS
    recency: tuple[str, ...] = DEFAULT_RECENCY
    phrasings: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PHRASINGS))
    """Usual values of the slots named after the parser's phrasing roles (:func:`encore.query.phrasings`):
    ``{like}``, ``{by}``, ``{not}``, ``{negation}``, ``{tempo_above}``, ``{years_before}``..."""
    more_templates: tuple[str, ...] = ()
    """Less common shapes of query (:data:`DEFAULT_MORE_TEMPLATES` in :meth:`from_vocabulary`)."""
    more: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Less common values by slot name ("mood": "peppy", "melancholic"...)."""
    usual_weight: int = 32
    """How many times more often a usual template, or a usual value of a slot, is said than a less
    common one. The parser reads hundreds of words and dozens of phrasings; all equally likely,
    they let the recognizer pick a rare word for a common one ("play some peppy songs"), and the
    word errors of bench/voice.py's tuning set about doubled. Measured while the weights still
    scaled every count (before :meth:`counts` gave rare things fractions): 14.0% at 8x, 12.9% at
    32x with the parser's words alone; 32x against 128x with its phrasings and shapes too, 14.2%
    / 14.3% on the tuning set, 15.2% / 16.5% on held-out A."""
    discount: float = 0.5
    """Absolute discount of the language model (:func:`arpa_language_model`): the share of each
    count left for word sequences no template makes. Smaller keeps the recognizer closer to the
    templates: the bigger the vocabulary, the more it needs that (:meth:`from_vocabulary`)."""
    extra_sentences: tuple[str, ...] = field(default=())
    """Whole sentences added as they are (e.g. logged queries); each weighs as much as a usual template."""

    def __post_init__(self) -> None:
        if self.usual_weight < 1:
            raise ValueError(f"usual_weight must be a whole number >= 1, not {self.usual_weight}")
        if not 0 < self.discount < 1:
            raise ValueError(f"discount must be within (0, 1), not {self.discount}")

    @classmethod
    def from_vocabulary(
        cls,
        vocabulary: QueryVocabulary,
        *,
        artists: Iterable[str] | None = None,
        titles: Iterable[str] = (),
        **fields: Any,
    ) -> SpeechDomain:
        """The default domain plus everything ``vocabulary`` (:func:`encore.query.load_vocabulary`) reads.

        The vocabulary's genres (``genres.json`` and the collection's) are usual values. Less
        common (:attr:`more`, :attr:`more_templates`): the genre synonyms, the tag names no
        other word claims ("ambient"), every word of the mood table by kind (moods and tempo
        words, activities, instruments and vocals), the era words ("oldies"), the parser's
        phrasings and decades (:func:`encore.query.phrasings`), other ways of saying years and
        tempos (:data:`DEFAULT_MORE_YEARS`, :data:`DEFAULT_MORE_NUMBERS`), and the shapes of
        query that use them (:data:`DEFAULT_MORE_TEMPLATES`). ``artists`` defaults to the
        vocabulary's (the collection's); ``fields`` override any field.
        """
        from encore.query import phrasings

        words: dict[str, list[str]] = defaultdict(list)
        for entry in vocabulary.moods:
            words[entry.kind] += entry.words
        claimed = {"".join(normalise_words(w)) for w in
                   [*vocabulary.genres, *vocabulary.synonyms, *vocabulary.era_words, *(w for ws in words.values() for w in ws)]}
        unclaimed_tags = [t for t in vocabulary.tag_names if "".join(normalise_words(t)) not in claimed]
        usual = {
            "genre": _merge(DEFAULT_GENRES, vocabulary.genres), "mood": DEFAULT_MOODS, "activity": DEFAULT_ACTIVITIES,
            "tag": DEFAULT_TAGS, "era": DEFAULT_ERAS, "recency": DEFAULT_RECENCY, **DEFAULT_PHRASINGS,
        }
        parser = phrasings()
        more = {
            "genre": _less([*vocabulary.synonyms, *unclaimed_tags], usual["genre"]),
            "mood": _less([*words["mood"], *words["tempo"]], usual["mood"]),
            "activity": _less(words["activity"], usual["activity"]),
            "tag": _less([*words["instrument"], *words["vocals"]], usual["tag"]),
            "era": _less(parser["decades"], usual["era"]),
            "recency": _less(vocabulary.era_words, usual["recency"]),
            "year": DEFAULT_MORE_YEARS,
            "number": DEFAULT_MORE_NUMBERS,
            **{role: _less(values, usual.get(role, ())) for role, values in parser.items() if role != "decades"},
        }
        values: dict[str, Any] = {
            # With the parser's whole vocabulary, bench/voice.py's tuning set / held-out A word
            # errors by discount: 0.5 17.3% / 13.9%, 0.2 15.1% / -, 0.1 13.6% / 12.9%, 0.05 13.9% /
            # 12.6% (and the fewest queries left unheard), 0.02 14.3% / 12.5%.
            "discount": 0.05,
            "genres": usual["genre"],
            "phrasings": {role: usual.get(role, ()) for role in {*DEFAULT_PHRASINGS, *parser} - {"decades"}},
            "more_templates": DEFAULT_MORE_TEMPLATES,
            "more": {slot: values for slot, values in more.items() if values},
            "artists": _merge(vocabulary.artists if artists is None else artists),
            "titles": _merge(titles),
        }
        values.update(fields)
        return cls(**values)

    def _usual(self) -> dict[str, tuple[str, ...]]:
        return {**self.phrasings, "genre": self.genres, "mood": self.moods, "activity": self.activities,
                "tag": self.tags, "era": self.eras, "year": self.years, "number": self.numbers,
                "artist": self.artists, "title": self.titles, "request": self.requests, "noun": self.nouns,
                "recency": self.recency}

    def slots(self) -> dict[str, tuple[str, ...]]:
        """Every value of every slot, usual ones first."""
        usual = self._usual()
        return {name: (*usual.get(name, ()), *self.more.get(name, ())) for name in {**usual, **self.more}}

    def fingerprint(self) -> str:
        """A hash of everything in the domain: equal hashes build the same language model."""
        h = hashlib.sha256()
        parts = {"templates": self.templates, "more_templates": self.more_templates,
                 "extra_sentences": self.extra_sentences, "usual_weight": (str(self.usual_weight),),
                 "discount": (repr(self.discount),),
                 **self._usual(), **{f"more {name}": values for name, values in self.more.items()}}
        for name, values in sorted(parts.items()):
            h.update(name.encode() + b"\0" + "\x1f".join(values).encode("utf-8") + b"\0")
        return h.hexdigest()[:16]

    def counts(self, *, joined: bool = False) -> dict[tuple[str, ...], float]:
        """How often the language model sees each sentence: every template, each with every value
        of its slots, plus :attr:`extra_sentences`.

        Slots vary together, in rotation, rather than as a full cross product: the n-grams only
        need every join of a template's words and a slot's values. Every template counts as many
        sentences as the largest slot has usual values, so that it weighs as much as any other
        (else "songs by {artist}", with a hundred artists, would outweigh "{mood} {genre}"). A
        slot with less common values (:attr:`more`) lists each usual one :attr:`usual_weight`
        times and every value is used, so a less common value gets a fraction of a sentence, as
        does every sentence of a less common template (:attr:`more_templates`): added to a
        domain, rare words and shapes leave the usual ones their counts, and so the language
        model's back-off (see :func:`arpa_language_model`) as it was.

        Parameters
        ----------
        joined : bool
            True: a slot value of several words is one token, its words joined by ``_``
            ("daft_punk", "one_hundred_twenty"), which the recognizer's dictionary holds as one
            word. A name then cannot be half-heard ("daft marley"), and the language model
            sees "songs by <artist>" rather than the artist's last word after its first.
        """

        def tokens(values: Iterable[str]) -> list[list[str]]:
            split = [words for v in values if (words := normalise_words(v))]
            return [["_".join(words)] for words in split] if joined else split

        usual = self._usual()
        slots: dict[str, list[list[str]]] = {}
        plain_values: dict[str, list[list[str]]] = {}  # the usual values (a slot without any: the others)
        for name in {**usual, **self.more}:
            common, rare = tokens(usual.get(name, ())), tokens(self.more.get(name, ()))
            slots[name] = common * (self.usual_weight if common and rare else 1) + rare
            plain_values[name] = common or rare
        plain = {name: len(values) for name, values in plain_values.items()}
        # Templates whose slots are empty (no artists in an empty collection) are left out.
        usable = [(t, 1.0) for t in self.templates] + [(t, 1.0 / self.usual_weight) for t in self.more_templates]
        usable = [(t, w) for t, w in usable if all(slots.get(n) for n in re.findall(r"\{(\w+)\}", t))]
        names = [n for t, _ in usable for n in re.findall(r"\{(\w+)\}", t)]
        rounds = max((len(slots[n]) for n in names), default=1)
        mass = max((plain[n] for n in names), default=1)  # each template's sentences, counted
        out: dict[tuple[str, ...], float] = defaultdict(float)

        def fill(parts: list[list[str]], chosen: Mapping[int, list[str]]) -> tuple[str, ...]:
            words: list[str] = []
            for k, part in enumerate(parts):
                words += chosen.get(k, part)
            return tuple(words)

        for template, w in usable:
            pieces = re.split(r"(\{\w+\})", template)
            at = {k: piece[1:-1] for k, piece in enumerate(pieces) if piece.startswith("{")}
            parts = [[] if k in at else normalise_words(piece) for k, piece in enumerate(pieces)]
            # Two slots side by side ("{mood} {genre}"): rotation pairs their values arbitrarily,
            # and a model that keeps to its templates then hears "party rock" for "happy rock"
            # because only the first pair was made. Half the template's weight goes to every
            # pair of their usual values.
            pairs = [k for k in at if k + 2 in at and not parts[k + 1]]
            share = mass * w / (2 if pairs else 1)
            for i in range(rounds):  # stride 1: every value appears
                chosen = {k: slots[name][(i + 7 * k) % len(slots[name])] for k, name in at.items()}
                out[fill(parts, chosen)] += share / rounds
            for k in pairs:
                first, second = plain_values[at[k]], plain_values[at[k + 2]]
                n = len(first) * len(second)
                for i in range(n):
                    chosen = {m: plain_values[name][(i + 7 * m) % plain[name]] for m, name in at.items()}
                    chosen[k], chosen[k + 2] = first[i // len(second)], second[i % len(second)]
                    out[fill(parts, chosen)] += share / len(pairs) / n
        for sentence in self.extra_sentences:
            if words := normalise_words(sentence):
                out[tuple(words)] += mass
        return dict(out)

    def sentences(self, *, joined: bool = False) -> Iterable[list[str]]:
        """The sentences of :meth:`counts`, each as often as it counts (rounded, at least once)."""
        for words, n in self.counts(joined=joined).items():
            for _ in range(max(1, round(n))):
                yield list(words)


def arpa_language_model(
    sentences: Iterable[Sequence[str]] | Mapping[tuple[str, ...], float], *, discount: float = 0.5
) -> str:
    """A trigram language model in ARPA format, from tokenised sentences (or sentence counts,
    as :meth:`SpeechDomain.counts` gives them, fractions allowed).

    Absolute discounting with back-off: ``discount`` is taken from every seen count (from a
    count below one, that share of it), and the probabilities and back-off mass of each history
    sum to one. Sentences are wrapped in ``<s>`` / ``</s>``.
    """
    uni: defaultdict[str, float] = defaultdict(float)
    bi: defaultdict[tuple[str, ...], defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    tri: defaultdict[tuple[str, ...], defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    counted = sentences.items() if isinstance(sentences, Mapping) else ((s, 1) for s in sentences)
    for sentence, n in counted:
        words = ["<s>", *sentence, "</s>"]
        for w in words[1:]:
            uni[w] += n
        for a, b in itertools.pairwise(words):
            bi[(a,)][b] += n
        for a, b, c in zip(words, words[1:], words[2:], strict=False):
            tri[(a, b)][c] += n
    if not uni:
        raise ValueError("no sentences to build a language model from")
    total = sum(uni.values())
    p1 = {w: c / total for w, c in uni.items()}
    p1["<s>"] = 0.0

    def conditional(table: Mapping[tuple[str, ...], Mapping[str, float]], lower: Callable[[tuple[str, ...], str], float]):
        probs: dict[tuple[str, ...], float] = {}
        backoff: dict[tuple[str, ...], float] = {}
        for hist, nexts in table.items():
            n = sum(nexts.values())
            taken = {w: discount * min(c, 1.0) for w, c in nexts.items()}
            left = sum(taken.values()) / n
            for w, c in nexts.items():
                probs[(*hist, w)] = (c - taken[w]) / n + left * lower(hist, w)
            # The back-off weight spreads the left mass over words unseen after this history.
            unseen_lower = 1.0 - sum(lower(hist, w) for w in nexts)
            backoff[hist] = left / unseen_lower if unseen_lower > 1e-9 else 1e-9
        return probs, backoff

    p2, bo1 = conditional(bi, lambda hist, w: p1[w])
    p3, bo2 = conditional(tri, lambda hist, w: p2[hist[1:] + (w,)])

    def lg(x: float) -> str:
        return f"{math.log10(x):.4f}" if x > 0 else "-99.0000"

    lines = ["\\data\\", f"ngram 1={len(p1)}", f"ngram 2={len(p2)}", f"ngram 3={len(p3)}", "", "\\1-grams:"]
    lines += [f"{lg(p1[w])} {w} {lg(bo1.get((w,), 1.0))}" for w in sorted(p1)]
    lines += ["", "\\2-grams:"]
    lines += [f"{lg(p)} {' '.join(k)} {lg(bo2.get(k, 1.0))}" for k, p in sorted(p2.items())]
    lines += ["", "\\3-grams:"]
    lines += [f"{lg(p)} {' '.join(k)}" for k, p in sorted(p3.items())]
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


# -- pocketsphinx ---------------------------------------------------------------------------------

_FILLERS = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+)$")


class PocketSphinxRecognizer:
    """CMU PocketSphinx 5 with a language model built from a :class:`SpeechDomain`.

    Parameters
    ----------
    domain : SpeechDomain or None
        None: pocketsphinx's general English language model, out of the box (about every word
        of a short query wrong; kept for comparison, see ``bench/voice.py``).
    params : SpeechParams
    model_dir : str or Path or None
        A pocketsphinx model directory (``en-us/`` acoustic model, ``cmudict-en-us.dict``);
        None: the one inside the pocketsphinx wheel.
    decoding : PocketSphinxParams
        The clean-up before decoding, the frequency warps tried and the search beams.

    Each query is level-normalised, Wiener-denoised, padded and dithered (see
    :class:`PocketSphinxParams`), then decoded once per warp; the transcript whose words have
    the highest mean posterior probability wins, and is emptied when that is below
    ``params.min_confidence``.
    """

    name = "pocketsphinx"

    def __init__(
        self,
        domain: SpeechDomain | None = None,
        *,
        params: SpeechParams | None = None,
        model_dir: str | Path | None = None,
        decoding: PocketSphinxParams | None = None,
    ) -> None:
        self.params = params or SpeechParams()
        self.decoding = decoding or PocketSphinxParams()
        self._domain = domain
        self._model_dir = Path(model_dir).expanduser() if model_dir is not None else None
        self._decoder: Any = None
        self._built: str | None = None  # fingerprint of the domain the decoder holds
        self._lexicon: dict[str, list[str]] | None = None
        self._lock = threading.Lock()
        self.guessed: dict[str, str] = {}
        """Words of the domain missing from CMUdict, with the pronunciation :func:`pronounce` gave."""

    @property
    def domain(self) -> SpeechDomain | None:
        return self._domain

    def _paths(self) -> tuple[Path, Path]:
        if self._model_dir is None:
            try:
                import pocketsphinx
            except ImportError as err:
                raise SpeechUnavailable("the pocketsphinx recognizer needs: pip install 'pocketsphinx>=5'") from err
            root = Path(pocketsphinx.get_model_path()) / "en-us"
        else:
            root = self._model_dir
        hmm, dic = root / "en-us", root / "cmudict-en-us.dict"
        if not (hmm / "mdef").is_file() or not dic.is_file():
            raise SpeechUnavailable(f"no pocketsphinx English model (en-us/mdef, cmudict-en-us.dict) under {root}")
        return hmm, dic

    def _read_lexicon(self, dic: Path) -> dict[str, list[str]]:
        """CMUdict: each word's pronunciations, its first (most common) one first."""
        if self._lexicon is None:
            lexicon: dict[str, list[str]] = {}
            for line in dic.read_text(encoding="utf-8", errors="replace").splitlines():
                word, _, phones = line.partition(" ")
                if phones.strip():
                    lexicon.setdefault(word.split("(")[0], []).append(phones.strip())
            self._lexicon = lexicon
        return self._lexicon

    def _dictionary(self, tokens: Iterable[str], lexicon: Mapping[str, list[str]]) -> tuple[str, dict[str, str]]:
        """The pocketsphinx dictionary of ``tokens`` (``_`` joins the words of one token), and the
        pronunciations guessed for words CMUdict lacks."""
        first = {w: prons[0] for w, prons in lexicon.items()}
        guessed: dict[str, str] = {}
        lines: list[str] = []
        for token in sorted(tokens):
            words = token.split("_")
            for w in words:
                if w not in first and w not in guessed:
                    guessed[w] = pronounce(w, first)
            lines.append(f"{token} {' '.join(first.get(w) or guessed[w] for w in words)}")
            if len(words) == 1:
                # CMUdict's other pronunciations ("either", "data"): a voice may use any of them.
                others = lexicon.get(token, [])[1:]
                if token in guessed and token.isalpha() and len(token) <= 4 and all(c in first for c in token):
                    # A short word CMUdict lacks is often an abbreviation said letter by letter
                    # ("edm", "idm"), which the spelling rules cannot tell: both are allowed.
                    spelled = " ".join(first[c] for c in token)
                    if spelled != guessed[token]:
                        others = [*others, spelled]
                lines += [f"{token}({i}) {p}" for i, p in enumerate(others, 2)]
        return "".join(f"{line}\n" for line in lines), guessed

    def load(self) -> None:
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> None:
        want = self._domain.fingerprint() if self._domain is not None else "general"
        if self._decoder is not None and self._built == want:
            return
        import pocketsphinx

        pocketsphinx.set_loglevel("FATAL")
        hmm, dic = self._paths()
        d = self.decoding
        options: dict[str, Any] = {"hmm": str(hmm), "bestpath": True, "samprate": SR, "beam": d.beam,
                                   "wbeam": d.wbeam, "pbeam": d.pbeam, "warp_type": "inverse_linear",
                                   "lw": 6.5 * d.language_weight, "fwdflatlw": 8.5 * d.language_weight,
                                   "bestpathlw": 9.5 * d.language_weight, "wip": d.word_insertion}
        if self._domain is None:
            decoder = pocketsphinx.Decoder(dict=str(dic), **options)
            self.guessed = {}
        else:
            sentences = self._domain.counts(joined=True)
            if not sentences:
                raise ValueError("the speech domain holds no sentences (no templates could be filled)")
            dictionary, guessed = self._dictionary({w for s in sentences for w in s}, self._read_lexicon(dic))
            with tempfile.TemporaryDirectory(prefix="encore-speech-") as tmp:
                # A dictionary of the domain's words only: loads in milliseconds, not the 130k of CMUdict.
                dict_path, lm_path = Path(tmp) / "domain.dict", Path(tmp) / "domain.arpa"
                dict_path.write_text(dictionary, encoding="utf-8")
                lm_path.write_text(arpa_language_model(sentences, discount=self._domain.discount), encoding="utf-8")
                decoder = pocketsphinx.Decoder(dict=str(dict_path), lm=str(lm_path), **options)
            self.guessed = guessed
        self._decoder, self._built = decoder, want

    def rebuild(self, domain: SpeechDomain) -> bool:
        """Use ``domain`` from now on. Returns False (nothing rebuilt) when it equals the current one."""
        with self._lock:
            if self._domain is not None and domain.fingerprint() == self._domain.fingerprint():
                return False
            self._domain = domain
            if self._decoder is not None:
                self._load_locked()
            return True

    def _decode(self, pcm: bytes, warp: float) -> tuple[list[str], float]:
        """Words (fillers dropped, ``_`` tokens split) and their mean posterior, at one warp."""
        decoder = self._decoder
        if decoder.config["warp_params"] != f"{warp:g}":
            decoder.config["warp_params"] = f"{warp:g}"
            decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is None:
            return [], 0.0
        # Segment.prob is already a probability (the bindings exponentiate it), at most 1 up to
        # pocketsphinx's log-table rounding.
        heard = [(s.word.split("(")[0], min(float(s.prob), 1.0)) for s in decoder.seg() if not _FILLERS.match(s.word)]
        if not heard:
            return [], 0.0
        return [w for token, _ in heard for w in token.split("_")], float(np.mean([p for _, p in heard]))

    def transcribe(self, y: np.ndarray, *, sr: int) -> Transcript:
        y = check_query_audio(y, sr=sr, params=self.params)
        seconds = y.size / sr
        y16 = _to_16k(y, sr=sr)
        if speech_contrast(y16, sr=SR) < self.decoding.min_contrast_db:
            return Transcript("", 0.0, self.name, seconds)
        pcm = _front_end(y16, params=self.decoding, margin_seconds=self.params.margin_seconds)
        with self._lock:
            self._load_locked()
            words, confidence = max((self._decode(pcm, w) for w in self.decoding.warps), key=lambda r: r[1])
        if not words:
            return Transcript("", 0.0, self.name, seconds)
        if confidence < self.params.min_confidence:
            return Transcript("", round(confidence, 4), self.name, seconds)
        return Transcript(" ".join(words), round(confidence, 4), self.name, seconds)


# -- whisper --------------------------------------------------------------------------------------


class WhisperRecognizer:
    """OpenAI Whisper from a local checkpoint file (an optional extra: ``pip install -e '.[voice]'``).

    Parameters
    ----------
    checkpoint : str or Path
        A Whisper ``.pt`` file (``{"dims": ..., "model_state_dict": ...}``), e.g. ``base.en.pt``
        as ``whisper.load_model("base.en")`` caches it under ``~/.cache/whisper`` on a machine
        that is online. Nothing is ever downloaded: the tokenizer's files ship inside the package.
    params : SpeechParams
    language : spoken language code (None: let Whisper detect it; multilingual checkpoints only)
    device : a torch device, e.g. ``"cpu"``

    Decoding is greedy at temperature 0 with Whisper's own no-speech probability: when that is
    above 0.6, or the mean token probability under ``params.min_confidence``, the transcript is empty.
    """

    name = "whisper"

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        params: SpeechParams | None = None,
        language: str | None = "en",
        device: str = "cpu",
    ) -> None:
        self.params = params or SpeechParams()
        self._checkpoint = Path(checkpoint).expanduser()
        self._language = language
        self._device = device
        self._model: Any = None
        self._whisper: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                import whisper
            except ImportError as err:
                raise SpeechUnavailable(
                    f"the whisper recognizer needs {err.name}; install the extra with: pip install -e '.[voice]'"
                ) from err
            if not self._checkpoint.is_file():
                raise SpeechUnavailable(f"no Whisper checkpoint at {self._checkpoint}")
            try:
                model = whisper.load_model(str(self._checkpoint), device=self._device)
            except Exception as err:  # torch raises many kinds on a bad file
                raise SpeechUnavailable(f"cannot read Whisper checkpoint {self._checkpoint.name}: {err}") from err
            self._whisper, self._model = whisper, model.eval()

    def transcribe(self, y: np.ndarray, *, sr: int) -> Transcript:
        y = check_query_audio(y, sr=sr, params=self.params)
        seconds = y.size / sr
        self.load()
        whisper, model = self._whisper, self._model
        audio = whisper.pad_or_trim(_to_16k(y, sr=sr))
        mel = whisper.log_mel_spectrogram(audio, n_mels=model.dims.n_mels).to(model.device)
        language = self._language if model.is_multilingual else "en"
        options = whisper.DecodingOptions(language=language, temperature=0.0, without_timestamps=True,
                                          fp16=False, sample_len=64)
        with self._lock:
            result = whisper.decode(model, mel, options)
        confidence = float(np.exp(result.avg_logprob)) if np.isfinite(result.avg_logprob) else 0.0
        text = " ".join(normalise_words(result.text))
        if result.no_speech_prob > 0.6 or confidence < self.params.min_confidence:
            text = ""
        return Transcript(text, round(confidence, 4), self.name, seconds)


# -- registry -------------------------------------------------------------------------------------

_RECOGNIZERS: dict[str, Callable[..., SpeechRecognizer]] = {
    "pocketsphinx": PocketSphinxRecognizer,
    "whisper": WhisperRecognizer,
}


def get_speech_recognizer(name: str, **options: Any) -> SpeechRecognizer:
    """A recognizer by registry name, built with ``options`` (nothing is loaded yet).

    ``"pocketsphinx"``: ``domain``, ``params``, ``model_dir``; ``"whisper"``: ``checkpoint``,
    ``params``, ``language``, ``device``.

    Raises
    ------
    ValueError
        for an unknown name, listing the known ones.
    """
    try:
        factory = _RECOGNIZERS[name]
    except KeyError:
        raise ValueError(f"unknown speech recognizer {name!r}; known: {', '.join(sorted(_RECOGNIZERS))}") from None
    return factory(**options)

