"""/forget forgets what it says: requests' words, places and media, exported NLU examples,
and a confirmation whose safe choice comes first and whose erasing needs the word itself."""

from __future__ import annotations

import shutil
import unicodedata

import pytest
from sqlalchemy import func, select

from bot.config import PROJECT_ROOT
from bot.console import nlu_inbox
from bot.console.models import NluExport, NluLabel, NluRemoval
from bot.core import Assistant
from bot.messages import Incoming
from bot.models import Attachment, Request, RequestEvent, Resident, Turn
from bot.services import requests as service
from tests.conftest import LANGUAGES, Chat, run_cli
from tests.console_helpers import UnsureUnderstander, add_staff, console, logged_in

PHONE = "13700001111"
HOME = "幸福里3号楼2单元501室"


def stored_media(config, kind: str, name: str, data: bytes) -> dict:
    """A photo or voice note as the Telegram channel keeps it: a file under <data>/media."""
    folder = config.data_dir / "media" / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    media = {"kind": kind, "file_id": f"tg-{name}", "mime": "image/jpeg" if kind == "photo"
             else "audio/ogg", "size": len(data), "path": f"media/{kind}/{name}"}
    if kind == "voice":
        media["duration"] = 3.0
    return media


def send_media(resident: Chat, kind: str, media: dict) -> None:
    resident._run(Incoming(resident.channel, resident.user_id, kind, media=media))


def report_with_media(resident: Chat, config, description: str | None, place: str,
                      tag: str) -> str:
    """A report on the Telegram channel with a photo, and a voice note when no description
    is typed; returns its tracking number."""
    resident.press_payload("menu:report")
    resident.press_payload("cat:facility_repair")
    send_media(resident, "photo", stored_media(config, "photo", f"{tag}.jpg", b"\xff\xd8jpeg"))
    if description is None:
        send_media(resident, "voice", stored_media(config, "voice", f"{tag}.ogg", b"OggS"))
    else:
        resident.send(description)
    resident.send(place)
    if resident.state()[1] == "photo":
        resident.press_payload("photo:skip")
    resident.press_payload("confirm:submit")
    with resident.assistant.db.session() as session:
        return session.execute(select(Request.tracking_number)
                               .order_by(Request.id.desc()).limit(1)).scalar_one()


def erase(resident: Chat) -> None:
    """/forget, confirmed with the "Yes, erase" button itself."""
    resident.send("/forget")
    erased = resident.t("Your data has been erased. Send /start if you want to begin again.")
    resident.press_payload("forget:yes")
    assert erased in resident.text


def media_files(config) -> list[str]:
    root = config.data_dir / "media"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_finished_request_loses_description_place_photos_and_voice_files_included(
        assistant, config, db):
    resident = Chat(assistant, "7001", channel="telegram")
    resident.onboard("en")
    written = report_with_media(resident, config, f"Bench broken, call me on {PHONE}", HOME,
                                "written")
    spoken = report_with_media(resident, config, None, "Building 3, flat 501", "spoken")
    for tracking_number in (written, spoken):
        for status, note in (("resolved", "Fixed by Wang"), ("closed", None)):
            with db.session() as session:
                service.change_status(session, tracking_number, status, "staff:li", note=note,
                                      data_dir=config.data_dir)
    resident.send("/menu")
    resident.press_payload("menu:requests")  # rate nothing: both are closed by staff
    assert len(media_files(config)) == 3
    with db.session() as session:
        before = {r.tracking_number: (r.category_id, r.created_at, r.closed_at,
                                      [(e.status, e.note, e.at) for e in r.events])
                  for r in session.execute(select(Request)).scalars()}

    erase(resident)

    with db.session() as session:
        requests = session.execute(select(Request)).scalars().all()
        for request in requests:
            assert (request.description, request.location_text) == ("", None)
            assert (request.latitude, request.longitude) == (None, None)
            assert request.resident_id is None and request.erased_at is not None
            # What the figures need stays: category, times, status history with staff's notes.
            assert before[request.tracking_number] == (
                request.category_id, request.created_at, request.closed_at,
                [(e.status, e.note, e.at) for e in request.events])
        assert session.execute(select(func.count(Attachment.id))).scalar_one() == 0
        assert session.execute(select(func.count(Resident.id))).scalar_one() == 0
        assert session.execute(select(func.count(Turn.id))).scalar_one() == 0
        for text in ("Bench broken", PHONE, "3号楼"):
            assert not session.execute(select(Request).where(
                Request.description.contains(text))).first()
    assert media_files(config) == []  # the photo and the voice note are gone from disk


