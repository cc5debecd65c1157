"""The NLU inbox: unsure turns listed, labelled, exported once into a copy of nlu/ as Rasa YAML."""

from __future__ import annotations

import shutil

import pytest
import yaml
from sqlalchemy import select

from bot.config import PROJECT_ROOT
from bot.console import nlu_inbox
from bot.console.models import AuditEntry, NluLabel
from bot.core import Assistant
from bot.models import Turn
from tests.conftest import LANGUAGES, Chat
from tests.console_helpers import UnsureUnderstander, add_staff, console, logged_in


@pytest.fixture
def nlu_copy(tmp_path, monkeypatch):
    """A copy of nlu/*.yml that the export may write to; the real files are never touched."""
    target = tmp_path / "nlu"
    target.mkdir()
    for path in (PROJECT_ROOT / "nlu").glob("*.yml"):
        shutil.copy(path, target / path.name)
    monkeypatch.setenv("LINLI_NLU_DIR", str(target))
    return target


@pytest.fixture
def unsure(config, db):
    """Residents whose messages the model was unsure of: {text: turn id}."""
    nlu = UnsureUnderstander({"hello": ("greet", 0.97), "the lift is kind of odd": (
        "report_problem", 0.36)})  # under the fallback threshold (0.40), but not a fallback
    assistant = Assistant(config, db, understander=nlu)
    en, zh = Chat(assistant, "en"), Chat(assistant, "zh")
    en.onboard("en")
    zh.onboard("zh_Hans")
    en.send("hello")
    en.send("the lift is kind of odd")
    zh.send("5号楼那个东西又不行了")
    with db.session() as session:
        return {t.text: t.id for t in session.execute(
            select(Turn).where(Turn.direction == "in", Turn.intent.isnot(None))).scalars()}


def _intent_examples(path, intent: str) -> list[str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [line.strip()[2:] for item in data["nlu"] if item.get("intent") == intent
            for line in item["examples"].splitlines() if line.strip()]


def test_the_inbox_lists_unsure_and_fallback_turns_newest_first(config, db, unsure):
    add_staff(db, "sam", "staff")
    page = logged_in(console(config, db), "sam").get("/nlu").text
    assert "hello" not in page.split("<h2>")[0].split("</form>", 1)[1]  # confident: not listed
    odd, thing = page.find("the lift is kind of odd"), page.find("5号楼那个东西又不行了")
    assert 0 < thing < odd  # newest first
    assert "nlu_fallback 0.31" in page and "report_problem 0.36" in page


def test_a_labelled_turn_is_exported_once_as_rasa_yaml_with_a_diff(config, db, unsure,
                                                                    nlu_copy):
    add_staff(db, "sam", "staff")
    app = console(config, db)
    staff = logged_in(app, "sam")
    staff.get("/nlu")
    zh_turn = unsure["5号楼那个东西又不行了"]
    en_turn = unsure["the lift is kind of odd"]
    original_zh = (nlu_copy / "zh_Hans.yml").read_text(encoding="utf-8")
    real_before = (PROJECT_ROOT / "nlu" / "zh_Hans.yml").read_text(encoding="utf-8")

    assert staff.post(f"/nlu/{zh_turn}/label", {
        "intent": "report_problem", "example": "5号楼那个[东西](category)又不行了"}
    ).status_code == 303
    # An unknown entity is refused and nothing is recorded for that turn.
    staff.post(f"/nlu/{en_turn}/label", {"intent": "report_problem",
                                          "example": "the [lift](thing) is kind of odd"})
    assert "unknown entity" in staff.get("/nlu").text
    staff.post(f"/nlu/{en_turn}/dismiss")

    page = staff.get("/nlu").text
    assert "5号楼那个东西又不行了" not in page.split("Labelled, waiting for export")[0]
    response = staff.post("/nlu/export")
    assert response.status_code == 303
    export_page = staff.get(response.headers["location"]).text
    assert "+    - 5号楼那个[东西](category)又不行了" in export_page
    assert "a/nlu/zh_Hans.yml" in export_page

    written = nlu_copy / "zh_Hans.yml"
    assert "5号楼那个[东西](category)又不行了" in _intent_examples(written, "report_problem")
    assert yaml.safe_load(written.read_text(encoding="utf-8"))["version"] == "3.1"
    new = written.read_text(encoding="utf-8")
    assert new.replace("    - 5号楼那个[东西](category)又不行了\n", "", 1) == original_zh
    assert (nlu_copy / "en.yml").read_text(encoding="utf-8") == (
        PROJECT_ROOT / "nlu" / "en.yml").read_text(encoding="utf-8")  # dismissed: not exported
    assert (PROJECT_ROOT / "nlu" / "zh_Hans.yml").read_text(encoding="utf-8") == real_before

    # Exporting again adds nothing: the turn is recorded as exported.
    staff.post("/nlu/export")
    assert "Nothing to export." in staff.get("/nlu").text
    assert written.read_text(encoding="utf-8") == new
    with db.session() as session:
        label = session.execute(select(NluLabel).where(NluLabel.turn_id == zh_turn)
                                ).scalar_one()
        assert label.export_id is not None and label.exported_at is not None
        actions = [e.action for e in session.execute(select(AuditEntry)).scalars()]
    assert {"nlu.label", "nlu.dismiss", "nlu.export"} <= set(actions)


def test_an_intent_without_a_block_gets_a_new_one_and_duplicates_are_skipped():
    text = ('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n'
            '- lookup: category\n  examples: |\n    - lift\n')
    new, added = nlu_inbox.append_examples(text, {"greet": ["hello", "hey you"],
                                                  "thank": ["ta"]})
    assert added == 2
    data = yaml.safe_load(new)
    blocks = {item.get("intent") or item.get("lookup"): item["examples"] for item in data["nlu"]}
    assert blocks["greet"] == "- hi\n- hello\n- hey you\n"
    assert blocks["thank"] == "- ta\n"
    assert blocks["category"] == "- lift\n"
    assert new.index("- intent: thank") < new.index("- lookup: category")


def test_the_intent_list_is_the_contracts_and_every_language_file_has_it():
    assert len(nlu_inbox.INTENTS) == 24  # the contract: 23 service intents and out_of_scope
    for language in LANGUAGES:
        data = yaml.safe_load((PROJECT_ROOT / "nlu" / f"{language}.yml").read_text("utf-8"))
        intents = {item["intent"] for item in data["nlu"] if "intent" in item}
        assert intents == set(nlu_inbox.INTENTS), language


@pytest.mark.parametrize("example", ["", "a [b](c) d", "x" * 501, "[a](category](b)"])
def test_examples_that_rasa_would_misread_are_refused(example):
    with pytest.raises(nlu_inbox.LabelError):
        nlu_inbox.clean_example(example)
