"""Query interpretation: each kind of reading, its explanation, and what reaches Filters/Preferences."""

from __future__ import annotations

import json

import pytest

from encore.errors import BadInput
from encore.query import QueryParams, interpret, load_vocabulary, normalize, phrasings
from schemas.api import Filters
from schemas.search import Interpretation, SearchRequest, SearchResult

ARTISTS = ("Queen", "Daft Punk", "Nina Simone", "Miles Davis", "The Beatles", "Taylor Swift", "Metallica",
           "Bob Marley", "Adele", "Kendrick Lamar", "Johnny Cash", "Radiohead", "Sade")
YEAR = 2025


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary(artists=ARTISTS, genres=["Shoegaze"])


def read(text: str, vocab, **kw) -> Interpretation:
    return interpret(text, vocabulary=vocab, current_year=YEAR, **kw)


# --- years ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "lo", "hi"), [
    ("80s", 1980, 1989), ("eighties", 1980, 1989), ("'90s", 1990, 1999), ("90's", 1990, 1999),
    ("1990s", 1990, 1999), ("the 2000s", 2000, 2009), ("00s", 2000, 2009), ("60s", 1960, 1969),
    ("early 80s", 1980, 1983), ("late 90s", 1996, 1999),
    ("from 1985 to 1990", 1985, 1990), ("between 1970 and 1975", 1970, 1975), ("1985-1990", 1985, 1990),
    ("from the 70s to the 90s", 1970, 1999),
    ("before 1970", None, 1969), ("after 2000", 2001, None), ("since 2010", 2010, None),
    ("before the 80s", None, 1979), ("2015 onwards", 2015, None), ("in 1999", 1999, 1999),
    ("recent", 2020, None), ("new", 2020, None), ("oldies", None, 1969), ("old", None, 1969),
    ("last 10 years", 2015, None), ("this year", 2025, 2025),
])
def test_years(vocab, text, lo, hi):
    it = read(f"rock {text}", vocab)
    assert (it.year_min, it.year_max) == (lo, hi)
    assert it.genres == ["rock"]
    assert it.free_text == ""


def test_recent_counts_back_from_the_current_year(vocab):
    assert read("recent pop", vocab).year_min == 2020
    assert interpret("recent pop", vocabulary=vocab, current_year=2030).year_min == 2025
    assert interpret("recent pop", vocabulary=vocab, params=QueryParams(current_year=2030, recent_years=2)).year_min \
        == 2028


def test_year_explanation(vocab):
    assert "80s → years 1980-1989" in read("80s rock", vocab).explanations


def test_clashing_years_keep_the_first_and_say_so(vocab):
    it = read("80s music after 2000", vocab)
    assert (it.year_min, it.year_max) == (1980, 1989)
    assert any("clashes" in line for line in it.explanations)


# --- genres --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "genre"), [
    ("hip hop", "hip-hop"), ("Hip-Hop", "hip-hop"), ("rap", "hip-hop"), ("r and b", "r&b"), ("R&B", "r&b"),
    ("rnb", "r&b"), ("edm", "electronic"), ("techno", "electronic"), ("house", "electronic"), ("jazz", "jazz"),
    ("shoegaze", "shoegaze"),  # from the collection, not genres.json
])
def test_genres_and_synonyms(vocab, text, genre):
    it = read(text, vocab)
    assert it.genres == [genre]
    assert it.filters().genre == genre


def test_synonym_of_a_genre_the_collection_lacks_is_ignored(tmp_path):
    table = json.loads(open("encore/data/moods.json", encoding="utf-8").read())
    table["genre_synonyms"]["polka"] = ["oompah"]
    path = tmp_path / "moods.json"
    path.write_text(json.dumps(table), encoding="utf-8")
    assert "oompah" not in load_vocabulary(path=path).synonyms
    assert load_vocabulary(path=path, genres=["polka"]).synonyms["oompah"] == "polka"


def test_two_genres_stay_in_the_interpretation_but_not_the_filter(vocab):
    it = read("jazz and blues", vocab)
    assert it.genres == ["jazz", "blues"]
    assert it.filters().genre is None


# --- moods, activities, tempo, instruments -------------------------------------------------------


def test_activity_maps_to_tags_ranges_and_targets(vocab):
    it = read("happy songs for workout", vocab)
    assert it.moods == ["happy", "workout"]
    assert it.tags["happy"] > 0 and it.tags["dance"] > 0
    assert it.energy_min == pytest.approx(0.65)  # the stricter of happy (0.5) and workout (0.65)
    assert it.targets["tempo"] == 128
    prefs = it.preferences()
    assert prefs.target_tempo == 128 and prefs.target_energy is not None
    assert it.free_text == ""


