"""The web page in a real browser: headless Chromium driven by Selenium against a live
``encore serve`` (real uvicorn, real ffmpeg, the embedded engine) over a 300-track sample world
and a two-track catalog.

Each test leaves a screenshot in ``tests/artifacts/browser/``.
"""

from __future__ import annotations

import base64
import math
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from encore.catalog import TrackMeta
from encore.config import Settings
from encore.service import Encore
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from tests.utils.audio import write_audio
from tests.utils.browser import CHROMEDRIVER, CHROMIUM, chromium, full_page_screenshot, live_server

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

    from tests.conftest import AudioFiles

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver; "
           "scripts/encore-test installs them)",
)

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
ESPEAK = shutil.which("espeak-ng")
#: A catalog title that would run script if the page ever parsed API strings as HTML.
HOSTILE_TITLE = '<img src=x onerror="document.title=\'pwned\'">Night <b>Drive</b>'
HOSTILE_ARTIST = 'Synth & "Sons"'
SECOND_TITLE = "Second Song"
WAIT_S = 30


@dataclass(frozen=True)
class Site:
    url: str
    root: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, make_settings: Callable[..., Settings],
         audio: AudioFiles) -> Iterator[Site]:
    """A live server over a 300-track sample world (as ``encore world sample --count 300 --seed 0``
    makes) and a catalog of tracks A (a hostile title) and B, stored before it starts."""
    root = tmp_path_factory.mktemp("browser")
    data = root / "data"
    with Encore.open(make_settings(data)) as enc:
        batches = sample_batches(300, seed=0, head=enc.tag_head, space=enc.encoder.description.name)
        ingest_batches(enc, batches, total=300, source="sample", progress=False)
        enc.add_catalog_file(audio.track_a, meta=TrackMeta(title=HOSTILE_TITLE, artist=HOSTILE_ARTIST,
                                                           album="Tests <3"))
        enc.add_catalog_file(audio.track_b, meta=TrackMeta(title=SECOND_TITLE, artist="Synth"))
    with live_server(data, log=root / "server.log") as url:
        yield Site(url=url, root=root)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[WebDriver]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Callable[[WebDriver, str], Path]:
    """``shoot(driver, suffix)``: a screenshot named after the test, in tests/artifacts/browser/."""

    def save(driver: WebDriver, suffix: str = "") -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}{suffix}.png"
        driver.save_screenshot(str(path))
        return path

    return save


@pytest.fixture
def page(browser: WebDriver, site: Site, shoot: Callable[[WebDriver, str], Path]) -> Iterator[WebDriver]:
    """The page freshly loaded in the shared browser; its screenshot is saved after the test, pass or fail."""
    browser.set_window_size(1200, 900)
    browser.get(f"{site.url}/#/")
    browser.refresh()  # a fresh page even when the last test left it on the same URL
    wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    yield browser
    shoot(browser)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "/v1/" not in e["message"]]
    assert not severe, f"errors in the page's console: {severe}"  # failed API calls are expected; script errors not


# --- helpers --------------------------------------------------------------------------------------


def wait(driver: WebDriver, condition: Callable[[WebDriver], object], timeout: float = WAIT_S):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def visible(driver: WebDriver, css: str, timeout: float = WAIT_S) -> WebElement:
    return wait(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)


def find(driver: WebDriver | WebElement, css: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, css)


def find_all(driver: WebDriver | WebElement, css: str) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, css)


def upload(driver: WebDriver, path: Path) -> None:
    find(driver, "#clip-file").send_keys(str(path))


def listed(driver: WebDriver, container: str) -> list[dict[str, str]]:
    """The tracks of a list on the page, as a visitor reads them (one script call: a WebDriver call
    per field would make each list cost seconds on a busy machine)."""
    return driver.execute_script("""
        const text = (item, css) => item.querySelector(css)?.innerText ?? "";
        return [...document.querySelectorAll(arguments[0] + " ol.tracks > li")].map((item) => ({
            title: text(item, ".title"), artist: text(item, ".artist"), year: text(item, ".year"),
            genre: text(item, ".genre"), href: item.querySelector("a").href}));
    """, container)


