"""Serves the console (and the Telegram webhook) with uvicorn inside an asyncio program."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn


class _QuietServer(uvicorn.Server):
    """Leaves signals to the program that runs it (`linli serve` has its own handlers)."""

    @contextlib.contextmanager
    def capture_signals(self):  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


def bind(host: str, port: int, what: str, shared: bool = False) -> socket.socket:
    """A socket bound to host:port (0: any free port), or an OSError naming `what` and why.
    Bound here, not by uvicorn, which answers a taken port with sys.exit inside the loop.
    `shared`: the workers of `linli serve --workers` all listen on the port (SO_REUSEPORT:
    the kernel spreads the connections); otherwise a taken port is an error."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"{what} could not listen on {host}:{port} ({exc.strerror})") from exc
    return sock


async def start_server(app, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task]:
    """Serves `app` on a bound socket; returns once it accepts connections. No access log:
    paths carry tracking numbers and query strings carry filters. No proxy headers either:
    uvicorn would believe X-Forwarded-For from 127.0.0.1, so anyone on this host could pick
    the address that login throttling counts; the console reads them itself, only from the
    proxies config.yml names (bot/console/asgi.py). Stop it with `should_exit`."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            server_header=False, proxy_headers=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise OSError("the server stopped while starting")
        await asyncio.sleep(0.02)
    return server, task


async def serve_console(app, host: str, port: int, stop: asyncio.Event,
                        shared: bool = False) -> None:
    """Runs until `stop` is set, then finishes the requests in flight and returns."""
    server, task = await start_server(app, bind(host, port, "the staff console", shared))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await task