@pytest.mark.parametrize(("text", "mood"), [
    ("running", "running"), ("party", "party"), ("studying", "study"), ("sleep", "sleep"), ("dinner", "dinner"),
    ("driving", "driving"), ("sad", "sad"), ("angry", "angry"), ("chill", "chill"), ("romantic", "romantic"),
    ("focus", "focus"), ("relax", "relax"),
])
def test_mood_words(vocab, text, mood):
    it = read(f"{text} music", vocab)
    assert it.moods == [mood]
    assert it.tags
    assert it.explanations[0].startswith(f"{text} → ")


def test_low_energy_moods_cap_energy(vocab):
    assert read("sad", vocab).energy_max == pytest.approx(0.5)
    assert read("sleep", vocab).energy_max == pytest.approx(0.35)
    assert read("party", vocab).danceability_min == pytest.approx(0.65)


@pytest.mark.parametrize(("text", "lo", "hi", "target"), [
    ("over 120 bpm", 120, None, None), ("above 140bpm", 140, None, None), ("120+ bpm", 120, None, None),
    ("under 90 bpm", None, 90, None), ("less than 100 bpm", None, 100, None),
    ("around 128 bpm", 122, 134, 128), ("128 bpm", 122, 134, 128), ("100-120 bpm", 100, 120, None),
    ("between 100 and 120 bpm", 100, 120, None),
    ("fast", 130, None, None), ("slow", None, 95, None), ("upbeat", 115, None, None),
])
def test_tempo(vocab, text, lo, hi, target):
    it = read(text, vocab)
    assert (it.tempo_min, it.tempo_max) == (lo, hi)
    assert it.targets.get("tempo") == target
    assert it.year_min is None and it.year_max is None  # bpm numbers are not years


def test_explicit_tempo_wins_over_tempo_words(vocab):
    it = read("fast songs under 120 bpm", vocab)
    assert (it.tempo_min, it.tempo_max) == (None, 120)
    assert any("ignored" in line for line in it.explanations)


@pytest.mark.parametrize(("text", "tag"), [
    ("guitar", "guitar"), ("acoustic", "acoustic"), ("instrumental", "instrumental"),
    ("female vocals", "female vocalists"), ("male vocals", "male vocalists"), ("with a female singer", "female vocalists"),
])
def test_instruments_and_vocals(vocab, text, tag):
    assert read(text, vocab).tags[tag] > 0


def test_piano_uses_stand_in_tags_and_says_so(vocab):
    it = read("piano", vocab)
    assert it.moods == ["piano"]
    assert set(it.tags) <= set(vocab.tag_names) and "piano" not in it.tags and it.tags
    assert "no piano tag" in it.explanations[0]


# --- negation -------------------------------------------------------------------------------------


def test_negated_mood_steers_away(vocab):
    it = read("not sad", vocab)
    assert it.tags == {"sad": -1.0}
    assert it.moods == [] and it.energy_max is None
    assert it.explanations == ["not sad → away from tag sad -1"]


def test_no_vocals_means_instrumental(vocab):
    for text in ("no vocals", "without any vocals", "no singing"):
        it = read(text, vocab)
        assert it.tags.get("instrumental", 0) > 0, text
        assert it.moods == ["instrumental"]


def test_negated_instrument_and_genre(vocab):
    it = read("rock without guitar but not metal", vocab)
    assert it.genres == ["rock"] and it.excluded_genres == ["metal"]
    assert it.tags == {"guitar": -1.0}


def test_negated_tempo_word(vocab):
    it = read("happy but not too fast", vocab)
    assert it.tempo_max == 130 and it.tempo_min is None


# --- artists ---------------------------------------------------------------------------------------


def test_like_an_artist_is_the_artist_not_a_genre(vocab):
    it = read("something like daft punk", vocab)
    assert it.artists_like == ["Daft Punk"]
    assert it.genres == [] and it.free_text == ""
    assert it.explanations == ["something like daft punk → sounds like artist Daft Punk"]


@pytest.mark.parametrize(("text", "artist"), [
    ("sounds like Radiohead", "Radiohead"), ("similar to miles davis", "Miles Davis"),
    ("like metalica", "Metallica"), ("like beatles", "The Beatles"), ("like the Beatles", "The Beatles"),
    ("like Kendrik Lamar", "Kendrick Lamar"),
])
def test_like_artist_fuzzy(vocab, text, artist):
    assert read(text, vocab).artists_like == [artist]


