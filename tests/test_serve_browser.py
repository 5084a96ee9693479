"""The page ``videoqa serve`` shows at ``/``, driven in a real browser: Debian's headless chromium under
Playwright (no browser download), against the real server process with the small models."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Dialog, Locator, Page, ViewportSize, expect, sync_playwright

from videoqa.testmedia.synth import SynthVideo

from serve_helpers import running_server

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
API_KEY = "page-test-key"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}  # the size docs/serve-page.png is taken at
# Indexing and answering load real (small) models on a 2-core machine shared with other tests.
INDEX_TIMEOUT_MS = 240_000
ANSWER_TIMEOUT_MS = 120_000
SEEK_TOLERANCE_S = 0.5
SPOKEN_AT_S = 8.5  # when the narrated video says "The meeting starts at noon."


def chromium_path() -> str:
    """Debian's chromium; a missing one fails in CI (a skip would hide that the page went untested)."""
    found = shutil.which("chromium") or (str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None)
    if found is None:
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        finally:
            browser.close()


@pytest.fixture
def media_root(narrated: SynthVideo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A media root holding only the narrated video, indexed from scratch (a cache of its own)."""
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(narrated.path, root / "narrated.mp4")
    monkeypatch.setenv("VIDEOQA_CACHE", str(tmp_path / "cache"))  # the server inherits the environment
    return root


def player_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def click_and_check_seek(page: Page, chip: Locator) -> float:
    """Click a moment chip; the player must be within SEEK_TOLERANCE_S of the chip's start. Its start."""
    start_s = float(chip.get_attribute("data-start") or "nan")
    chip.click()
    page.wait_for_function(
        "([start, tolerance]) => Math.abs(document.getElementById('player').currentTime - start) < tolerance",
        arg=[start_s, SEEK_TOLERANCE_S],
    )
    assert abs(player_time(page) - start_s) < SEEK_TOLERANCE_S
    return start_s


def ask(page: Page, question: str) -> None:
    """Ask on the page and wait until the answer and its cited moments are shown."""
    page.fill("#question", question)
    page.click("#ask")
    expect(page.locator("#turns .moment .chip").first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)


def check_clip_download(page: Page, tmp_path: Path) -> None:
    """The download button of the first cited moment saves a real, playable mp4."""
    with page.expect_download(timeout=ANSWER_TIMEOUT_MS) as download_info:
        page.locator("#turns .moment .download").first.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".mp4"), download.suggested_filename
    clip = tmp_path / download.suggested_filename
    download.save_as(clip)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(clip)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and float(probe.stdout) > 0, probe.stderr


def save_screenshot(page: Page, tmp_path: Path) -> None:
    """Into the test's folder, and to $VIDEOQA_SCREENSHOT when set (how docs/serve-page.png is made)."""
    shot = tmp_path / "serve-page.png"
    page.evaluate("document.getElementById('player').pause()")
    page.screenshot(path=shot)
    target = os.environ.get("VIDEOQA_SCREENSHOT")
    if target:
        shutil.copy(shot, target)


@pytest.mark.usefixtures("installed_models")
def test_pick_ask_and_click_to_the_cited_moment(page: Page, media_root: Path, tmp_path: Path) -> None:
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    with running_server([media_root]) as url:
        page.goto(url)
        page.get_by_role("button", name="narrated.mp4").click()
        expect(page.locator("#status")).to_have_text("ready", timeout=INDEX_TIMEOUT_MS)

        ask(page, "When does the meeting start?")
        # the wording is the small model's; what it rests on is the spoken sentence, cited where it is said
        expect(page.locator("#turns .answer").first).not_to_be_empty()
        cited = page.locator("#turns .moment .chip", has_text="noon").first
        start_s = click_and_check_seek(page, cited)
        assert abs(start_s - SPOKEN_AT_S) < 1.5, start_s  # the chip is the moment the sentence is said
        check_clip_download(page, tmp_path)

        # the captions view fills from the stream, each caption a moment to seek to
        expect(page.locator("#captions-status")).to_have_text(
            re.compile(r"^\d+ captions?$"), timeout=ANSWER_TIMEOUT_MS
        )
        captions = page.locator("#captions .chip")
        starts = [float(start) for start in captions.evaluate_all("chips => chips.map(c => c.dataset.start)")]
        assert starts == sorted(starts) and starts[-1] > 1.0, starts
        page.evaluate("document.getElementById('player').currentTime = 0")
        click_and_check_seek(page, captions.last)

        # a search across the library opens the video at the hit
        page.fill("#search", "meeting")
        page.click("#search-form button")
        hit = page.locator("#hits .chip", has_text="noon").first
        expect(hit).to_be_visible()
        page.evaluate("document.getElementById('player').currentTime = 0")
        click_and_check_seek(page, hit)

        expect(page.locator("#error")).to_be_hidden()
        save_screenshot(page, tmp_path)
    assert page_errors == []


@pytest.mark.usefixtures("installed_models")
def test_the_page_asks_once_for_the_api_key_and_sends_it(page: Page, media_root: Path) -> None:
    asked: list[str] = []

    def answer_with_the_key(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept(API_KEY)

    page.on("dialog", answer_with_the_key)
    with running_server([media_root], "--api-key", API_KEY) as url:
        page.goto(url)
        expect(page.get_by_role("button", name="narrated.mp4")).to_be_visible()
        page.fill("#search", "meeting")
        page.click("#search-form button")
        expect(page.locator("#hits")).to_contain_text("No matches.")  # nothing is indexed yet
        expect(page.locator("#error")).to_be_hidden()
        # the player cannot send the header: it reads the video with the key the page put in a cookie
        page.get_by_role("button", name="narrated.mp4").click()
        page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=30_000)
        assert page.evaluate("document.getElementById('player').duration") == pytest.approx(12.0, abs=0.5)
    assert len(asked) == 1 and "API key" in asked[0], asked
