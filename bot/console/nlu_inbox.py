"""The NLU inbox: unsure and fallback turns, staff labels, and export into nlu/<language>.yml."""

from __future__ import annotations

import difflib
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.config import PROJECT_ROOT
from bot.console.auth import audit
from bot.console.models import NluExport, NluLabel, NluRemoval
from bot.models import Turn, utcnow
from bot.services.nlu_examples import example_hash
from nlu.engine import fallback_threshold

FALLBACK = "nlu_fallback"
LOW_CONFIDENCE = fallback_threshold()  # nlu/pipeline.yml (docs/nlu.md)
# The 24 intents of the NLU contract (shared/spec/nlu-contract.md), in its order.
INTENTS = (
    "greet", "goodbye", "thank", "help", "affirm", "deny", "cancel", "repeat", "main_menu",
    "report_problem", "check_request_status", "rate_service", "read_notices",
    "subscribe_notices", "unsubscribe_notices", "join_poll", "change_language", "voice_on",
    "voice_off", "talk_to_human", "emergency", "delete_my_data", "find_service", "out_of_scope",
)
ENTITIES = ("request_id", "language", "topic", "category", "service_type")
MAX_EXAMPLE = 500
ANNOTATION = re.compile(r"\[([^\[\]\n]+)\]\(([^()\n]+)\)")
INTENT_LINE = re.compile(r"^- intent:\s*(\S+)\s*$")
EXAMPLES_LINE = re.compile(r"^\s+examples:\s*\|[-+]?\s*$")
_export_lock = threading.Lock()


class LabelError(Exception):
    """A label that cannot be used as a training example; the message says why."""


def nlu_dir() -> Path:
    """Where the training files are: LINLI_NLU_DIR, else the project's nlu/."""
    return Path(os.environ.get("LINLI_NLU_DIR") or PROJECT_ROOT / "nlu")


def inbox_condition():
    """Turns the model was unsure of: fallback, or confidence under the threshold."""
    return (
        Turn.direction == "in",
        Turn.kind == "text",
        Turn.text.isnot(None),
        or_(Turn.intent == FALLBACK, Turn.confidence < LOW_CONFIDENCE),
    )


def inbox(session: Session, language: str | None = None, limit: int = 100) -> list[Turn]:
    """Unlabelled inbox turns, newest first."""
    query = (
        select(Turn)
        .outerjoin(NluLabel, NluLabel.turn_id == Turn.id)
        .where(*inbox_condition(), NluLabel.id.is_(None))
        .order_by(Turn.at.desc(), Turn.id.desc())
        .limit(limit)
    )
    if language:
        query = query.where(Turn.language == language)
    return list(session.execute(query).scalars())


def waiting(session: Session) -> list[NluLabel]:
    """Labels not exported yet (dismissed ones excluded), oldest first."""
    return list(session.execute(
        select(NluLabel)
        .where(NluLabel.export_id.is_(None), NluLabel.intent.isnot(None))
        .order_by(NluLabel.id)
    ).scalars())


def clean_example(example: str) -> str:
    """One line, annotations only of the contract's entities; raises LabelError otherwise."""
    example = " ".join((example or "").replace("\t", " ").split())
    if not example:
        raise LabelError("the example is empty")
    if len(example) > MAX_EXAMPLE:
        raise LabelError(f"an example has at most {MAX_EXAMPLE} characters")
    for match in ANNOTATION.finditer(example):
        if match.group(2) not in ENTITIES:
            raise LabelError(f"unknown entity {match.group(2)!r}; one of: {', '.join(ENTITIES)}")
    rest = ANNOTATION.sub("", example)
    if "](" in rest:
        raise LabelError("an annotation is written [words](entity)")
    return example


def label(session: Session, turn_id: int, intent: str | None, example: str | None,
          actor: str) -> NluLabel:
    """Records staff's intent (None: dismiss) for an inbox turn; relabelling before export
    replaces the earlier label."""
    turn = session.get(Turn, turn_id)
    if turn is None or turn.direction != "in" or not turn.text:
        raise LabelError(f"no message {turn_id}")
    if intent is not None and intent not in INTENTS:
        raise LabelError(f"unknown intent {intent!r}")
    cleaned = clean_example(example if example is not None else turn.text) if intent else None
    row = session.execute(select(NluLabel).where(NluLabel.turn_id == turn_id)).scalar_one_or_none()
    if row is not None and row.export_id is not None:
        raise LabelError("this message was exported already")
    row = row or NluLabel(turn_id=turn_id)
    row.language = turn.language or ""
    row.intent, row.example = intent, cleaned
    row.labelled_by, row.labelled_at = actor, utcnow()
    session.add(row)
    session.flush()
    audit(session, actor, "nlu.label" if intent else "nlu.dismiss", f"turn {turn_id}",
          {"intent": intent, "was": turn.intent})
    return row