def test_by_and_not_artists_reach_the_filters(vocab):
    it = read("by Nina Simone", vocab)
    assert it.artists_by == ["Nina Simone"]
    assert it.filters().artist == "Nina Simone"
    it = read("80s rock but not Queen", vocab)
    assert it.artists_not == ["Queen"]
    f = it.filters()
    assert (f.genre, f.exclude_artist, f.year_min, f.year_max) == ("rock", "Queen", 1980, 1989)


@pytest.mark.parametrize("text", ["no queen", "without Queen", "except queen", "excluding Queen"])
def test_exclusion_triggers(vocab, text):
    assert read(f"rock {text}", vocab).artists_not == ["Queen"]


def test_from_an_artist_and_from_a_decade(vocab):
    it = read("songs from Metallica from the 80s", vocab)
    assert it.artists_by == ["Metallica"]
    assert (it.year_min, it.year_max) == (1980, 1989)


def test_several_artists_stay_listed(vocab):
    it = read("like the beatles and bob marley but not queen or adele", vocab)
    assert it.artists_like == ["The Beatles", "Bob Marley"]
    assert it.artists_not == ["Queen", "Adele"]
    assert it.filters().exclude_artist is None  # Filters holds one; the interpretation keeps both


def test_a_mood_word_is_not_a_misspelt_artist(vocab):
    it = read("not sad", vocab)  # "sad" is within fuzzy reach of Sade
    assert it.artists_not == [] and it.tags == {"sad": -1.0}
    assert read("like sade", vocab).artists_like == ["Sade"]


def test_unknown_artist_is_free_text(vocab):
    it = read("like Bjork", vocab)
    assert it.artists_like == [] and it.free_text == "Bjork"


def test_bare_artist_name(vocab):
    assert read("play some queen", vocab).artists_by == ["Queen"]


def test_without_artists_in_the_vocabulary_names_are_free_text():
    it = interpret("like daft punk", vocabulary=load_vocabulary(), current_year=YEAR)
    assert it.artists_like == [] and it.genres == ["punk"] and it.free_text == "daft"


# --- numbers said in words (voice transcripts) ----------------------------------------------------


@pytest.mark.parametrize(("said", "typed"), [
    ("songs over one hundred twenty bpm from the nineteen eighties", "songs over 120 bpm from the 1980s"),
    ("techno at a hundred and forty bpm", "techno at 140 bpm"),
    ("house around one twenty eight bpm", "house around 128 bpm"),
    ("rock between ninety and one hundred ten bpm", "rock between 90 and 110 bpm"),
    ("between a hundred and a hundred and forty bpm", "between 100 and 140 bpm"),
    ("electronic music under one hundred bpm", "electronic music under 100 bpm"),
    ("songs from nineteen eighty five", "songs from 1985"),
    ("blues from nineteen seventy to nineteen seventy five", "blues from 1970 to 1975"),
    ("jazz before nineteen seventy", "jazz before 1970"),
    ("pop from two thousand ten", "pop from 2010"),
    ("pop from two thousand and five", "pop from 2005"),
    ("pop from twenty ten", "pop from 2010"),
    ("pop after twenty twenty", "pop after 2020"),
    ("rock from two thousand to two thousand ten", "rock from 2000 to 2010"),
    ("soul from the nineteen sixties", "soul from the 1960s"),
    ("pop from the twenty tens", "pop from the 2010s"),
    ("the early nineteen nineties", "the early 1990s"),
])
def test_spoken_numbers_read_as_digits(vocab, said, typed):
    heard, written = read(said, vocab), read(typed, vocab)
    fields = ("tempo_min", "tempo_max", "year_min", "year_max", "genres", "targets", "free_text")
    assert {f: getattr(heard, f) for f in fields} == {f: getattr(written, f) for f in fields}
    assert heard.tempo_min is not None or heard.tempo_max is not None or heard.year_min is not None \
        or heard.year_max is not None  # something was read, not only equally missed


def test_spoken_tempo_explanation_keeps_the_words(vocab):
    it = read("techno over one hundred twenty bpm", vocab)
    assert "over one hundred twenty bpm → tempo ≥ 120 bpm" in it.explanations


