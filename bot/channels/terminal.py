"""The terminal chat: replies as text, buttons as numbered choices; works interactively or piped."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.core import Assistant, Incoming, Reply
from bot.i18n import RLM

CHANNEL = "terminal"


def render(replies: list[Reply]) -> str:
    """One block: each reply's lines, then its buttons as `  N. label`; ends with a blank line.

    Right-to-left lines start with RLM so that a terminal applying bidi sets the paragraph's
    direction from it, even when the line begins with digits or a Latin tracking number.
    """
    lines: list[str] = []
    for reply in replies:
        mark = RLM if reply.rtl else ""
        lines += [mark + line for line in reply.text.splitlines() if line.strip()]
        for number, button in enumerate(reply.buttons, start=1):
            lines.append(f"{mark}  {number}. {button.label}")
    return "\n".join(lines) + "\n\n"


async def chat(
    assistant: Assistant,
    resident_id: str,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    interactive: bool | None = None,
) -> None:
    """Reads one message per line; prints one reply block per line. Ends at end of input."""
    if interactive is None:
        interactive = stdin.isatty() and stdout.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        stdout.write(render(await assistant.handle(Incoming(CHANNEL, resident_id, "resume"))))
        stdout.flush()
    while True:
        try:
            line = input("> ") if interactive else stdin.readline()
        except (EOFError, KeyboardInterrupt):
            if interactive:
                stdout.write("\n")
            return
        if not interactive and line == "":
            return
        line = line.rstrip("\r\n")
        replies = await assistant.handle(Incoming(CHANNEL, resident_id, "text", text=line))
        stdout.write(render(replies))
        stdout.flush()
