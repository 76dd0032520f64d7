"""Identify with the clip-analysis pool (``ENCORE_ANALYSIS_WORKERS``), over real HTTP.

The pool moves decoding, fingerprinting and the clip's embedding to worker processes while the
store stays in the server process. These tests hold it to what a user sees: the same answers and the
same errors as without it, one clear 503 when a worker is killed mid-clip and then service as
before, and no worker process or upload folder left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pytest

from app.main import create_app
from encore.catalog import TrackMeta
from encore.config import Settings
from encore.service import Encore
from indexers.decode import load_audio
from indexers.metadata import TrackInfo
from indexers.pipeline import ingest_batches
from indexers.sample import sample_batches
from tests.utils.audio import write_audio
from tests.utils.bad_audio import decoders_run
from tests.utils.server import free_port, serve_in_thread

if TYPE_CHECKING:
    from tests.conftest import AudioFiles

#: What the equality test uploads: clips the catalog knows (with and without a world twin), one
#: it does not, and bad files each decoder stage refuses.
GOOD = ("clip_a", "clip_b", "clip_unknown")
BAD = ("not_audio", "empty", "too_short", "silent", "truncated_wav")


@dataclass(frozen=True)
class Store:
    settings: Settings
    files: dict[str, Path]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, audio: AudioFiles,
          make_settings: Callable[..., Settings]) -> Store:
    """Catalog: track_a and track_b. World: 200 sample tracks and track_b again (its twin), so
    identify answers neighbours by the clip's embedding and, for track_b, by the twin."""
    folder = tmp_path_factory.mktemp("pool")
    settings = make_settings(folder / "data")
    y, _ = load_audio(audio.track_b, sr=22050)
    clip_b = write_audio(folder / "clip_b.ogg", y[4 * 22050 : 12 * 22050], sr=22050, fmt="ogg")
    with Encore.open(settings) as enc:
        enc.add_catalog_file(audio.track_a, meta=TrackMeta(title="Battle Theme", artist="Wesnoth"))
        enc.add_catalog_file(audio.track_b, meta=TrackMeta(title="Harbour Lights", artist="Quay"))
        ingest_batches(enc, sample_batches(200, seed=9, head=enc.tag_head), total=200, source="sample",
                       progress=False)
        enc.add_world_file(audio.track_b, info=TrackInfo(title="Harbour Lights", artist="Quay", genre="ambient"))
    files = {name: getattr(audio, name) for name in GOOD + BAD if name != "clip_b"}
    return Store(settings=settings, files={**files, "clip_b": clip_b})


def _identify(http: httpx.Client, path: Path) -> httpx.Response:
    return http.post("/v1/identify", files={"file": (path.name, path.read_bytes())})


def _answer(response: httpx.Response) -> tuple[int, dict]:
    """Status and body, without the timing (the one field that may differ)."""
    body = response.json()
    body.pop("took_ms", None)
    return response.status_code, body


def _serve(settings: Settings, names: tuple[str, ...], files: dict[str, Path]) -> tuple[dict[str, tuple[int, dict]],
                                                                                        list[int]]:
    """Serve ``settings`` (the app owns its facade, as ``encore serve`` does), identify ``names``;
    answers them, and the pool's worker pids while it served."""
    app = create_app(settings)
    with serve_in_thread(app, access_log=False) as base, httpx.Client(base_url=base, timeout=120) as http:
        answers = {name: _answer(_identify(http, files[name])) for name in names}
        pool = app.state.encore.analysis
        pids = pool.pids() if pool is not None else []
    return answers, pids


@pytest.fixture(scope="module")
def in_process(store: Store) -> dict[str, tuple[int, dict]]:
    with decoders_run() as ran:
        answers, pids = _serve(store.settings.model_copy(update={"analysis_workers": 0}), GOOD + BAD, store.files)
    assert pids == []
    assert set(ran) == {"pyav"}  # the default query decoder (auto), PyAV being installed with Encore
    return answers


@pytest.fixture(scope="module")
def through_ffmpeg(store: Store) -> dict[str, tuple[int, dict]]:
    settings = store.settings.model_copy(update={"analysis_workers": 0, "query_decoder": "ffmpeg"})
    with decoders_run() as ran:
        answers, _ = _serve(settings, GOOD + BAD, store.files)
    assert set(ran) == {"ffmpeg"}
    return answers


@pytest.fixture(scope="module")
def pooled(store: Store) -> tuple[dict[str, tuple[int, dict]], list[int]]:
    # The workers decode with the facade's query decoder, PyAV: the not-audio error, whose reason
    # is each decoder's own, must come out as in_process's.
    with decoders_run() as ran:
        served = _serve(store.settings.model_copy(update={"analysis_workers": 2}), GOOD + BAD, store.files)
    assert ran == []  # nothing decoded in the server process
    return served


def _alive(pid: int) -> bool:
    """A live process (not a zombie nobody reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except OSError:
            continue
    return kids


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:  # ended meanwhile
        return b""


def _spawned_workers() -> list[int]:
    """This process's children that are multiprocessing workers (not its resource tracker)."""
    return [pid for pid in _children(os.getpid()) if b"spawn_main" in _cmdline(pid) and _alive(pid)]


def test_the_pool_answers_exactly_as_the_server_process_does(
    in_process: dict[str, tuple[int, dict]], pooled: tuple[dict[str, tuple[int, dict]], list[int]]
) -> None:
    answers, pids = pooled

    assert len(pids) == 2  # the clips really went through two worker processes
    assert in_process["clip_a"][1]["match"]["title"] == "Battle Theme"
    assert len(in_process["clip_a"][1]["similar"]) == 10  # neighbours by the clip's embedding
    assert in_process["clip_b"][1]["match"]["title"] == "Harbour Lights"
    assert in_process["clip_unknown"][1]["match"] is None
    assert len(in_process["clip_unknown"][1]["similar"]) == 20
    for name in GOOD:
        assert answers[name] == in_process[name], name


