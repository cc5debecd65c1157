"""Exported NLU examples of a resident who erased their data: taken out, listed for removal.

The console's NLU page (bot/console/nlu_inbox.py) labels and exports examples; /forget
(bot/services/residents.py) calls this, so it lives with the services, below both.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.console.models import NluExport, NluLabel, NluRemoval


def example_hash(example: str) -> str:
    return hashlib.sha256(example.encode("utf-8")).hexdigest()


def forget_exported(session: Session, turn_ids: list[int]) -> int:
    """The labels of these turns (a resident's, who erased their data) go; those already
    exported are taken out of their export's diff and listed for removal from
    nlu/<language>.yml by digest only. Returns how many were listed."""
    if not turn_ids:
        return 0
    labels = list(session.execute(select(NluLabel).where(NluLabel.turn_id.in_(turn_ids)))
                  .scalars())
    listed = 0
    for row in labels:
        if row.export_id is not None and row.intent and row.example:
            record = session.get(NluExport, row.export_id)
            if record is not None:
                record.diff = _without_example(record.diff, row.example)
                record.examples = max(0, record.examples - 1)
            session.add(NluRemoval(language=row.language, intent=row.intent,
                                   example_hash=example_hash(row.example),
                                   export_id=row.export_id))
            listed += 1
        session.delete(row)
    session.flush()
    return listed


def _without_example(diff: str, example: str) -> str:
    """The export's diff without the line that added `example`."""
    return "".join(line for line in diff.splitlines(keepends=True)
                   if not (line.startswith("+") and not line.startswith("+++")
                           and line[1:].strip() == f"- {example}"))
