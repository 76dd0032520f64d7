"""notebooks/demo.ipynb runs top to bottom, headless, on a small collection, and shows what it promises.

The parameter cell (tag ``parameters``) is replaced with a small collection in a temporary folder,
and the notebook runs in a kernel on this interpreter (a kernelspec written for the test, so a
``python3`` kernel installed elsewhere on the machine is never picked up).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "demo.ipynb"
N_TRACKS = 300


def _cell(nb, tag: str):
    found = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"one cell tagged {tag!r} expected, found {len(found)}"
    return found[0]


def _text(cell) -> str:
    """Everything a cell printed, and the text/markdown it displayed."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out.data.get("text/markdown", ""))
    return "".join(parts)


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def test_the_committed_notebook_is_valid_and_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook without outputs"
    assert code[0] is _cell(nb, "parameters"), "the parameter cell comes first, for papermill-style runs"
    assert re.search(r"^N_TRACKS = \d+", code[0].source, re.M) and re.search(r"^DATA_DIR = ", code[0].source, re.M)


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``python3`` kernelspec on this interpreter, first on JUPYTER_PATH; plots without a display."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Encore tests)", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("ENCORE_QDRANT_URL", raising=False)
    return "python3"


@pytest.mark.timeout(180)
def test_the_demo_runs_and_shows_its_answers(tmp_path: Path, kernel_env: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(kernel_env).argv[0] == sys.executable

    nb = nbformat.read(NOTEBOOK, as_version=4)
    data_dir = tmp_path / "demo-data"
    _cell(nb, "parameters").source = f"N_TRACKS = {N_TRACKS}\nDATA_DIR = {str(data_dir)!r}\nSEED = 0\n"
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name=kernel_env,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    world = _text(_cell(nb, "world"))
    assert f"world: {N_TRACKS} tracks added" in world
    assert (data_dir / "qdrant").is_dir(), "the collection is built in the DATA_DIR given"

    catalog = _text(_cell(nb, "catalog"))
    assert catalog.count("catalog: added") == 2

    identify = _text(_cell(nb, "identify"))
    match = re.search(r"MATCH: 'Sunset Drive' by The Synthetics at ([\d.]+) s", identify)
    assert match, f"the degraded clip was not identified:\n{identify}"
    assert abs(float(match.group(1)) - 12.0) < 0.3, "the clip starts 12 s into the track"
    assert "similar tracks in the world (nearest the clip's musicnn embedding): 10" in identify
    assert identify.count("\n|") >= 11, "a table of the 10 similar tracks"
    assert "no match" in _text(_cell(nb, "unknown"))

    search = _text(_cell(nb, "search"))
    for query in ("energetic rock from the 90s", "sad slow piano music", "happy dance music after 2010"):
        assert f"“{query}”" in search, f"no interpretation shown for {query!r}"
        assert re.search(rf"'{re.escape(query)}': [1-9]\d* results", search), f"no results for {query!r}"
    assert "rock → genre rock" in search and "years 1990-1999" in search
    assert "| title | artist | genre |" in search

    map_cell = _cell(nb, "map")
    assert f"map: {N_TRACKS} tracks" in _text(map_cell)
    assert _images(map_cell) == 1, "the map figure"
    assert _images(_cell(nb, "tags")) == 2, "the genre/tag bars and the genre x tag heat map"