@pytest.mark.parametrize("name", BAD)
def test_bad_input_through_the_pool_gets_the_same_error(
    name: str, in_process: dict[str, tuple[int, dict]], pooled: tuple[dict[str, tuple[int, dict]], list[int]]
) -> None:
    answers, _ = pooled
    status, body = in_process[name]

    assert 400 <= status < 500 and body["detail"]
    assert answers[name] == (status, body)


def test_the_ffmpeg_query_decoder_gives_the_same_answers(
    in_process: dict[str, tuple[int, dict]], through_ffmpeg: dict[str, tuple[int, dict]]
) -> None:
    for name in GOOD:
        (status, body), (status_ffmpeg, body_ffmpeg) = in_process[name], through_ffmpeg[name]
        assert status == status_ffmpeg == 200
        assert body_ffmpeg["match"] == body["match"], name
        assert [t["track_id"] for t in body_ffmpeg["similar"]] == [t["track_id"] for t in body["similar"]], name
    for name in BAD:
        assert through_ffmpeg[name][0] == in_process[name][0], name
        if name != "not_audio":  # its reason in brackets is each decoder's own
            assert through_ffmpeg[name] == in_process[name], name


def test_shutdown_leaves_no_worker_processes(pooled: tuple[dict[str, tuple[int, dict]], list[int]]) -> None:
    _, pids = pooled  # the server that used them has shut down

    assert pids
    assert [pid for pid in pids if _alive(pid)] == []
    assert _spawned_workers() == []


def _cpu_ticks(pid: int) -> int:
    """User + system CPU time of ``pid`` so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _kill_when_busy(pid: int, *, timeout_s: float = 60.0) -> bool:
    """SIGKILL worker ``pid`` once it is working on a clip: an ffmpeg child running (the ffmpeg
    query decoder), or CPU time going up (PyAV decodes in the worker itself; idle, it uses none)."""
    deadline = time.monotonic() + timeout_s
    idle = _cpu_ticks(pid)
    while time.monotonic() < deadline:
        if _children(pid) or _cpu_ticks(pid) >= idle + 2:
            os.kill(pid, signal.SIGKILL)
            return True
        time.sleep(0.002)
    return False


def test_a_worker_killed_mid_clip_costs_that_request_a_503_then_identify_works_again(
    store: Store, in_process: dict[str, tuple[int, dict]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the server puts uploads
    # A long clip (60 s, the most identify analyses) keeps the worker busy long enough to be caught at it.
    y, _ = load_audio(store.files["clip_unknown"], sr=22050)
    long_clip = write_audio(tmp_path / "long.wav", np.tile(y, 8), sr=22050, fmt="wav")
    app = create_app(store.settings.model_copy(update={"analysis_workers": 1}))

    with serve_in_thread(app, access_log=False) as base, httpx.Client(base_url=base, timeout=120) as http:
        pool = app.state.encore.analysis
        [worker] = pool.pids()
        with ThreadPoolExecutor(1) as side:
            pending = side.submit(_identify, http, long_clip)
            killed = _kill_when_busy(worker)
            interrupted = pending.result()
        after = [_identify(http, store.files[name]) for name in ("clip_a", "clip_unknown")]
        workers_after = pool.pids()
        deadline = time.monotonic() + 10
        while any(scratch.iterdir()) and time.monotonic() < deadline:  # removed as each request ends
            time.sleep(0.05)
        uploads_left = [p.name for p in scratch.iterdir()]

    assert killed
    assert interrupted.status_code == 503
    assert "worker process stopped" in interrupted.json()["detail"]
    assert int(interrupted.headers["Retry-After"]) >= 1
    assert [_answer(r) for r in after] == [in_process["clip_a"], in_process["clip_unknown"]]
    assert len(workers_after) == 1 and workers_after != [worker]  # a fresh worker answered
    assert not _alive(worker)
    assert uploads_left == []
    assert _spawned_workers() == []  # and the fresh one stopped with the server


def test_workers_exit_when_the_server_process_is_killed(store: Store, tmp_path: Path) -> None:
    """A server killed outright (SIGKILL, the OOM killer) never shuts its pool down: the workers
    must notice and exit rather than live on as orphans."""
    port = free_port()
    env = {**os.environ, "ENCORE_DATA_DIR": str(store.settings.data_dir), "ENCORE_ANALYSIS_WORKERS": "2",
           "ENCORE_RATE_LIMIT_PER_MINUTE": "0"}
    for name in ("ENCORE_QDRANT_URL", "ENCORE_API_KEY"):
        env.pop(name, None)
    server = subprocess.Popen([sys.executable, "-m", "encore.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        healthy, workers = False, []
        while time.monotonic() < deadline and not healthy:
            time.sleep(0.2)
            try:  # the server listens once its lifespan started the workers
                healthy = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                continue
        workers = [pid for pid in _children(server.pid) if b"spawn_main" in _cmdline(pid)]
        assert healthy and len(workers) == 2, "the server did not start with its two workers"
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/identify", timeout=120,
                            files={"file": ("clip_a.mp3", store.files["clip_a"].read_bytes())})
        assert answer.status_code == 200 and answer.json()["match"]["title"] == "Battle Theme"
    finally:
        server.kill()
        server.wait(timeout=30)

    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in workers if _alive(pid)] == []


@pytest.fixture(autouse=True)
def _no_stray_workers() -> Iterator[None]:
    yield
    assert _spawned_workers() == [], "a test left analysis workers running"
