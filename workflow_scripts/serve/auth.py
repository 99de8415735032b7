"""Who may talk to the server (an ASGI middleware around the whole app).

* With a token (required for any bind other than 127.0.0.1/localhost/::1), every request
  carries it: ``Authorization: Bearer TOKEN``, ``?token=TOKEN`` (page loads), or the
  ``pvw_token`` cookie set when a page was loaded with ``?token=`` (so the page's audio and
  downloads work); anything else gets 401.
* Without a token (loopback only) the ``Host`` header must name the loopback address, so a
  web page of another site cannot reach the server through DNS rebinding.
* A request that changes something (not GET/HEAD) must carry ``X-PVW-Request: 1``: a page of
  another origin cannot add that header without a CORS preflight, which is never granted.
"""
from __future__ import annotations

import hmac
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

COOKIE = "pvw_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Guard:
    def __init__(self, app, token: str | None, host: str, port: int):
        self.app, self.token, self.port = app, token or None, port
        names = {host, *LOOPBACK}
        self.hosts = {f"{h}:{port}" for h in names} | {f"[{h}]:{port}" for h in names if ":" in h}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not self.token and headers.get("host") not in self.hosts:
            return await _plain(send, 403, "unexpected Host header (serve mode answers on its loopback address only)")
        via_query = False
        if self.token:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = headers.get("authorization", "")
            bearer = given[7:].strip() if given.lower().startswith("bearer ") else None
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("cookie", ""))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                cookie = SimpleCookie()
            candidates = [bearer, *(query.get("token") or []), cookie[COOKIE].value if COOKIE in cookie else None]
            if not any(c and hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates):
                return await _plain(send, 401, "401: this server needs its token (Authorization: Bearer TOKEN, or ?token=TOKEN)",
                                    [(b"www-authenticate", b"Bearer")])
            via_query = any(c and hmac.compare_digest(c.encode(), self.token.encode()) for c in query.get("token") or [])
        if scope["method"] not in ("GET", "HEAD") and headers.get("x-pvw-request") != "1":
            return await _plain(send, 403, "changes need the header X-PVW-Request: 1 (sent by the server's own pages)")
        if not via_query:
            return await self.app(scope, receive, send)

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", value.encode())]}
            await send(message)

        return await self.app(scope, receive, send_with_cookie)


async def _plain(send, status: int, text: str, extra=()) -> None:
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
