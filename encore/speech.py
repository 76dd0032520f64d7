"""Speech to text for voice search: a spoken query in, its words out (another stage parses them).

Two recognizers share one protocol, :class:`SpeechRecognizer`:

``pocketsphinx`` (default, :class:`PocketSphinxRecognizer`)
    CMU PocketSphinx 5 from PyPI, with the English acoustic model and CMUdict it ships. Its
    general English language model gets almost every word of a short query wrong, so the
    recognizer builds its own trigram language model (ARPA format, written by this module)
    from a :class:`SpeechDomain`: query templates expanded with the genres, moods, decades and
    numbers Encore understands and the artists and titles of the live collection. Words CMUdict
    lacks get a pronunciation from :func:`pronounce`: joined dictionary words when the word
    splits into them ("radiohead" = radio + head), else simple letter-to-sound rules
    (pocketsphinx 5 ships no grapheme-to-phoneme model).
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
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from encore.errors import BadAudio, EncoreError, TooLarge

__all__ = [
    "DEFAULT_TEMPLATES",
    "PocketSphinxRecognizer",
    "SpeechDomain",
    "SpeechParams",
    "SpeechRecognizer",
    "SpeechUnavailable",
    "Transcript",
    "WhisperRecognizer",
    "arpa_language_model",
    "get_speech_recognizer",
    "normalise_words",
    "pronounce",
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

    Digits in a word are spelled ("ub40" -> "u b forty" is beyond this: each digit is said on its own).
    """
    if word in lexicon:
        return lexicon[word]
    if word.isdigit():
        return " ".join(lexicon.get(_DIGIT_NAMES[d], "") for d in word)
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

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "play some {mood} {genre} songs",
    "play some {mood} songs",
    "play some {genre}",
    "play {genre}",
    "play {title}",
    "play {title} by {artist}",
    "play something {mood}",
    "{mood} {genre}",
    "{genre} from the {era}",
    "{era} {genre}",
    "{era} {genre} but not {artist}",
    "{genre} but not {artist}",
    "something like {artist}",
    "something like {title}",
    "more like {artist}",
    "songs by {artist}",
    "music by {artist}",
    "{artist}",
    "{title}",
    "{mood} music for {activity}",
    "music for {activity}",
    "{mood} songs for {activity}",
    "play some {mood} songs for {activity}",
    "play some {mood} songs for a {activity}",
    "songs for a {activity}",
    "{genre} for {activity}",
    "{genre} over {number} bpm",
    "{genre} under {number} bpm",
    "{mood} {genre} over {number} bpm",
    "songs around {number} bpm",
    "{genre} with {tag}",
    "{tag} {genre}",
    "{mood} {tag} songs",
    "{genre} without {tag}",
    "i want {mood} {genre}",
    "i want to hear {artist}",
    "find {genre} like {artist}",
    "{genre} and {genre}",
    "the best of {era} {genre}",
    "{genre} from {year}",
)

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