def test_an_open_request_keeps_the_job_with_phone_and_address_masked_then_is_erased_at_closing(
        assistant, config, db, env):
    resident = Chat(assistant, "7002", channel="telegram")
    resident.onboard("zh_Hans")
    tracking_number = report_with_media(
        resident, config, f"楼道灯坏了，修好请打电话 {PHONE} 或 137 0000 2222，我住{HOME}",
        "幸福里3号楼楼道", "open")
    with db.session() as session:
        service.change_status(session, tracking_number, "accepted", "staff:li")

    erase(resident)

    with db.session() as session:
        request = service.find(session, tracking_number)
        assert request.status == "accepted" and request.erased_at is None
        assert request.description.startswith("楼道灯坏了")  # staff still know the job
        for hidden in (PHONE, "137 0000 2222", "3号楼2单元501室"):
            assert hidden not in request.description
        assert request.description.count("•••") == 3
        assert request.location_text == "幸福里3号楼楼道"  # where the work is, until it is done
        assert [a.kind for a in request.attachments] == ["photo"]
    assert media_files(config) == ["photo/open.jpg"]

    # Staff finish the job from the command line: now the rest goes.
    for status in ("in_progress", "resolved", "closed"):
        done = run_cli(env, "requests", "set-status", tracking_number, status,
                       *(["--note", "已换灯泡"] if status == "resolved" else []))
        assert done.returncode == 0, done.stderr
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert (request.status, request.description, request.location_text) == ("closed", "",
                                                                                 None)
        assert request.erased_at is not None and request.attachments == []
        assert "已换灯泡" in [e.note for e in request.events]  # staff's words stay
    assert media_files(config) == []


def test_a_request_rejected_after_forget_is_erased_too(chat, db, config):
    resident = chat("rejected")
    resident.onboard("en")
    tracking_number = resident.file_request("general", f"Noise at night, {PHONE}", HOME)
    erase(resident)
    with db.session() as session:
        service.change_status(session, tracking_number, "rejected", "staff:li",
                              note="Not a community matter", data_dir=config.data_dir)
    with db.session() as session:
        request = service.find(session, tracking_number)
        assert (request.description, request.location_text) == ("", None)
        assert session.execute(select(RequestEvent.note).where(
            RequestEvent.request_id == request.id, RequestEvent.status == "rejected")
        ).scalar_one() == "Not a community matter"


@pytest.fixture
def nlu_copy(tmp_path, monkeypatch):
    target = tmp_path / "nlu"
    target.mkdir()
    for path in (PROJECT_ROOT / "nlu").glob("*.yml"):
        shutil.copy(path, target / path.name)
    monkeypatch.setenv("LINLI_NLU_DIR", str(target))
    return target


