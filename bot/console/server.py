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


async def serve_console(app, host: str, port: int, stop: asyncio.Event) -> None:
    """Runs until `stop` is set, then finishes the requests in flight and returns.

    No access log: paths carry tracking numbers and query strings carry filters.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            lifespan="off", server_header=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:  # the server ended by itself (the port was taken…)
        stopping.cancel()
        await task
        if not server.started:
            raise OSError(f"the staff console could not listen on {host}:{port}")
        return
    server.should_exit = True
    await task


async def start_server(app, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task]:
    """Serves `app` on an already bound socket (so a taken port is an OSError for the caller,
    not uvicorn's exit); returns once it accepts connections. Stop it with `should_exit`."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            server_header=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise OSError("the server stopped while starting")
        await asyncio.sleep(0.02)
    return server, task