def test_a_hundred_and_forty_is_one_tempo_not_a_range(vocab):
    it = read("a hundred and forty bpm", vocab)
    assert (it.tempo_min, it.tempo_max, it.targets.get("tempo")) == (134, 146, 140)


def test_number_words_elsewhere_stay_as_they_were():
    vocab = load_vocabulary(artists=["Twenty One Pilots", "Nine Inch Nails"])
    assert interpret("like twenty one pilots", vocabulary=vocab, current_year=YEAR).artists_like == \
        ["Twenty One Pilots"]
    assert interpret("nine inch nails", vocabulary=vocab, current_year=YEAR).artists_by == ["Nine Inch Nails"]
    it = interpret("rock from twenty thirty", vocabulary=vocab, current_year=YEAR)  # a year yet to come
    assert it.year_min is None and it.year_max is None


# --- the phrasings a recognizer is built from ---------------------------------------------------

# What each phrasing role must do, as (query with {p} for the phrase, what the reading must hold).
_ROLE_CHECKS = {
    "like": ("rock {p} radiohead", lambda it: it.artists_like == ["Radiohead"]),
    "by": ("rock {p} radiohead", lambda it: it.artists_by == ["Radiohead"]),
    "not": ("rock {p} queen", lambda it: it.artists_not == ["Queen"]),
    "negation": ("rock {p} guitar", lambda it: it.tags.get("guitar", 0) < 0),
    "tempo_above": ("rock {p} 120 bpm", lambda it: (it.tempo_min, it.tempo_max) == (120, None)),
    "tempo_above_after": ("rock 120 bpm {p}", lambda it: (it.tempo_min, it.tempo_max) == (120, None)),
    "tempo_below": ("rock {p} 120 bpm", lambda it: (it.tempo_min, it.tempo_max) == (None, 120)),
    "tempo_below_after": ("rock 120 bpm {p}", lambda it: (it.tempo_min, it.tempo_max) == (None, 120)),
    "tempo_around": ("rock {p} 120 bpm", lambda it: (it.tempo_min, it.tempo_max) == (114, 126)),
    "tempo_range_start": ("rock {p} 100 to 120 bpm", lambda it: (it.tempo_min, it.tempo_max) == (100, 120)),
    "tempo_range_to": ("rock 100 {p} 120 bpm", lambda it: (it.tempo_min, it.tempo_max) == (100, 120)),
    "years_before": ("rock {p} 1990", lambda it: (it.year_min, it.year_max) == (None, 1989)),
    "years_until": ("rock {p} 1990", lambda it: (it.year_min, it.year_max) == (None, 1990)),
    "years_after": ("rock {p} 1990", lambda it: (it.year_min, it.year_max) == (1991, None)),
    "years_since": ("rock {p} 1990 onwards", lambda it: (it.year_min, it.year_max) == (1990, None)),
    "years_later": ("rock 1990 {p}", lambda it: (it.year_min, it.year_max) == (1990, None)),
    "years_in": ("rock {p} 1990", lambda it: (it.year_min, it.year_max) == (1990, 1990)),
    "years_range_start": ("rock {p} 1985 to 1990", lambda it: (it.year_min, it.year_max) == (1985, 1990)),
    "years_range_to": ("rock 1985 {p} 1990", lambda it: (it.year_min, it.year_max) == (1985, 1990)),
    "years_last": ("rock {p} 10 years", lambda it: (it.year_min, it.year_max) == (YEAR - 10, None)),
    "years_count": ("rock from the last {p} years", lambda it: it.year_min is not None and it.year_max is None),
    "decade_part": ("rock {p} 80s", lambda it: it.year_min >= 1980 and it.year_max <= 1989
                    and it.year_max - it.year_min == 3),
    "decades": ("rock from the {p}", lambda it: it.year_min is not None and it.year_max - it.year_min == 9),
}


@pytest.mark.parametrize("role", sorted(phrasings()))
def test_every_listed_phrasing_is_read(vocab, role):
    # The voice recognizer's language model is built from phrasings(): a phrase listed there that
    # the parser did not read would be heard and then ignored.
    template, holds = _ROLE_CHECKS[role]
    for phrase in phrasings()[role]:
        it = read(template.format(p=phrase), vocab)
        assert holds(it), (phrase, it.explanations)
        assert it.free_text == "", (phrase, it.free_text)


# --- the whole ---------------------------------------------------------------------------------


