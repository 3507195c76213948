"""What a client may send the server: every size and time limit, in one place.

``docs/reliability.md`` quotes this table (a test keeps the two the same). The server's request guard
(``digitlab.server.guard``) enforces the body limits before any route runs, and before any token-dependent
parsing: a Content-Length over the limit is refused unread, a body without one (chunked) is counted
while it streams and refused the moment it passes the limit. The routes check the decoded file
against the same numbers (``MAX_UPLOAD``, ``MAX_PHOTO``).
"""

from __future__ import annotations

import os
import re

MB = 1024 * 1024
MAX_UPLOAD = 5 * MB  # one image file: a digit, a number, a page of sums
MAX_PHOTO = 12 * MB  # one photo of a filled-in worksheet
ENVELOPE = 64 * 1024  # multipart part headers and form fields, or the JSON around a base64 image
SMALL_BODY = 64 * 1024  # every other route takes a few JSON fields (GETs none)
MAX_PHOTO_PIXELS = 50_000_000  # a worksheet photo is refused from its header beyond this (a 48 MP phone: 8000x6000)

# Images, as the reading routes decode them (``inputs.open_image``, ``inputs.count_marks``).
MAX_SIDE = 4096  # refused from the header above this (422)
PREDICT_SIDE = 1024  # a single digit ends up 20x20: larger images are downscaled first
PAGE_SIDE = 2048  # pages and numbers are read at most this large (longest side)
# Separate ink marks (grey-level connected components at PAGE_SIDE) in a page or number: a cheap
# backstop before any reading. Photos of squared or ruled exercise books count 500 to 5,000 (rulings,
# the table, specks: the page reader removes those and has its own, finer limit); a page of dense
# dots 62,500.
MAX_MARKS = int(os.environ.get("DIGITLAB_MAX_MARKS", 20000))


def base64_size(n: int) -> int:
    """Length of ``n`` bytes written as base64."""
    return 4 * ((n + 2) // 3)


IMAGE_BODY = base64_size(MAX_UPLOAD) + ENVELOPE  # the larger of the two encodings: JSON with base64

# (method, path, largest body in bytes, what it holds): the first row that matches a request applies.
BODY_LIMITS: tuple[tuple[str, str, int, str], ...] = (
    ("POST", r"/api/(predict|read|check|visualize)", IMAGE_BODY,
     "an image of at most 5 MB: multipart `file`, or base64 in JSON"),
    ("POST", r"/api/worksheets/grade", MAX_PHOTO + ENVELOPE, "a worksheet photo of at most 12 MB, multipart"),
    ("POST", r"/api/corrections", IMAGE_BODY, "a digit: 28x28 `pixels`, or a base64 image of at most 5 MB"),
    ("POST", r"/api/profiles/[^/]+/predict", IMAGE_BODY, "the same as /api/predict"),
    ("*", r".*", SMALL_BODY, "every other request (a few JSON fields; GETs have no body)"),
)
_COMPILED = [(m, re.compile(p + r"/?"), n) for m, p, n, _ in BODY_LIMITS]


def body_limit(method: str, path: str) -> int:
    """The largest body a request to ``path`` may have."""
    for m, pattern, n in _COMPILED:
        if (m == "*" or m == method) and pattern.fullmatch(path):
            return n
    raise AssertionError("the last row matches every request")


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# Connections (uvicorn, see ``listen.serve``). Environment variables override them (tests use short ones).
HEADER_TIMEOUT_S = _env("DIGITLAB_HEADER_TIMEOUT", 10)  # from connecting (or the last answer) to a whole request head
BODY_TIMEOUT_S = _env("DIGITLAB_BODY_TIMEOUT", 10)  # the longest pause while a body arrives (then 408)
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
MAX_CONNECTIONS = int(_env("DIGITLAB_MAX_CONNECTIONS", 256))  # open connections; idle ones are closed first
MAX_HEADER_BYTES = 16 * 1024  # the request line and headers together (h11's own limit, made explicit)

# The teacher token.
TOKEN_MIN_LENGTH = 16
TOKEN_FAILURES_BURST = 5  # wrong tokens an address may send at once ...
TOKEN_FAILURES_PER_S = 2.0  # ... and then this many a second; beyond that 429 with Retry-After


def markdown_table() -> str:
    """The body limits as the Markdown table docs/reliability.md quotes."""
    rows = ["| method | path | largest body | what it holds |", "|---|---|---|---|"]
    for m, p, n, what in BODY_LIMITS:
        path = "any other" if p == ".*" else "`" + p.replace("|", "\\|") + "`"
        rows.append(f"| {m if m != '*' else 'any'} | {path} | {n:,} bytes | {what} |")
    return "\n".join(rows)