def test_exported_examples_of_a_forgotten_resident_leave_the_export_and_are_listed_for_removal(
        config, db, nlu_copy, caplog):
    assistant = Assistant(config, db, understander=UnsureUnderstander())
    leaving, staying = Chat(assistant, "leaving"), Chat(assistant, "staying")
    leaving.onboard("zh_Hans")
    staying.onboard("zh_Hans")
    leaving.send("7号楼那个东西又不行了")
    staying.send("9号楼门口好吵")
    add_staff(db, "sam", "staff")
    staff = logged_in(console(config, db), "sam")
    with db.session() as session:
        turns = {t.text: t.id for t in session.execute(
            select(Turn).where(Turn.direction == "in", Turn.kind == "text")).scalars()}
    staff.get("/nlu")
    staff.post(f"/nlu/{turns['7号楼那个东西又不行了']}/label",
               {"intent": "report_problem", "example": "7号楼那个[东西](category)又不行了"})
    staff.post(f"/nlu/{turns['9号楼门口好吵']}/label",
               {"intent": "report_problem", "example": "9号楼门口好吵"})
    export_url = staff.post("/nlu/export").headers["location"]
    assert "7号楼那个[东西](category)又不行了" in staff.get(export_url).text

    caplog.set_level("WARNING")
    erase(leaving)

    with db.session() as session:
        record = session.execute(select(NluExport)).scalar_one()
        assert "7号楼" not in record.diff and "9号楼门口好吵" in record.diff
        assert record.examples == 1
        assert session.execute(select(func.count(NluLabel.id))).scalar_one() == 1
        assert session.execute(select(func.count(NluRemoval.id))).scalar_one() == 1
    assert "7号楼" not in staff.get(export_url).text
    assert any("listed for removal" in r.getMessage() for r in caplog.records)
    assert not any("7号楼" in r.getMessage() for r in caplog.records)

    # Staff see on the NLU page which line of which file to delete…
    page = staff.get("/nlu").text
    removal = page.split("Examples to remove from the training files")[1]
    lines = (nlu_copy / "zh_Hans.yml").read_text(encoding="utf-8").splitlines()
    number = lines.index("    - 7号楼那个[东西](category)又不行了") + 1
    assert "nlu/zh_Hans.yml" in removal and f"<td>{number}</td>" in removal
    assert "7号楼那个[东西](category)又不行了" in removal and "9号楼门口好吵" not in removal
    # …and once it is deleted from the file, the list is empty and the digest is gone.
    del lines[number - 1]
    (nlu_copy / "zh_Hans.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert "Examples to remove from the training files" not in staff.get("/nlu").text
    with db.session() as session:
        assert nlu_inbox.removals(session) == []
        assert session.execute(select(func.count(NluRemoval.id))).scalar_one() == 0


EXPLANATION = ("Erasing your data removes your profile and our conversation.\n"
               "Finished requests keep only their category, dates and rating: their "
               "description, place, photos and voice notes are erased.\n"
               "Open requests keep what staff need to finish the job, with phone numbers "
               "and addresses hidden, and are erased in the same way when they close.\n"
               "Your words that were used to teach Linli are removed too.")


def resident_count(db) -> int:
    with db.session() as session:
        return session.execute(select(func.count(Resident.id))).scalar_one()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_confirmation_says_what_is_erased_keeps_data_on_1_and_needs_the_word(
        chat, db, language):
    resident = chat(f"careful-{language}")
    resident.onboard(language)
    resident.send("/forget")
    t = resident.t
    word = t("ERASE")
    assert word != "ERASE" or language == "en"
    assert t(EXPLANATION) in resident.text and word in resident.text
    assert t(EXPLANATION) != EXPLANATION or language == "en"
    # The safe choice first.
    assert [b.label for b in resident.buttons] == [t("No, keep my data"), t("Yes, erase")]

    # A senior pressing 1 again and again: nothing is ever erased.
    for _ in range(3):
        resident.send("1")
        assert t("Nothing was erased.") in resident.text
        resident.send("/forget")
    # Typing 2 is not enough: the word is asked for, and 1 still keeps the data.
    resident.send("2")
    assert t("To erase your data, type the word {word}. Nothing has been erased yet.",
             word=word) in resident.text
    assert resident.state()[:2] == ("settings", "forget_word")
    resident.send("1")
    assert t("Nothing was erased.") in resident.text
    # Anything but the word keeps the data too.
    resident.send("/forget")
    resident.send("2")
    resident.send("yes")
    assert t("Nothing was erased.") in resident.text and resident_count(db) == 1
    # The word, typed as a phone might (full width, lower case, a full stop), erases.
    typed = unicodedata.normalize("NFKC", word).lower() + "。"
    if language == "en":
        typed = "ｅｒａｓｅ."
    resident.send(typed)
    assert resident_count(db) == 0


def test_the_word_at_the_first_step_erases_and_a_typed_2_never_does(chat, db):
    resident = chat("direct")
    resident.onboard("zh_Hant")
    resident.send("/forget")
    resident.send("2")
    resident.send("2")  # still asking for the word
    assert resident_count(db) == 1 and resident.state()[1] == "forget_word"
    resident.send("/forget")
    resident.send("刪除")
    assert resident_count(db) == 0


def test_photos_sent_to_staff_or_left_in_an_unfinished_report_are_deleted_too(
        assistant, config, db):
    resident = Chat(assistant, "7003", channel="telegram")
    resident.onboard("en")
    resident.press_payload("menu:staff")
    send_media(resident, "photo", stored_media(config, "photo", "to-staff.jpg", b"\xff\xd8a"))
    resident.press_payload("menu")
    resident.press_payload("menu:report")
    resident.press_payload("cat:facility_repair")
    send_media(resident, "photo", stored_media(config, "photo", "draft.jpg", b"\xff\xd8b"))
    assert media_files(config) == ["photo/draft.jpg", "photo/to-staff.jpg"]
    erase(resident)
    assert media_files(config) == []
