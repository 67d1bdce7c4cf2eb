"""End to end: `streamlit run ui/app.py` on a free localhost port, driven by headless Chromium.

A fresh index directory makes the app take its first-run path (build the index with a
progress bar), then the test asks a question and waits for a cited answer and a source
card. Screenshots go to the test's tmp_path. Everything runs under a hard deadline, and
the server and the browser are always stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, write_jsonl
from test_ui import TINY

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEADLINE_S = 300  # the whole test, server start and first-run index build included
QUESTION = "How does speculative decoding verify the drafted tokens?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit was not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(server: subprocess.Popen) -> None:
    """The whole process group: streamlit and anything it started."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    data = tmp_path / "papers"
    write_jsonl(data / "tiny.jsonl", TINY)
    env = dict(os.environ)  # already stripped of keys and ASSISTANT_* by conftest
    env.update(
        ASSISTANT_INDEX=str(tmp_path / "index"),  # missing: the app builds it
        ASSISTANT_DATA_DIR=str(data),
        ASSISTANT_ABSTAIN_SIMILARITY="-1",  # three papers are too few to calibrate against
        ASSISTANT_ABSTAIN_COVERAGE="0",
        HF_HUB_OFFLINE="1",
    )
    # The repository's theme and toolbar settings, without its .env (cwd is tmp_path).
    (tmp_path / ".streamlit").mkdir()
    shutil.copy(REPO / ".streamlit" / "config.toml", tmp_path / ".streamlit" / "config.toml")
    port = free_port()
    log = tmp_path / "streamlit.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(REPO / "ui" / "app.py"),
                "--server.headless=true",
                "--browser.gatherUsageStats=false",
                "--server.address=127.0.0.1",
                f"--server.port={port}",
                "--server.fileWatcherType=none",
                "--global.developmentMode=false",
            ],
            cwd=tmp_path,  # no .env or .streamlit/ of the developer's
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() gets every child
        )
    watchdog = threading.Timer(DEADLINE_S, stop, [server])
    watchdog.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server, log, timeout=90)
        yield url
    finally:
        watchdog.cancel()
        stop(server)


@pytest.fixture
def browser() -> Iterator:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver: "
            "`sudo apt-get install -y chromium chromium-driver` (make test installs them as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    watchdog = threading.Timer(DEADLINE_S, driver.quit)
    watchdog.start()
    try:
        yield driver
    finally:
        watchdog.cancel()
        driver.quit()


def test_ask_in_a_real_browser(app_url: str, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(app_url)
    # First run: the index is built (model load included) before the chat input appears.
    box = WebDriverWait(browser, 180, poll_frequency=0.5).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "textarea[data-testid='stChatInputTextArea']")
    )
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)

    def answered(d) -> bool:
        messages = d.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")
        if len(messages) < 2:
            return False
        answer = messages[-1].text
        cards = d.find_elements(By.XPATH, "//*[contains(text(), 'score 0.')]")
        return "[1]" in answer and "no model" in answer and bool(cards)

    WebDriverWait(browser, 120, poll_frequency=0.5).until(answered)
    time.sleep(1.0)  # let the last deltas paint before the screenshot
    browser.save_screenshot(str(tmp_path / "chat.png"))

    answer = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")[-1].text
    assert "verifies the drafted tokens" in answer
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Speculative decoding with draft models" in page  # its source card

    # The hostile title shows as text, and its script never ran.
    box = browser.find_element(By.CSS_SELECTOR, "textarea[data-testid='stChatInputTextArea']")
    box.send_keys("sparse attention for long documents")
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 60, poll_frequency=0.5).until(
        lambda d: "<script>window.pwned=1</script>" in d.find_element(By.TAG_NAME, "body").text
    )
    assert browser.execute_script("return window.pwned") is None
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "**Bold** [link](javascript:alert(1)) :red[x]" in body  # Markdown left unread
    time.sleep(1.0)
    browser.save_screenshot(str(tmp_path / "chat-hostile-title.png"))
    print(f"screenshots: {tmp_path}")
