"""Who may use the pupils' routes (worksheets, gradings, corrections, profiles).

- A teacher token is set (``$DIGITLAB_TEACHER_TOKEN``, or a file named by
  ``$DIGITLAB_TEACHER_TOKEN_FILE``): every request needs it in the ``X-Teacher-Token`` header (401),
  compared as UTF-8 bytes in constant time. A token shorter than ``TOKEN_MIN_LENGTH`` closes the
  routes (403; ``digitlab serve`` refuses to start with one). Wrong tokens are rate limited per
  client address (429 with Retry-After), so a token cannot be guessed quickly.
- No token, and the server listens on a loopback address only: open, to this machine's browser
  only. The Host header must name this machine (localhost, 127.0.0.1, [::1], with the server's port),
  which stops DNS rebinding, and a state-changing request from another origin (Origin header) is
  refused, which stops a web page posting into the class's data (both 403).
- No token, and any other bind address (``0.0.0.0``, ``::``, an empty host, a LAN address): closed, 403.

``check`` is called by the server's request guard before the body is read, and by
``require_teacher`` for a profile named inside a request body.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from .limits import TOKEN_FAILURES_BURST, TOKEN_FAILURES_PER_S, TOKEN_MIN_LENGTH

TOKEN_HEADER = "X-Teacher-Token"
PUPIL_ROUTES = re.compile(r"/api/(worksheets|corrections|profiles)(/.*)?")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "[::1]"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def is_loopback(host: str | None) -> bool:
    """True for addresses that only this machine can reach. An empty host binds every interface."""
    host = (host or "").strip()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "", or a host name: it may resolve to anything


def listen_host() -> str | None:
    return os.environ.get("DIGITLAB_LISTEN_HOST", "127.0.0.1")


_file_cache: dict[str, tuple[float, bytes]] = {}


def teacher_token() -> bytes | None:
    """The configured token as UTF-8 bytes, or None. The environment variable wins over the file."""
    value = os.environ.get("DIGITLAB_TEACHER_TOKEN")
    if value:
        return value.encode("utf-8")
    path = os.environ.get("DIGITLAB_TEACHER_TOKEN_FILE")
    if not path:
        return None
    try:
        mtime = os.stat(path).st_mtime
        cached = _file_cache.get(path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, Path(path).read_bytes().strip())
            _file_cache[path] = cached
        return cached[1] or None
    except OSError:
        return b""  # named but unreadable: closed (too short), never open


def token_problem(token: bytes) -> str | None:
    """Why a token cannot be used, or None."""
    try:
        n = len(token.decode("utf-8"))
    except UnicodeDecodeError:
        return "the teacher token is not UTF-8 text"
    if n < TOKEN_MIN_LENGTH:
        return (f"the teacher token is too short ({n} characters, at least {TOKEN_MIN_LENGTH}); "
                "for example `python -c \"import secrets; print(secrets.token_urlsafe(24))\"`")
    return None


class FailureLimiter:
    """Wrong tokens per client address: a bucket of ``burst`` that refills ``per_s`` a second."""

    MAX_ADDRESSES = 10_000

    def __init__(self, burst: int = TOKEN_FAILURES_BURST, per_s: float = TOKEN_FAILURES_PER_S) -> None:
        self.burst, self.per_s = burst, per_s
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)
        self._lock = threading.Lock()

    def _level(self, addr: str, now: float) -> float:
        tokens, when = self._buckets.get(addr, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.per_s)

    def retry_after(self, addr: str) -> int | None:
        """Seconds to wait when this address may not try now, else None."""
        with self._lock:
            level = self._level(addr, time.monotonic())
        return None if level >= 1 else max(1, math.ceil((1 - level) / self.per_s))

    def failed(self, addr: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._buckets) >= self.MAX_ADDRESSES:  # forget the ones that are full again
                self._buckets = {a: v for a, v in self._buckets.items() if self._level(a, now) < self.burst}
                if len(self._buckets) >= self.MAX_ADDRESSES:
                    self._buckets.clear()
            self._buckets[addr] = (max(0.0, self._level(addr, now) - 1), now)


_default_limiter = FailureLimiter()


def _header(scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers") or ():
        if k.lower() == name:
            return v
    return None


def _host_port(value: str) -> tuple[str, int | None]:
    value = value.strip().lower()
    m = re.fullmatch(r"(\[[0-9a-f:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?", value)
    if not m:
        return "", None
    return m.group(1), int(m.group(2)) if m.group(2) else None


def _check_local(scope) -> None:
    """Open mode: the Host header names this machine, and no other origin changes anything."""
    server = scope.get("server")
    port = server[1] if server and len(server) > 1 else None
    host, hport = _host_port((_header(scope, b"host") or b"").decode("latin-1"))
    if host not in _LOCAL_NAMES or (hport is not None and port is not None and hport != port):
        raise Refusal(403, "pupils' data is served to this machine only: the Host header must be localhost, "
                           "127.0.0.1 or [::1] (with the server's port)")
    if scope.get("method", "GET") in _SAFE_METHODS:
        return
    origin = _header(scope, b"origin")
    if origin is None:
        return  # not a browser (curl, scripts): a browser always sends Origin on a POST
    parts = urlsplit(origin.decode("latin-1").strip().lower())
    try:
        oport = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        oport = None
    ohost = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    if ohost not in _LOCAL_NAMES or oport != (hport or port or 80):
        raise Refusal(403, "a request from another web page (Origin header) may not change pupils' data")


def check(scope, limiter: FailureLimiter | None = None) -> None:
    """Raise ``Refusal`` unless this request may use the pupils' routes (the rule above)."""
    token = teacher_token()
    if token is not None:
        problem = token_problem(token)
        if problem:
            raise Refusal(403, f"pupils' data is closed: {problem}")
        limiter = limiter or _default_limiter
        client = scope.get("client")
        addr = str(client[0]) if client else "?"
        wait = limiter.retry_after(addr)
        if wait is not None:
            raise Refusal(429, "too many wrong teacher tokens from this address; try again shortly",
                          {"Retry-After": str(wait)})
        given = _header(scope, TOKEN_HEADER.lower().encode()) or b""
        if not hmac.compare_digest(given, token):
            limiter.failed(addr)
            raise Refusal(401, f"pupils' data needs the teacher token (header {TOKEN_HEADER})")
        return
    if not is_loopback(listen_host()):
        raise Refusal(403, "worksheet and class endpoints are closed: the server listens beyond this machine "
                           "and no teacher token was set (start it with --teacher-token-file or "
                           "DIGITLAB_TEACHER_TOKEN)")
    _check_local(scope)
