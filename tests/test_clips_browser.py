"""Recording a voice clip on the console page in real headless Chromium, with Chromium's fake
microphone (a beeping tone), and the recording is then what a Tibetan resident hears."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import soundfile
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from bot.channels.base import ChannelRegistry
from bot.console.app import create_app
from bot.core import Assistant
from bot.messages import OUTBOX
from bot.models import OutboxMessage
from bot.voice import Voice, clip_id
from tests.conftest import Chat
from tests.console_helpers import add_staff
from tests.test_console_browser import CHROMEDRIVER, CHROMIUM, FLAGS, log_in, screenshot, served

QUESTION = "What is the problem about?"  # the one reply to "Report a problem"

# Chromium runs on SQLite only: tests/test_clips.py covers the pages on PostgreSQL too.
pytestmark = pytest.mark.parametrize("env", ["sqlite"], indirect=True)


@pytest.fixture
def browser(tmp_path):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, "--use-fake-device-for-media-stream",
                 "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1280,1000")
    options.add_argument("--lang=zh-CN")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_staff_record_a_clip_in_the_browser_and_a_tibetan_resident_hears_it(config, db,
                                                                           browser):
    add_staff(db, "dolma", "staff", language="zh_Hans")
    name = clip_id(QUESTION)
    stored = config.voice.clips_dir / "bo" / f"{name}.ogg"
    wait = WebDriverWait(browser, 20)
    # A Tibetan resident before any recording: voice is not offered, the question is read.
    # Its replies go through the outbox (the console counts what was heard from it there).
    assistant = Assistant(config, db, channels=ChannelRegistry({"terminal": frozenset({OUTBOX})}))
    resident = Chat(assistant, "tenzin")
    resident.send("/start")
    resident.press_payload("lang:bo")
    assert "voice:on" not in resident.payloads
    resident.press_payload("menu:report")
    resident.send("/cancel")
    with served(create_app(config, db)) as base:
        log_in(browser, base, "dolma")
        browser.get(base + "/clips?language=bo")
        row = browser.find_element(By.ID, f"clip-{name}")
        assert row.get_attribute("data-recorded") == "no"
        record = row.find_element(By.CSS_SELECTOR, "[data-record]")
        assert record.is_displayed(), "the page's script offers recording"
        record.click()
        form = row.find_element(By.CSS_SELECTOR, "form.clip-form")
        wait.until(lambda _: form.get_attribute("data-state") == "recording")
        browser.execute_script("return new Promise(r => setTimeout(r, 2500))")  # speak…
        record.click()  # stop
        wait.until(lambda _: form.get_attribute("data-state") == "recorded")
        assert row.find_element(By.CSS_SELECTOR, "[data-preview]").is_displayed()
        row.find_element(By.CSS_SELECTOR, "[data-save]").click()

        wait.until(lambda d: d.find_element(By.ID, f"clip-{name}")
                   .get_attribute("data-recorded") == "yes")
        flash = browser.find_element(By.CSS_SELECTOR, ".flash").text
        assert flash.startswith("录音已保存"), flash
        row = browser.find_element(By.ID, f"clip-{name}")
        player = row.find_element(By.CSS_SELECTOR, "audio[controls]")
        assert player.get_attribute("src").endswith(f"/clips/bo/{name}/audio")
        # The browser can play what was stored.
        seconds = browser.execute_async_script(
            "const done = arguments[arguments.length - 1], a = arguments[0];"
            "a.preload = 'auto'; a.addEventListener('loadedmetadata', () => done(a.duration));"
            "a.addEventListener('error', () => done(-1)); a.load();", player)
        assert "1" in row.find_elements(By.TAG_NAME, "td")[4].text  # sent once as text
        browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", row)
        screenshot(browser, "clips")

    # Stored as OGG/Opus where the clip engine reads it: about the 2.5 s recorded, not silent.
    info = soundfile.info(stored)
    assert (info.format, info.subtype) == ("OGG", "OPUS")
    duration = info.frames / info.samplerate
    assert 1.5 < duration < 4.0 and seconds > 0
    samples, _ = soundfile.read(stored)
    assert np.max(np.abs(samples)) > 0.05, "the fake microphone's beep was recorded"

    # A Tibetan resident with voice on asks to report a problem: that turn's voice is the clip.
    resident.press_payload("menu:settings")
    resident.press_payload("set:voice")  # voice on, now that Tibetan has a recording
    resident.send("/cancel")
    resident.press_payload("menu:report")
    with db.session() as session:
        spoken = session.execute(select(OutboxMessage).order_by(OutboxMessage.id.desc())
                                 ).scalars().first().payload
    assert spoken["voice"] and spoken["source"] == QUESTION and "missing" not in spoken
    audio = asyncio.run(Voice(config).speak(spoken["text"], "bo",
                                            clip_id=clip_id(spoken["source"])))
    assert audio.engine == "clip" and audio.data == stored.read_bytes()
