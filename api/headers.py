"""Security headers on every response the app gives (a pure ASGI middleware).

- `X-Content-Type-Options: nosniff`; framing refused (`X-Frame-Options: DENY` and the policy's
  `frame-ancestors 'none'`); `Referrer-Policy: no-referrer`, so a family link never leaves in a
  Referer header;
- a Content-Security-Policy: for pages, everything from the app itself (DESIGN §9: nothing from a
  CDN) and inline styles only; for anything else, nothing at all. A response that sets its own
  policy keeps it (/docs allows its one inline script by hash: api/docs.py);
- `Cache-Control: no-store` on everything but the static assets: API answers hold children's data,
  the login answer holds a token, family pages hold an appointment. A response that sets its own
  keeps it: the public provider registry's answers (api/routes/public.py), the same for anyone;
- `Strict-Transport-Security` when the request came over HTTPS (directly or, from a trusted proxy,
  by X-Forwarded-Proto).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PREFIX = "/static/"

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"


def secure(headers: MutableHeaders, *, static: bool, https: bool) -> None:
    """The headers above on one response (also api/errors.py's answer to an unexpected failure,
    which Starlette sends from outside every middleware)."""
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    if "content-security-policy" not in headers:
        html = headers.get("content-type", "").startswith("text/html")
        headers["Content-Security-Policy"] = PAGE_POLICY if html else DATA_POLICY
    if not static and "cache-control" not in headers:
        headers["Cache-Control"] = "no-store"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                secure(MutableHeaders(scope=message), static=static, https=scope.get("scheme") == "https")
            await send(message)

        await self.app(scope, receive, send_with_headers)