def test_example_queries(vocab):
    it = read("sad piano music from the nineties", vocab)
    assert it.moods == ["sad", "piano"] and (it.year_min, it.year_max) == (1990, 1999)
    it = read("chill electronic for studying over 120 bpm", vocab)
    assert it.genres == ["electronic"] and it.moods == ["chill", "study"] and it.tempo_min == 120
    it = read("instrumental jazz before 1970", vocab)
    assert it.genres == ["jazz"] and it.tags["instrumental"] > 0 and it.year_max == 1969
    it = read("recent hip-hop with female vocals", vocab)
    assert it.genres == ["hip-hop"] and it.year_min == 2020 and it.tags["female vocalists"] > 0
    it = read("rock ballads from the 80s", vocab)
    assert it.genres == ["rock"] and it.moods == ["ballad"] and it.year_min == 1980
    assert read("fast punk", vocab).tempo_min == 130
    assert read("slow country songs", vocab).tempo_max == 95


def test_one_explanation_per_reading_in_text_order(vocab):
    it = read("80s rock but not Queen", vocab)
    assert it.explanations == ["80s → years 1980-1989", "rock → genre rock", "but not Queen → leaving out artist Queen"]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_query_is_bad_input(vocab, text):
    with pytest.raises(BadInput, match="empty"):
        read(text, vocab)


def test_punctuation_only_is_bad_input(vocab):
    with pytest.raises(BadInput):
        read("?!...", vocab)


def test_nothing_recognised_is_only_free_text(vocab):
    it = read("Play me some xylophone polka, please", vocab)
    assert it.free_text == "xylophone polka"
    assert it.is_empty()
    assert it.filters() == Filters() and it.preferences().targets() == {}
    assert it.explanations == ["xylophone polka → free text"]


def test_filters_clamp_and_explicit_filters_win(vocab):
    it = read("80s rock", vocab)
    f = it.filters(Filters(genre="pop", year_max=1985))
    assert (f.genre, f.year_min, f.year_max) == ("pop", 1980, 1985)


def test_search_models_round_trip(vocab):
    it = read("80s rock", vocab)
    body = SearchResult(interpretation=it, results=[]).model_dump(mode="json")
    assert set(body) == {"interpretation", "results"}
    assert SearchResult.model_validate(body).interpretation == it
    assert SearchRequest(query="x").limit == 20
    with pytest.raises(ValueError):
        SearchRequest(query="")


# --- the mood table ----------------------------------------------------------------------------


def test_shipped_table_is_valid_against_msd_tags(vocab):
    assert {"workout", "running", "party", "study", "sleep", "dinner", "driving", "sad", "happy", "angry", "chill",
            "romantic", "focus", "relax"} <= {m.name for m in vocab.moods}
    for m in vocab.moods:
        assert set(m.tags) <= set(vocab.tag_names), m.name


def _table_with(tmp_path, **moods):
    path = tmp_path / "moods.json"
    path.write_text(json.dumps({"moods": moods}), encoding="utf-8")
    return path


def test_table_is_extendable(tmp_path):
    path = _table_with(tmp_path, rainy={"kind": "mood", "words": ["rainy day", "rain"], "tags": {"sad": 0.5},
                                        "energy": [None, 0.4]})
    it = interpret("rainy day jazz", vocabulary=load_vocabulary(path=path), current_year=YEAR)
    assert it.moods == ["rainy"] and it.tags == {"sad": 0.5} and it.energy_max == 0.4


@pytest.mark.parametrize(("entry", "message"), [
    ({"kind": "mood", "tags": {"piano": 1}}, "unknown tag"),
    ({"kind": "feeling"}, "kind"),
    ({"kind": "mood", "energy": [0.8, 0.2]}, "above"),
    ({"kind": "mood", "targets": {"loudness": 1}}, "targets"),
    ({"kind": "mood", "when_negated": "nothing"}, "names no entry"),
])
def test_bad_table_is_bad_input(tmp_path, entry, message):
    with pytest.raises(BadInput, match=message):
        load_vocabulary(path=_table_with(tmp_path, x=entry))


def test_a_phrase_in_two_entries_is_bad_input(tmp_path):
    path = _table_with(tmp_path, a={"kind": "mood", "words": ["calm"]}, b={"kind": "mood", "words": ["calm"]})
    with pytest.raises(BadInput, match="both"):
        load_vocabulary(path=path)


def test_normalize():
    assert normalize("Hip-Hop") == "hip hop"
    assert normalize("R&B") == "r and b"
    assert normalize("’80s Beyoncé") == "80s beyonce"
