"""A language other than the default may leave names out of config.yml (shown in the default
language, one warning each at start-up, listed in the console), and a language Babel has no
data for formats its dates with the locale and patterns config.yml gives it."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
import yaml

from bot.config import PROJECT_ROOT, ConfigError, load_config
from bot.db import Database, upgrade
from bot.i18n import Catalogs
from tests.console_helpers import add_staff, console, logged_in


def changed_config(tmp_path, change):
    raw = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def without_two_tibetan_names(raw):
    del raw["categories"][2]["name"]["bo"]
    del raw["community"]["name"]["bo"]


def test_a_missing_name_falls_back_to_the_default_language_with_one_warning(
        tmp_path, env, caplog):
    path = changed_config(tmp_path, without_two_tibetan_names)
    with caplog.at_level(logging.WARNING, logger="bot.config"):
        config = load_config(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert any("categories[2].name has no bo name" in w for w in warnings), warnings
    assert any("community.name has no bo name" in w for w in warnings), warnings
    category = config.categories[2]
    assert ("categories[2].name", "bo", category.names["zh_Hans"]) in config.missing_names
    t = Catalogs(config).translator("bo")
    assert t.name(category.names) == category.names["zh_Hans"]
    assert t.name(config.community_names) == "幸福里社区"
    assert t.name(config.categories[0].names) == config.categories[0].names["bo"]


def test_the_complete_demo_config_misses_no_name(config):
    assert config.missing_names == ()


def test_a_language_option_that_does_not_exist_is_named(tmp_path, env):
    def change(raw):
        raw["languages"][4]["vertikal"] = True

    with pytest.raises(ConfigError, match=r"languages\[4\]\.vertikal: unknown key"):
        load_config(changed_config(tmp_path, change))


def test_a_format_locale_babel_lacks_and_a_bad_pattern_are_named(tmp_path, env):
    def locale(raw):
        raw["languages"][3]["format_locale"] = "xx_Nowhere"

    with pytest.raises(ConfigError, match=r"languages\[3\]\.format_locale: Babel has no"):
        load_config(changed_config(tmp_path, locale))

    def pattern(raw):
        raw["languages"][3]["date_format"] = "y.MM.dd HH:mm"  # the time has its own

    with pytest.raises(ConfigError, match=r"languages\[3\]\.date_format"):
        load_config(changed_config(tmp_path, pattern))


def test_iso_script_codes_are_accepted_for_the_script_rule(tmp_path, env):
    def change(raw):
        raw["languages"][3]["script"] = "Cyrl"

    config = load_config(changed_config(tmp_path, change))
    assert config.language("mn").script == "Cyrillic"


def test_dates_use_the_configured_patterns_and_locale(tmp_path, env):
    def change(raw):
        raw["languages"][3].update(format_locale="en", date_format="y.MM.dd",
                                   time_format="HH:mm")

    config = load_config(changed_config(tmp_path, change))
    t = Catalogs(config).translator("mn")
    moment = datetime(2026, 11, 23, 1, 30)  # UTC: 09:30 in Asia/Shanghai
    assert t.datetime(moment) == "2026.11.23, 09:30"  # joined as English joins them
    assert t.date(moment) == "2026.11.23"


def test_the_console_lists_the_missing_names_on_its_translations_page(tmp_path, env):
    config = load_config(changed_config(tmp_path, without_two_tibetan_names))
    upgrade(config.database_url)
    db = Database(config.database_url)
    add_staff(db, "vic", "viewer", language="zh_Hans")
    client = logged_in(console(config, db), "vic")
    page = client.get("/translations")
    assert page.status_code == 200
    assert "翻译" in page.text and "缺少的名称" in page.text
    assert "categories[2].name" in page.text and "community.name" in page.text
    assert '<tr data-language="bo"><td lang="bo">བོད་ཡིག</td><td>2</td></tr>' in page.text
    assert '<tr data-language="en"><td lang="en">English</td><td>0</td></tr>' in page.text
    assert "幸福里社区" in page.text
