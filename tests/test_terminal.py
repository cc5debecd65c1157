"""`linli chat` as a real process: piped input, numbered buttons, RTL lines, kill and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bot.config import PROJECT_ROOT
from bot.i18n import RLM
from tests.conftest import run_cli


@pytest.fixture
def migrated(env):
    done = run_cli(env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return env


def blocks(stdout: str) -> list[str]:
    assert stdout.endswith("\n\n"), repr(stdout[-50:])
    return stdout[:-2].split("\n\n")


def test_piped_chat_prints_one_block_per_line_and_no_prompt(migrated):
    lines = ["/start", "3", "2", "1", "1", "The lift is stuck on floor 3", "Building 5", "1"]
    done = run_cli(migrated, "chat", "--resident", "pipe", input="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    out = blocks(done.stdout)
    assert len(out) == len(lines)
    assert ">" not in done.stdout.split("\n", 1)[0]
    assert out[0].splitlines()[-7:] == [
        "  1. 简体中文", "  2. 繁體中文", "  3. English", "  4. Монгол", "  5. ᠮᠣᠩᠭᠣᠯ",
        "  6. བོད་ཡིག", "  7. ئۇيغۇرچە",
    ]
    assert "  1. Report a problem" in out[2]
    assert "Please check your request:" in out[6] and "The lift is stuck on floor 3" in out[6]
    assert "Tracking number: R-" in out[7]
    assert "lift is stuck" not in done.stderr and "Building 5" not in done.stderr


def test_several_residents_share_one_database(migrated):
    for resident, language_number in (("a", "3"), ("b", "1")):
        done = run_cli(migrated, "chat", "--resident", resident,
                       input=f"/start\n{language_number}\n2\n")
        assert done.returncode == 0
    a = run_cli(migrated, "chat", "--resident", "a", input="/menu\n")
    b = run_cli(migrated, "chat", "--resident", "b", input="/menu\n")
    assert "What would you like to do?" in a.stdout
    assert "您想办什么事？" in b.stdout


def test_uyghur_lines_start_with_a_right_to_left_mark(migrated):
    done = run_cli(migrated, "chat", "--resident", "u", input="/start\n7\n2\n")  # 7: ئۇيغۇرچە
    menu = blocks(done.stdout)[2]
    for line in menu.splitlines():
        assert line.startswith(RLM), repr(line)
        assert any("\u0600" <= ch <= "\u06ff" for ch in line), line


class ChatProcess:
    """A `linli chat` process read block by block, as a person at the terminal would."""

    def __init__(self, env: dict, resident: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "chat", "--resident", resident],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=PROJECT_ROOT, bufsize=1,
        )

    def send(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line_out = self.proc.stdout.readline()
            assert line_out, f"chat ended early: {self.proc.stderr.read()}"
            if line_out == "\n":
                return "\n".join(lines)
            lines.append(line_out.rstrip("\n"))
        raise AssertionError("no reply block within 60 s")

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        assert self.proc.returncode == -signal.SIGKILL


def test_killed_in_the_middle_of_a_flow_the_resident_continues_at_the_same_step(migrated):
    first = ChatProcess(migrated, "k")
    first.send("/start")
    first.send("1")  # 简体中文
    first.send("2")  # no voice
    first.send("1")  # report a problem
    first.send("1")  # repairs
    asked = first.send("3号楼电梯坏了，我妈妈八十岁下不了楼")
    assert "问题是在这里吗：3号楼？" in asked  # the place in the description, to confirm
    first.kill()

    second = ChatProcess(migrated, "k")
    summary = second.send("3号楼1单元")
    assert "请核对您的诉求：" in summary
    assert "3号楼电梯坏了，我妈妈八十岁下不了楼" in summary
    assert "设施报修" in summary
    done = second.send("1")
    assert "受理编号：R-" in done
    second.proc.stdin.close()
    assert second.proc.wait(timeout=30) == 0


def test_a_status_change_reaches_a_resident_in_the_terminal_at_their_next_turn(migrated):
    chat = ChatProcess(migrated, "n")
    for line in ("/start", "4", "2", "1", "2", "Халуун ус алга", "5-р байр"):
        chat.send(line)
    confirmation = chat.send("1")
    tracking_number = confirmation.split("R-", 1)[1][:6]
    done = run_cli(migrated, "requests", "set-status", f"R-{tracking_number}", "in_progress")
    assert done.returncode == 0, done.stderr
    told = chat.send("/menu")
    assert f"R-{tracking_number}" in told
    assert "has started" not in told  # in Mongolian, not English
    chat.proc.stdin.close()
    chat.proc.wait(timeout=30)


def test_chat_refuses_an_unmigrated_database_with_a_clear_message(env):
    done = run_cli(env, "chat", input="/start\n")
    assert done.returncode == 2
    assert "linli db upgrade" in done.stderr
    assert "Traceback" not in done.stderr
