"""Security headers on every answer: the page may run only its own scripts and styles, be
framed by no other site, and its answers are never sniffed into another type.

A plain ASGI middleware (not Starlette's BaseHTTPMiddleware, which buffers and would hold up
the event stream); it only adds headers as each answer starts.
"""

from __future__ import annotations

# The page is its own files: no inline script or style, no other origin. Pictures also come as
# data: URLs (live previews) and blob: URLs (a dropped picture, the mask being painted).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
# FastAPI's /docs page loads Swagger UI from a CDN and runs an inline script
NO_POLICY = ("/docs", "/docs/oauth2-redirect")


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(HEADERS)
        if scope["path"] not in NO_POLICY:
            extra.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in extra if name not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
