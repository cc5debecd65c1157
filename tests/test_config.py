"""config.yml is validated once, and every error names the file and the key."""

from __future__ import annotations

import pytest
import yaml

from bot.config import PROJECT_ROOT, ConfigError, load_config


def test_the_demo_community_config_is_valid(config):
    assert config.default_language == "zh_Hans"
    assert config.language_ids == ("zh_Hans", "zh_Hant", "en", "mn", "mn_Mong", "bo", "ug")
    assert config.language("ug").direction == "rtl"
    assert [n.number for n in config.emergency_numbers] == ["110", "119", "120"]
    assert config.category("safety_hazard").time_limit_hours == 2


def broken(tmp_path, change) -> str:
    raw = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(str(path)), message
    return message


def test_a_name_missing_in_the_default_language_is_named(tmp_path, env):
    def drop(raw):
        del raw["categories"][2]["name"]["zh_Hans"]

    assert "categories[2].name.zh_Hans: missing" in broken(tmp_path, drop)


def test_an_unknown_department_is_named(tmp_path, env):
    def change(raw):
        raw["categories"][0]["department"] = "nobody"

    assert "categories[0].department: 'nobody' is not a department id" in broken(tmp_path, change)


def test_bad_values_are_named(tmp_path, env):
    cases = [
        (lambda r: r.__setitem__("default_language", "fr"), "default_language"),
        (lambda r: r["categories"][1].__setitem__("time_limit_hours", 0),
         "categories[1].time_limit_hours"),
        (lambda r: r.__setitem__("timezone", "Mars/Base"), "timezone"),
        (lambda r: r["languages"][0].__setitem__("direction", "up"), "languages[0].direction"),
        (lambda r: r.__setitem__("colour", "blue"), "colour: unknown key"),
        (lambda r: r["emergency_numbers"][0].__setitem__("number", "call us"),
         "emergency_numbers[0].number"),
        (lambda r: r["languages"].append({"id": "fr", "native_name": "Français"}),
         "'fr' has no message catalog"),
    ]
    for change, key in cases:
        assert key in broken(tmp_path, change)


def test_a_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nowhere.yml")
