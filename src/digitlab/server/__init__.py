"""The web app: a FastAPI JSON API and the drawing page, all assets served locally.

Bad input never gives a 500: every error is ``{"error": "..."}`` with a 4xx status.

Work is split by cost so that no request can starve the others:

- light work (``/api/predict``, ``/api/visualize``, ``/api/models``) runs in this process in a small
  bounded thread pool; images are downscaled before preprocessing, so its cost is bounded;
- heavy work (``/api/check``, ``/api/read``) runs in separate worker processes (``HeavyPool``) at
  lower priority with one thread each, behind a bounded queue (503 when full). A request past its
  deadline gets a 504 and its worker process is killed and replaced, so the work stops there.
  Before reading, the image is downscaled and its ink marks counted; too many is a 422.

Every POST documents its request body (multipart upload or JSON) and its response model.

The modules, in the order a request meets them:

- ``listen``: ``serve``, uvicorn with connection limits and two timers of its own;
- ``guard``: ASGI middleware in front of every route: ``auth`` (who may use the pupils' routes: the
  teacher token, or loopback only), then the body limits of ``limits`` (every size and time limit);
- ``app``: ``create_app``, which assembles the rest; ``handlers``: every error as JSON;
- ``routes``: ``reading``, ``status``, ``pages`` (the worksheets' and profiles' routes live in
  their packages); ``schemas``: the request and response models;
- ``inputs``: the image of a request, checked and downscaled; ``work``: what the reading routes
  run; ``workers``: where it runs (``run_bounded``, ``HeavyPool``).

``create_app`` and ``serve`` are imported from here on first use, not with the package: the
worksheet and profile routes import ``auth`` and ``limits`` from this package, and the app imports
those routes.
"""

from __future__ import annotations

__all__ = ["create_app", "serve"]


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .listen import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