def type_into(field: WebElement, text: str) -> None:
    """Replace a field's value as a person does (select all, type); Selenium's clear() would commit
    an empty value first."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(text)


def search_for(driver: WebDriver, text: str) -> None:
    box = find(driver, "#query")
    box.clear()
    box.send_keys(text + "\n")
    visible(driver, "#results-heading, #no-results, #search-result .error")


def rerun(driver: WebDriver, action: Callable[[], None]) -> None:
    """Do ``action`` (a chip edit) and wait for the search it starts to render its answer."""
    old = find(driver, "#search-result > *")
    action()
    wait(driver, ec.staleness_of(old))
    visible(driver, "#results-heading, #no-results, #search-result .error")
    wait(driver, lambda d: find(d, "#search-result").get_attribute("aria-busy") is None)


def chip(driver: WebDriver, name: str) -> WebElement | None:
    found = find_all(driver, f'#search-result .chip[data-filter="{name}"]')
    return found[0] if found else None


def _years(rows: list[dict[str, str]]) -> list[int]:
    return [int(r["year"]) for r in rows]


# --- identify -------------------------------------------------------------------------------------


def test_a_degraded_excerpt_of_a_catalog_track_is_identified(page: WebDriver, audio: AudioFiles) -> None:
    upload(page, audio.clip_a)  # 8 s from 7.5 s into track A, white noise at 10 dB SNR, as mp3

    card = visible(page, "#match")

    assert find(card, ".match-title").text == HOSTILE_TITLE  # shown as text, not run as HTML
    assert find_all(page, "#identify-result img, #identify-result b") == []
    assert page.title != "pwned"
    assert HOSTILE_ARTIST in find(card, ".byline").text and "Tests <3" in find(card, ".byline").text
    assert re.fullmatch(r"(over 99\.9|[5-9]\d)%", find(card, ".confidence").text)
    assert find(card, ".offset").text == "0:07"
    assert find(page, "#similar-heading").text == "Similar tracks (10)"
    similar = listed(page, "#identify-result")
    assert len(similar) == 10 and all(r["title"] and r["href"].split("#")[1].startswith("/track/") for r in similar)
    status = find(page, "#identify-status")  # no longer busy; the outcome is there for screen readers
    assert status.get_attribute("textContent") == f"{audio.clip_a.name}: {HOSTILE_TITLE}."


def test_a_clip_dropped_on_the_page_is_identified_with_a_busy_state_meanwhile(page: WebDriver,
                                                                             audio: AudioFiles) -> None:
    # A slow network (1.5 s each way) keeps the request in flight long enough to see the busy state.
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        page.execute_script("""
            const [name, encoded, zone] = arguments;
            const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "audio/mpeg" }));
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        """, audio.clip_a.name, base64.b64encode(audio.clip_a.read_bytes()).decode(), find(page, "#identify-form"))

        assert f"Identifying {audio.clip_a.name}" in visible(page, "#identify-status").text
        assert find(page, "#identify-result").get_attribute("aria-busy") == "true"
        assert not find(page, "#identify-submit").is_enabled() and not find(page, "#record").is_enabled()
        card = visible(page, "#match")
    finally:
        page.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    assert find(card, ".match-title").text == HOSTILE_TITLE
    assert find(page, "#identify-result").get_attribute("aria-busy") is None
    assert find(page, "#identify-submit").is_enabled() and find(page, "#record").is_enabled()


def test_an_out_of_catalog_clip_is_unknown_with_twenty_similar_tracks(page: WebDriver, audio: AudioFiles) -> None:
    upload(page, audio.clip_unknown)

    card = visible(page, "#unknown")

    assert "Not in your catalog" in card.text
    assert find_all(page, "#match") == []
    assert find(page, "#similar-heading").text == "Similar tracks (20)"
    assert len(listed(page, "#identify-result")) == 20


def test_a_file_that_is_not_audio_shows_a_readable_error(page: WebDriver, audio: AudioFiles) -> None:
    upload(page, audio.not_audio)

    error = visible(page, "#identify-result .error")

    assert error.get_attribute("role") == "alert"
    assert f"Could not identify {audio.not_audio.name}" in error.text
    assert "not an audio file" in error.text and "(HTTP 415)" in error.text
    assert "{" not in error.text and "detail" not in error.text  # a sentence, not the raw JSON
    assert find(page, "#identify-submit").is_enabled()  # ready for another try


def test_an_unreachable_server_shows_a_readable_error(page: WebDriver) -> None:
    page.execute_cdp_cmd("Network.enable", {})
    page.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        search_for(page, "happy rock from the 80s")
        error = visible(page, "#search-result .error")
    finally:
        page.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    assert "Search failed" in error.text and "Could not reach the Encore server" in error.text
    assert find(page, "#search-submit").is_enabled()


def test_recording_from_the_microphone_identifies_the_music(
    site: Site, audio: AudioFiles, tmp_path: Path, shoot: Callable[[WebDriver, str], Path]
) -> None:
    # The fake microphone plays track B (a catalog track) from its start when the page opens it.
    played = tmp_path / "track_b.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(audio.track_b), "-c:a", "pcm_s16le", str(played)],
                   check=True)
    driver = chromium(fake_audio=played)
    try:
        driver.get(site.url)
        record = visible(driver, "#record")
        record.click()
        wait(driver, lambda d: find(d, "#record").text == "Stop and identify")
        wait(driver, lambda d: "0:05" in find(d, "#identify-status").text, timeout=15)
        find(driver, "#record").click()

        card = visible(driver, "#match")

        assert find(card, ".match-title").text == SECOND_TITLE
        assert find(card, ".offset").text in ("0:00", "0:01")
        assert find(driver, "#similar-heading").text == "Similar tracks (10)"
        assert find(driver, "#record").text == "Record from microphone"
    finally:
        shoot(driver, "")
        driver.quit()


# --- text search ----------------------------------------------------------------------------------


def test_a_busy_server_says_when_to_try_again(page: WebDriver) -> None:
    # The server's own 429 needs hundreds of requests; the page's handling of it is what is tested,
    # so this page's fetch answers one search as the rate limit would.
    page.execute_script("""
        const realFetch = window.fetch;
        window.fetch = (url, init) => {
            window.fetch = realFetch;  // only the next request
            return Promise.resolve(new Response(
                JSON.stringify({detail: "too many requests from this address: at most 600 a minute"}),
                {status: 429, headers: {"Content-Type": "application/json", "Retry-After": "7"}}));
        };
    """)
    search_for(page, "happy rock from the 80s")
    error = visible(page, "#search-result .error")

    assert "Too many requests from this address" in error.text
    assert "(HTTP 429) Try again in 7 s." in error.text
    assert find(page, "#search-submit").is_enabled()


def test_search_shows_the_reading_as_chips_that_correct_the_search(page: WebDriver) -> None:
    search_for(page, "happy rock from the 80s")

    years = chip(page, "year")
    assert chip(page, "genre") is not None and "rock" in chip(page, "genre").text
    assert years is not None
    assert (find(years, 'input[name="year_min"]').get_attribute("value"),
            find(years, 'input[name="year_max"]').get_attribute("value")) == ("1980", "1989")
    assert "happy" in find(page, "#search-result .reading-chip.mood").text
    first = listed(page, "#search-result")
    assert first and all(1980 <= y <= 1989 for y in _years(first)) and {r["genre"] for r in first} == {"rock"}
    full_page_screenshot(page, ARTIFACTS / "search-full-page.png")

    # A range is editable: from 1985 on.
    def from_1985() -> None:
        type_into(find(chip(page, "year"), 'input[name="year_min"]'), "1985\t")

    rerun(page, from_1985)
    narrowed = listed(page, "#search-result")
    assert narrowed and all(1985 <= y <= 1989 for y in _years(narrowed))
    assert find(chip(page, "year"), 'input[name="year_min"]').get_attribute("value") == "1985"
    assert page.switch_to.active_element.get_attribute("name") == "year_max"  # Tab's place kept for the keyboard

    # Removing the years chip drops the inferred decade: other years come back, rock stays.
    rerun(page, lambda: find(chip(page, "year"), "button.remove").click())
    widened = listed(page, "#search-result")
    assert chip(page, "year") is None and chip(page, "genre") is not None
    assert page.switch_to.active_element.get_attribute("class") == "remove"  # focus moved to a chip still there
    assert any(not 1980 <= y <= 1989 for y in _years(widened))
    assert {r["genre"] for r in widened} == {"rock"}
    assert [r["title"] for r in widened] != [r["title"] for r in first]

    # Removing the genre too: other genres come back.
    rerun(page, lambda: find(chip(page, "genre"), "button.remove").click())
    assert chip(page, "genre") is None
    assert {r["genre"] for r in listed(page, "#search-result")} - {"rock"}


def test_a_rejected_correction_is_explained_and_the_chips_stay(page: WebDriver) -> None:
    search_for(page, "happy rock from the 80s")
    before = listed(page, "#search-result")

    def impossible_year() -> None:
        type_into(find(chip(page, "year"), 'input[name="year_min"]'), "99999\t")

    rerun(page, impossible_year)

    error = find(page, "#search-result .error")
    assert "year_min" in error.text and "3000" in error.text and "(HTTP 422)" in error.text
    assert find(chip(page, "year"), 'input[name="year_min"]').get_attribute("value") == "1980"
    assert listed(page, "#search-result") == before


# --- track view -----------------------------------------------------------------------------------


def test_a_track_view_shows_tags_descriptors_and_neighbours_and_is_linkable(page: WebDriver, site: Site) -> None:
    search_for(page, "happy rock from the 80s")
    first = listed(page, "#search-result")[0]
    find(page, "#search-result ol.tracks a").click()

    title = visible(page, "#track-title")
    assert title.text == first["title"]
    assert page.current_url == first["href"] and "#/track/" in page.current_url
    assert page.title.startswith(first["title"])
    bars = page.execute_script("""
        return [...document.querySelectorAll("ul.tags .bar-row")].map((row) => ({
            label: row.querySelector(".bar-label").innerText, value: row.querySelector(".bar-value").innerText,
            width: row.querySelector(".bar-fill").getBoundingClientRect().width}));""")
    assert len(bars) >= 5
    widths = [b["width"] for b in bars]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0 and widths[-1] < widths[0]
    assert bars[0]["label"] == "rock" and all(re.fullmatch(r"\d+%", b["value"]) for b in bars)
    descriptors = find(page, "ul.descriptors").text
    assert re.search(r"Tempo\s+\d+ bpm", descriptors) and "Energy" in descriptors and "Danceability" in descriptors
    assert find(page, "#track-detail .year").text == first["year"]
    neighbours = listed(page, "#track-detail")
    assert len(neighbours) == 10 and first["title"] not in [n["title"] for n in neighbours[:1]]

    # A neighbour opens its own view; the browser's back button returns to the first track, then home.
    find(page, "#track-detail ol.tracks a").click()
    wait(page, lambda d: find(d, "#track-title").text == neighbours[0]["title"])
    assert page.current_url == neighbours[0]["href"]
    page.back()
    wait(page, lambda d: find(d, "#track-title").text == first["title"])
    page.back()
    visible(page, "#results-heading")
    assert not find(page, "#track-view").is_displayed()
    assert listed(page, "#search-result")[0]["title"] == first["title"]  # the search is still there

    # The view is linkable: opened directly in a fresh load.
    page.get(first["href"])
    page.refresh()
    assert visible(page, "#track-title").text == first["title"]
    assert len(listed(page, "#track-detail")) == 10


def test_a_link_to_a_track_that_does_not_exist_says_so(page: WebDriver, site: Site) -> None:
    page.get(f"{site.url}/#/track/no-such-track")
    page.refresh()

    error = visible(page, "#track-detail .error")

    assert "Could not open this track" in error.text and "No world track 'no-such-track'" in error.text
    assert "(HTTP 404)" in error.text


def test_the_page_fits_a_phone_screen(page: WebDriver) -> None:
    page.set_window_size(390, 844)
    search_for(page, "happy rock from the 80s")

    def overflow(driver: WebDriver) -> int:
        return driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth")

    assert overflow(page) <= 0
    find(page, "#search-result ol.tracks a").click()
    visible(page, "#track-title")
    assert overflow(page) <= 0
    assert find(page, "ul.tags .bar-fill").size["width"] > 0


# --- voice ----------------------------------------------------------------------------------------


def _spoken(text: str, path: Path) -> float:
    """Write ``text`` said by espeak-ng as 16 kHz 16-bit WAV, what Chromium's fake microphone plays
    (in a loop); returns when the speech ends, in seconds. One second of silence leads, so a
    recording that starts late still has the first word, and two follow, so one that stops late
    has not looped back into the speech."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run([ESPEAK, "-v", "en-us+f3", "-s", "140", "-w", str(raw), text], check=True, capture_output=True)
    speech = subprocess.run(["ffmpeg", "-v", "error", "-i", str(raw), "-f", "f32le", "-ac", "1", "-ar", "16000", "-"],
                            check=True, capture_output=True).stdout
    y = np.frombuffer(speech, dtype=np.float32)
    write_audio(path, np.concatenate([np.zeros(16000, np.float32), y, np.zeros(32000, np.float32)]), sr=16000,
                fmt="wav")
    return 1.0 + y.size / 16000