def append_examples(text: str, by_intent: dict[str, list[str]]) -> tuple[str, int]:
    """The file's text with the examples added under their `- intent:` blocks (new blocks after
    the last intent block); examples already in the block are skipped. Returns (text, added)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    added = 0
    pending = {intent: list(dict.fromkeys(examples)) for intent, examples in by_intent.items()}
    for intent in list(pending):
        block = _find_block(lines, intent)
        if block is None:
            continue
        insert_at, indent, existing = block
        new = [e for e in pending.pop(intent) if e not in existing]
        lines[insert_at:insert_at] = [f"{indent}- {e}\n" for e in new]
        added += len(new)
    if pending:
        at = _after_last_intent(lines)
        new_lines = []
        for intent, examples in pending.items():
            new_lines += [f"- intent: {intent}\n", "  examples: |\n"]
            new_lines += [f"    - {e}\n" for e in examples]
            added += len(examples)
        lines[at:at] = new_lines
    return "".join(lines), added


def _find_block(lines: list[str], intent: str) -> tuple[int, str, set[str]] | None:
    """(where to insert, the examples' indentation, the examples there) for `intent`."""
    for start, line in enumerate(lines):
        match = INTENT_LINE.match(line.rstrip("\n"))
        if not match or match.group(1) != intent:
            continue
        end = start + 1
        while end < len(lines) and not lines[end].startswith("- "):
            end += 1
        examples_at = next((i for i in range(start + 1, end)
                            if EXAMPLES_LINE.match(lines[i].rstrip("\n"))), None)
        if examples_at is None:
            return None
        existing, indent, last = set(), "    ", examples_at
        for i in range(examples_at + 1, end):
            stripped = lines[i].strip()
            if not stripped:
                continue
            if len(lines[i]) - len(lines[i].lstrip(" ")) <= len(lines[examples_at]) - len(
                    lines[examples_at].lstrip(" ")):
                break  # another key of the same item (`metadata:`…)
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip(" "))]
            existing.add(stripped.removeprefix("- "))
            last = i
        return last + 1, indent, existing
    return None


def _after_last_intent(lines: list[str]) -> int:
    last_intent = max((i for i, line in enumerate(lines) if INTENT_LINE.match(line.rstrip("\n"))),
                      default=None)
    if last_intent is None:
        return len(lines)
    end = last_intent + 1
    while end < len(lines) and not lines[end].startswith("- "):
        end += 1
    return end


def _check(text: str, by_intent: dict[str, list[str]], path: Path) -> None:
    """The new file must still be Rasa YAML with every exported example in its intent."""
    data = yaml.safe_load(text)
    blocks: dict[str, list[str]] = {}
    for item in data.get("nlu", []):
        if "intent" in item:
            blocks.setdefault(item["intent"], []).extend(
                line.strip()[2:] for line in str(item.get("examples", "")).splitlines()
                if line.strip().startswith("- "))
    for intent, examples in by_intent.items():
        missing = [e for e in examples if e not in blocks.get(intent, [])]
        if missing:
            raise LabelError(f"{path.name}: the export would not be read back; nothing written")


@dataclass
class ExportResult:
    export: NluExport | None
    diff: str
    examples: int


def export(session: Session, actor: str, directory: Path | None = None) -> ExportResult:
    """Appends every labelled, not yet exported example to nlu/<language>.yml, records the
    export (so no turn goes twice) and returns the unified diff of the files."""
    directory = directory or nlu_dir()
    labels = waiting(session)
    if not labels:
        return ExportResult(None, "", 0)
    by_language: dict[str, dict[str, list[str]]] = {}
    for row in labels:
        by_language.setdefault(row.language, {}).setdefault(row.intent, []).append(row.example)
    diffs, files, written = [], [], 0
    with _export_lock:
        for language in sorted(by_language):
            if not language or "/" in language or language.startswith("."):
                raise LabelError(f"a message has no usable language ({language!r})")
            path = directory / f"{language}.yml"
            old = path.read_text(encoding="utf-8") if path.is_file() else \
                'version: "3.1"\nnlu:\n'
            new, added = append_examples(old, by_language[language])
            _check(new, by_language[language], path)
            if new == old:
                continue
            _write(path, new)
            files.append(path.name)
            written += added
            diffs.append("".join(difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True),
                fromfile=f"a/nlu/{path.name}", tofile=f"b/nlu/{path.name}")))
        diff = "".join(diffs)
        now = utcnow()
        record = NluExport(at=now, actor=actor, examples=written, files=files, diff=diff)
        session.add(record)
        session.flush()
        for row in labels:
            row.export_id, row.exported_at = record.id, now
        audit(session, actor, "nlu.export", f"export {record.id}",
              {"examples": written, "files": files})
    return ExportResult(record, diff, written)


def _write(path: Path, text: str) -> None:
    """Replaces the file in one step, keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Removal:
    """An exported example to take out of a training file: where it is, and its text there."""

    row: NluRemoval
    file: str
    line: int  # 1-based
    text: str


def removals(session: Session, directory: Path | None = None) -> list[Removal]:
    """Examples of residents who erased their data still in nlu/<language>.yml, found by
    their digest. Rows whose example is no longer in its file (staff removed it) are dropped."""
    directory = directory or nlu_dir()
    found, lines_of = [], {}
    for row in session.execute(select(NluRemoval).order_by(NluRemoval.id)).scalars():
        path = directory / f"{row.language}.yml"
        if row.language not in lines_of:
            lines_of[row.language] = (path.read_text(encoding="utf-8").splitlines()
                                      if path.is_file() else [])
        hits = [(number, line.strip()[2:]) for number, line in
                enumerate(lines_of[row.language], start=1)
                if line.strip().startswith("- ") and example_hash(line.strip()[2:])
                == row.example_hash]
        if not hits:
            session.delete(row)
            continue
        found += [Removal(row, path.name, number, text) for number, text in hits]
    session.flush()
    return found
