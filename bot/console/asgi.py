"""The console's ASGI layers below the pages: who the client is, body limits, cookie flags."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Network, ip_address

Network = IPv4Network | IPv6Network


def _trusted(host: str | None, proxies: Iterable[Network]) -> bool:
    try:
        address = ip_address(host or "")
    except ValueError:
        return False
    return any(address in network for network in proxies)


class TrustedProxies:
    """Believes X-Forwarded-For and X-Forwarded-Proto only from the proxies named in
    config.yml (console.trusted_proxies); from anyone else they are ignored.

    The client becomes the right-most forwarded address that is not itself a trusted proxy
    (a client can prepend anything it likes; only what our proxies appended is true). uvicorn
    runs with proxy_headers off (bot/console/server.py), so this is the only place that reads
    them, under uvicorn and under a test client alike.
    """

    def __init__(self, app, proxies: Iterable[Network]):
        self.app = app
        self.proxies = tuple(proxies)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.proxies:
            peer = (scope.get("client") or (None, 0))[0]
            if _trusted(peer, self.proxies):
                scope = dict(scope)
                headers = _headers(scope)
                hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",")
                        if h.strip()]
                while hops and _trusted(hops[-1], self.proxies):
                    hops.pop()
                if hops:
                    try:
                        scope["client"] = (str(ip_address(hops[-1])), 0)
                    except ValueError:
                        pass  # junk from a client behind the proxy: keep the proxy's address
                proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto if scope["type"] == "http" else \
                        ("wss" if proto == "https" else "ws")
        await self.app(scope, receive, send)


def _headers(scope) -> dict[str, str]:
    """The last value of each header (a proxy appends; the last one is its own)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in scope.get("headers", [])}


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Request bodies over `limit` bytes get 413 before they are read: a Content-Length over
    the limit is refused at once, and a chunked body is counted as it arrives and stopped as
    soon as it passes the limit (nothing after that is read)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _headers(scope).get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _plain(send, 400, "Content-Length is not a number.")
                return
            if declared > self.limit:
                await _plain(send, 413, f"The request body is larger than {self.limit} bytes.")
                return
        received = 0
        refused = False
        started = False

        async def counted_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    raise _TooLarge
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:  # whatever the app says after the refusal (an error page) is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _TooLarge:
            pass
        if refused and not started:
            await _plain(send, 413, f"The request body is larger than {self.limit} bytes.")


async def _plain(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class SecureCookies:
    """Marks every cookie Secure when config says so or the request came over https (as the
    connection, or a trusted proxy, tells): a session cookie is then never sent over http."""

    def __init__(self, app, always: bool):
        self.app = app
        self.always = always

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not (self.always or scope.get("scheme") == "https"):
            await self.app(scope, receive, send)
            return

        async def secure_send(message):
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"set-cookie" and b"; secure" not in value.lower():
                        value += b"; secure"
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, secure_send)


class SecurityHeaders:
    """No framing, no sniffing, only our own sources (`csp`), nothing cached but what is under
    `cached_prefix` (static files), and the browser features in `permissions`: the staff
    console's and the web chat's responses."""

    def __init__(self, app, csp: str, permissions: str | None = None,
                 cached_prefix: str | None = None):
        self.app = app
        self.headers = {
            b"x-frame-options": b"DENY",
            b"x-content-type-options": b"nosniff",
            b"referrer-policy": b"same-origin",
            b"content-security-policy": csp.encode(),
        }
        if permissions:
            self.headers[b"permissions-policy"] = permissions.encode()
        self.cached_prefix = cached_prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(self.headers)
        if not (self.cached_prefix and scope["path"].startswith(self.cached_prefix)):
            extra[b"cache-control"] = b"no-store"

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
