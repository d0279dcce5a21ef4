"""A request body cap enforced while the body streams in: a declared length over the cap is refused before a
byte is read, and a chunked body is cut off as soon as it passes the cap."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised inside the app when a streamed body passes the cap (the app's handler answers 413)."""


class BodyLimit:
    """Pure ASGI middleware (no buffering): see the module docstring."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or {}).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            reason = (
                f"the body declares {declared.decode(errors='replace')[:20]} bytes; the limit is "
                f"{self.max_bytes} (limits.max_body_bytes)"
            )
            await _refuse(send, reason)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(f"the body passed {self.max_bytes} bytes (limits.max_body_bytes)")
            return message

        await self.app(scope, counted, send)


async def _refuse(send: Send, reason: str) -> None:
    body = json.dumps({"error": {"status": 413, "kind": "too_large", "reason": reason}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