@dataclass(frozen=True, slots=True)
class SpeechDomain:
    """What users say to Encore: query templates and the words that fill their ``{slots}``.

    ``artists`` and ``titles`` come from the live collection; rebuild the recognizer
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
    extra_sentences: tuple[str, ...] = field(default=())
    """Whole sentences added as they are (e.g. logged queries)."""

    def slots(self) -> dict[str, tuple[str, ...]]:
        return {"genre": self.genres, "mood": self.moods, "activity": self.activities, "tag": self.tags,
                "era": self.eras, "year": self.years, "number": self.numbers, "artist": self.artists,
                "title": self.titles}

    def fingerprint(self) -> str:
        """A hash of everything in the domain: equal hashes build the same language model."""
        h = hashlib.sha256()
        parts = {"templates": self.templates, "extra_sentences": self.extra_sentences, **self.slots()}
        for name, values in parts.items():
            h.update(name.encode() + b"\0" + "\x1f".join(values).encode("utf-8") + b"\0")
        return h.hexdigest()[:16]

    def sentences(self) -> Iterable[list[str]]:
        """Every template with every slot value appearing at least once (slots vary together, in
        rotation, rather than as a full cross product: the n-grams cover slot-template joins),
        plus :attr:`extra_sentences`."""
        slots = {k: [normalise_words(v) for v in vs] for k, vs in self.slots().items()}
        slots = {k: [v for v in vs if v] for k, vs in slots.items()}
        for template in self.templates:
            names = re.findall(r"\{(\w+)\}", template)
            if any(not slots.get(n) for n in names):
                continue  # e.g. no artists in an empty collection
            rounds = max((len(slots[n]) for n in names), default=1)
            for i in range(rounds):
                words: list[str] = []
                for k, part in enumerate(re.split(r"(\{\w+\})", template)):
                    if part.startswith("{"):
                        values = slots[part[1:-1]]
                        words += values[(i + 7 * k) % len(values)]  # stride 1: every value appears
                    else:
                        words += normalise_words(part)
                yield words
        for sentence in self.extra_sentences:
            if words := normalise_words(sentence):
                yield words


def arpa_language_model(sentences: Iterable[list[str]], *, discount: float = 0.5) -> str:
    """A trigram language model in ARPA format, from tokenised sentences.

    Absolute discounting with back-off (``discount`` taken from every seen count), normalised so
    each history's probabilities and back-off mass sum to one. Sentences are wrapped in
    ``<s>`` / ``</s>``.
    """
    uni: Counter[str] = Counter()
    bi: defaultdict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    tri: defaultdict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for sentence in sentences:
        words = ["<s>", *sentence, "</s>"]
        uni.update(words[1:])
        for a, b in itertools.pairwise(words):
            bi[(a,)][b] += 1
        for a, b, c in zip(words, words[1:], words[2:], strict=False):
            tri[(a, b)][c] += 1
    if not uni:
        raise ValueError("no sentences to build a language model from")
    total = sum(uni.values())
    p1 = {w: c / total for w, c in uni.items()}
    p1["<s>"] = 0.0

    def conditional(table: Mapping[tuple[str, ...], Counter[str]], lower: Callable[[tuple[str, ...], str], float]):
        probs: dict[tuple[str, ...], float] = {}
        backoff: dict[tuple[str, ...], float] = {}
        for hist, nexts in table.items():
            n = sum(nexts.values())
            left = discount * len(nexts) / n
            for w, c in nexts.items():
                probs[(*hist, w)] = (c - discount) / n + left * lower(hist, w)
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
    """

    name = "pocketsphinx"

    def __init__(
        self,
        domain: SpeechDomain | None = None,
        *,
        params: SpeechParams | None = None,
        model_dir: str | Path | None = None,
    ) -> None:
        self.params = params or SpeechParams()
        self._domain = domain
        self._model_dir = Path(model_dir).expanduser() if model_dir is not None else None
        self._decoder: Any = None
        self._built: str | None = None  # fingerprint of the domain the decoder holds
        self._lexicon: dict[str, str] | None = None
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

    def _read_lexicon(self, dic: Path) -> dict[str, str]:
        if self._lexicon is None:
            lexicon: dict[str, str] = {}
            for line in dic.read_text(encoding="utf-8", errors="replace").splitlines():
                word, _, phones = line.partition(" ")
                if "(" not in word and phones:  # first pronunciation of each word
                    lexicon[word] = phones.strip()
            self._lexicon = lexicon
        return self._lexicon

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
        if self._domain is None:
            decoder = pocketsphinx.Decoder(hmm=str(hmm), dict=str(dic), bestpath=True, samprate=SR)
            self.guessed = {}
        else:
            lexicon = self._read_lexicon(dic)
            sentences = list(self._domain.sentences())
            if not sentences:
                raise ValueError("the speech domain holds no sentences (no templates could be filled)")
            vocabulary = sorted({w for s in sentences for w in s})
            guessed = {w: pronounce(w, lexicon) for w in vocabulary if w not in lexicon}
            with tempfile.TemporaryDirectory(prefix="encore-speech-") as tmp:
                # A dictionary of the domain's words only: loads in milliseconds, not the 130k of CMUdict.
                dict_path, lm_path = Path(tmp) / "domain.dict", Path(tmp) / "domain.arpa"
                dict_path.write_text(
                    "".join(f"{w} {lexicon.get(w) or guessed[w]}\n" for w in vocabulary), encoding="utf-8"
                )
                lm_path.write_text(arpa_language_model(sentences), encoding="utf-8")
                decoder = pocketsphinx.Decoder(hmm=str(hmm), dict=str(dict_path), lm=str(lm_path),
                                               bestpath=True, samprate=SR)
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

    def transcribe(self, y: np.ndarray, *, sr: int) -> Transcript:
        y = check_query_audio(y, sr=sr, params=self.params)
        seconds = y.size / sr
        # Quiet margins: pocketsphinx estimates its noise floor and cepstral mean from the edges,
        # and a query cut tight to the first word loses that word without them.
        pad = np.zeros(int(self.params.margin_seconds * SR), dtype=np.float32)
        y16 = np.concatenate([pad, _to_16k(y, sr=sr), pad])
        pcm = (np.clip(y16, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        with self._lock:
            self._load_locked()
            decoder = self._decoder
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            logmath = decoder.get_logmath()
            segments = [(s.word, logmath.exp(s.prob)) for s in decoder.seg()]
        words = [(w.split("(")[0], p) for w, p in segments if not _FILLERS.match(w)]
        if hyp is None or not words:
            return Transcript("", 0.0, self.name, seconds)
        confidence = float(np.mean([p for _, p in words]))
        if confidence < self.params.min_confidence:
            return Transcript("", round(confidence, 4), self.name, seconds)
        return Transcript(" ".join(w for w, _ in words), round(confidence, 4), self.name, seconds)


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

