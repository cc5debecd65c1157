"""A stand-in for Google Translate's speech endpoint on 127.0.0.1, speaking gTTS's protocol."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Received:
    """One request as the server saw it; `rpc` is the decoded f.req form field."""

    method: str
    path: str
    content_type: str
    rpc: list


class FakeGoogleTranslate:
    """Answers gTTS's batchexecute POSTs like Google does, with the MP3 it was given.

    mode "ok": 200 and the audio; "busy": 429 Too Many Requests; "silent": accepts the
    connection and never answers (until stopped)."""

    def __init__(self, mp3: bytes, mode: str = "ok"):
        assert mode in ("ok", "busy", "silent"), mode
        self.mp3 = mp3
        self.mode = mode
        self.received: list[Received] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGoogleTranslate:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(self) -> bytes:
        """Google's framing: an anti-JSON prefix, then length-prefixed JSON chunks, the audio
        as base64 inside a JSON string inside the "jQ1olc" entry."""
        audio = json.dumps([base64.b64encode(self.mp3).decode("ascii")])
        chunk = json.dumps(
            [["wrb.fr", "jQ1olc", audio, None, None, None, "generic"], ["di", 42]],
            separators=(",", ":"),
        )
        tail = json.dumps([["e", 4, None, None, len(chunk)]], separators=(",", ":"))
        return f")]}}'\n\n{len(chunk)}\n{chunk}\n{len(tail)}\n{tail}\n".encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = parse_qs(body)
                rpc = json.loads(form["f.req"][0]) if "f.req" in form else []
                fake.received.append(
                    Received("POST", self.path, self.headers.get("Content-Type", ""), rpc)
                )
                if fake.mode == "silent":
                    fake._stopping.wait(30)
                    return
                if fake.mode == "busy":
                    self.send_error(429, "Too Many Requests")
                    return
                payload = fake.answer()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
