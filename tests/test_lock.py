"""The lock files agree with pyproject.toml: after a dependency changes there, scripts/encore-lock
must run again, or installs (pip's constraints from the lock) would refuse the new requirement."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins(lock: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements" / lock).read_text().splitlines():
        m = PIN.match(line)
        if m:
            found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    for extra in extras:
        listed += project["optional-dependencies"][extra]
    return [Requirement(r) for r in listed]


@pytest.mark.parametrize(("lock", "extras"), [
    ("main.lock", ()),
    ("test.lock", ("test", "clap", "openl3", "text", "voice")),
])
def test_every_requirement_is_locked_at_a_version_it_allows(lock: str, extras: tuple[str, ...]) -> None:
    locked = pins(lock)
    wrong = {str(r): locked.get(canonicalize_name(r.name), "missing") for r in requirements(*extras)
             if not r.specifier.contains(locked.get(canonicalize_name(r.name), "0.dev0"), prereleases=True)}
    assert not wrong, f"requirements/{lock} is stale, run scripts/encore-lock: {wrong}"


def test_the_test_lock_keeps_the_main_lock_versions() -> None:
    main, test = pins("main.lock"), pins("test.lock")
    assert main and {name: test.get(name) for name in main} == main
    # torch is its CPU build: none of the CUDA libraries the PyPI build would bring.
    assert test["torch"].endswith("+cpu")
    assert not [name for name in test if name.startswith(("nvidia-", "cuda-"))]