def _hold_until_said(driver: WebDriver, press: ActionChains, release: ActionChains, seconds: float) -> None:
    """Press, keep holding until the page has recorded ``seconds`` (its own clock, shown in its
    status), then let go: a fixed pause would cut the speech whenever the microphone opens slowly."""
    old = find(driver, "#transcript") if find_all(driver, "#transcript") else None
    press.perform()
    wait(driver, lambda d: re.search(rf"Listening… 0:0[{math.ceil(seconds)}-9]", find(d, "#search-status").text))
    release.perform()
    if old is not None:
            wait(driver, ec.staleness_of(old))


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_hold_to_speak_searches_by_voice(site: Site, tmp_path: Path,
                                         shoot: Callable[[WebDriver, str], Path]) -> None:
    query = tmp_path / "query.wav"
    said = _spoken("happy rock from the eighties", query)
    driver = chromium(fake_audio=query)
    try:
        driver.get(site.url)
        speak = visible(driver, "#speak")

        _hold_until_said(driver, ActionChains(driver).click_and_hold(speak), ActionChains(driver).release(), said)

        heard = visible(driver, "#transcript")
        assert heard.text == "happy rock from the eighties"
        assert find(driver, "#query").get_attribute("value") == heard.text
        years = chip(driver, "year")
        assert years is not None and find(years, 'input[name="year_min"]').get_attribute("value") == "1980"
        assert "rock" in chip(driver, "genre").text
        results = listed(driver, "#search-result")
        assert results and all(1980 <= y <= 1989 for y in _years(results))
        assert find(driver, "#speak").text == "Hold to speak"

        # The keyboard holds it too: Space down, speak, Space up.
        driver.execute_script("arguments[0].focus()", find(driver, "#speak"))
        _hold_until_said(driver, ActionChains(driver).key_down(Keys.SPACE), ActionChains(driver).key_up(Keys.SPACE),
                         said)
        assert visible(driver, "#transcript").text == "happy rock from the eighties"

        # A press too short to say anything is explained, not sent.
        ActionChains(driver).click_and_hold(find(driver, "#speak")).pause(0.1).release().perform()
        wait(driver, lambda d: "too short" in find(d, "#search-status").text)
        assert find(driver, "#transcript").text == "happy rock from the eighties"
    finally:
        shoot(driver, "")
        driver.quit()
