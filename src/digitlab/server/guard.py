"""The request guard, in front of every route: who may use the pupils' routes, then the body limit."""

from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException

from . import auth
from .limits import BODY_TIMEOUT_S, body_limit


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a body passes its limit: whoever reads it answers 413."""


class Guard:
    """ASGI middleware in front of every route: access first, then the body limit, then the route.

    Pupils' routes are checked (``auth.check``) before a byte of the body is read. The body limit
    (``limits.BODY_LIMITS``) is checked from Content-Length when there is one, and counted while the
    body streams either way (chunked bodies have no Content-Length); a pause longer than
    ``BODY_TIMEOUT_S`` while a body arrives is a 408. Refusals close the connection, so the client
    stops sending rather than the server reading the rest of the body only to discard it.
    """

    def __init__(self, app, failures: auth.FailureLimiter | None = None) -> None:
        self.app = app
        self.failures = failures or auth.FailureLimiter()

    @staticmethod
    async def _refuse(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        body = json.dumps({"error": message}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        if auth.PUPIL_ROUTES.fullmatch(path):
            try:
                auth.check(scope, self.failures)
            except auth.Refusal as no:
                return await self._refuse(send, no.status, no.message, no.headers)
        limit = body_limit(method, path)
        lengths = [v for k, v in scope.get("headers") or () if k.lower() == b"content-length"]
        if lengths:
            try:
                length = int(lengths[0])
                if length < 0 or len(set(lengths)) > 1:
                    raise ValueError
            except ValueError:
                return await self._refuse(send, 400, "bad Content-Length")
            if length > limit:
                return await self._refuse(send, 413, f"request body larger than {limit:,} bytes for {path}")
        seen, done, refused = 0, False, False

        async def counted():
            nonlocal seen, done, refused
            if done:  # after the body: the server's disconnect notice, no time limit
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), BODY_TIMEOUT_S)
            except asyncio.TimeoutError:
                refused = True
                raise HTTPException(408, f"the request body stopped arriving for {BODY_TIMEOUT_S:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if seen > limit:
                    refused = True
                    raise BodyTooLarge(413, f"request body larger than {limit:,} bytes for {path}")
            else:
                done = True
            return message

        started = False

        async def closing(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if refused:  # the rest of the body is not wanted: close rather than drain it
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, counted, closing)
        except HTTPException as exc:  # raised by ``counted`` where no handler turned it into an answer
            if started or exc.status_code not in (408, 413):
                raise
            await self._refuse(send, exc.status_code, str(exc.detail))
