"""``serve``: uvicorn with the connection limits of ``limits`` and two more timers of its own."""

from __future__ import annotations

import logging
import os
import threading

from ..errors import DigitlabError
from . import auth
from .app import create_app

log = logging.getLogger("digitlab")


def _guarded_protocol():
    """uvicorn's own h11 protocol with two more timers, so idle connections cannot hold the server.

    uvicorn closes an idle keep-alive connection only after it has answered a request, and any byte
    resets that timer: a connection that never sends a request, or trickles its head a byte at a
    time, stays open for ever. Here every connection must deliver a whole request head within
    ``HEADER_TIMEOUT_S`` of opening (or of its last answer); and when ``MAX_CONNECTIONS`` are open, a
    new one closes the longest-idle connection that has no request in flight instead of being
    turned away with a 503.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from .limits import HEADER_TIMEOUT_S, MAX_CONNECTIONS

    class GuardedH11Protocol(H11Protocol):
        _head_timer = None
        _idle_since = 0.0

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._wait_for_head()
            others = [c for c in self.connections if c is not self and getattr(c, "_head_timer", None) is not None]
            excess = len(self.connections) - (MAX_CONNECTIONS - 1)  # uvicorn answers 503 at MAX_CONNECTIONS
            for c in sorted(others, key=lambda c: c._idle_since)[:max(0, excess)]:
                c._close_idle()

        def _wait_for_head(self) -> None:
            self._idle_since = self.loop.time()
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._close_idle)

        def _got_head(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _close_idle(self) -> None:
            self._got_head()
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # a whole request head has arrived
                self._got_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait_for_head()

        def connection_lost(self, exc) -> None:
            self._got_head()
            super().connection_lost(exc)

    return GuardedH11Protocol


def check_serve_settings(host: str) -> None:
    """Refuse to start with a teacher token that could be guessed (``DigitlabError``)."""
    token = auth.teacher_token()
    if token is not None:
        problem = auth.token_problem(token)
        if problem:
            raise DigitlabError(problem)
    elif not auth.is_loopback(host):
        log.warning("listening on %r without a teacher token: the worksheet, correction and profile endpoints "
                    "are closed (403); set one with --teacher-token-file or $DIGITLAB_TEACHER_TOKEN",
                    host or "every interface")


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    import uvicorn

    from .limits import KEEP_ALIVE_S, MAX_CONNECTIONS, MAX_HEADER_BYTES
    from ..models import get_model

    # The pupils' routes decide by the bind address: "" (every interface) is not loopback.
    os.environ["DIGITLAB_LISTEN_HOST"] = host
    check_serve_settings(host)
    get_model(None)  # load the default model before accepting requests
    if os.environ.get("DIGITLAB_TORCH_THREADS"):  # PyTorch's own default (one per core) measured best
        import torch

        torch.set_num_threads(int(os.environ["DIGITLAB_TORCH_THREADS"]))
    if open_browser:
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (f"http://{host or '127.0.0.1'}:{port}/",)).start()
    # uvicorn handles SIGTERM gracefully: stops accepting, finishes in-flight requests.
    uvicorn.run(create_app(), host=host, port=port, timeout_graceful_shutdown=10, http=_guarded_protocol(),
                limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=KEEP_ALIVE_S,
                h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_level="info")
