"""A live ``encore serve`` and headless Chromium for the web page's browser tests.

Chromium and its WebDriver come from Debian (``apt-get install chromium chromium-driver``;
``scripts/encore-test`` installs them). Selenium is pointed at both binaries explicitly, so its
Selenium Manager never looks anything up or downloads a driver.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["CHROMEDRIVER", "CHROMIUM", "chromium", "encore_executable", "free_port", "full_page_screenshot",
           "live_server"]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists()
                                                 else None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encore_executable() -> str:
    """The ``encore`` command of this environment."""
    script = Path(sys.executable).parent / "encore"
    return str(script) if script.exists() else shutil.which("encore") or "encore"


@contextmanager
def live_server(data_dir: Path, *, log: Path, timeout_s: float = 90.0) -> Iterator[str]:
    """Run ``encore serve`` (real uvicorn) over ``data_dir`` on a free port; yields its base URL.

    Waits for ``/v1/health``; the server's output goes to ``log``, quoted when it fails to start.
    The process is stopped (terminated, then killed) on exit.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCORE_")}
    env["ENCORE_DATA_DIR"] = str(data_dir)
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen([encore_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"encore serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"encore serve did not answer /v1/health in {timeout_s:.0f} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def chromium(*, fake_audio: Path | None = None, width: int = 1200, height: int = 900):
    """Headless Chromium through Selenium.

    Microphone requests are granted without asking and answered by a fake device; with
    ``fake_audio`` (a 16-bit PCM WAV file) the microphone hears that file, from its start each
    time it is opened, looping.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if CHROMIUM is None or CHROMEDRIVER is None:
        raise RuntimeError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-extensions",
                     "--no-first-run", "--mute-audio", f"--window-size={width},{height}",
                     "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"):
        options.add_argument(argument)
    if fake_audio is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={fake_audio}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def full_page_screenshot(driver, path: Path, *, width: int = 1200) -> Path:
    """The whole page (beyond the window) as a PNG, through the DevTools protocol."""
    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
