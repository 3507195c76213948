"""Hostile and odd input everywhere, property tests, and safe model/cache files.

No request can starve the service (bounded work, killable heavy workers, fairness)."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from digitlab.errors import ImageError
from digitlab.digits.preprocess import NoDigitFound
from digitlab.digits.segment import segment_ink
from digitlab.server import create_app


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def three(mnist_test):
    i = int(np.nonzero(mnist_test.labels == 3)[0][0])
    return 255 - np.pad(mnist_test.images[i], 16)


def upload(client, raw, name="x.png"):
    return client.post("/api/predict", files={"file": (name, raw, "application/octet-stream")})


def save(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_animated_gif_uses_first_frame(client, three):
    frames = [Image.fromarray(three), Image.fromarray(np.full_like(three, 255))]
    raw = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    r = upload(client, raw, "anim.gif")
    assert r.status_code == 200 and r.json()["digit"] == 3


def test_16bit_png(client, three):
    raw = save(Image.fromarray(three.astype(np.uint16) * 257), "PNG")
    assert Image.open(io.BytesIO(raw)).mode.startswith("I")
    assert upload(client, raw).json()["digit"] == 3


def test_cmyk_jpeg(client, three):
    raw = save(Image.fromarray(three).convert("CMYK"), "JPEG")
    assert upload(client, raw, "c.jpg").json()["digit"] == 3


def test_phone_photo_with_exif_rotation_is_read_upright(client, three):
    # Stored rotated 90 degrees clockwise, with the EXIF tag that tells viewers to turn it back.
    stored = Image.fromarray(three).transpose(Image.Transpose.ROTATE_270)
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to display"... the inverse of how it was stored
    raw = save(stored.convert("RGB"), "JPEG", exif=exif.tobytes(), quality=92)
    assert upload(client, raw, "phone.jpg").json()["digit"] == 3


def test_chunked_json_body_over_limit_is_413(client):
    def gen():
        yield b'{"image": "'
        for _ in range(80):
            yield b"A" * 100_000
        yield b'"}'

    r = client.post("/api/predict", content=gen(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()


def test_every_endpoint_rejects_garbage_with_json(client):
    for path in ("/api/predict", "/api/read", "/api/check", "/api/visualize"):
        for body in (b"", b"\x00\xff" * 10):
            r = client.post(path, files={"file": ("g.png", body, "image/png")})
            assert 400 <= r.status_code < 500 and "error" in r.json(), (path, r.status_code)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 90), st.integers(1, 240)),
              elements=st.floats(0, 1, width=32)))
def test_segmentation_never_crashes(ink):
    try:
        symbols = segment_ink(ink)
    except NoDigitFound:
        return
    assert symbols
    for s in symbols:
        x0, y0, x1, y1 = s.box
        assert 0 <= x0 < x1 <= ink.shape[1] and 0 <= y0 < y1 <= ink.shape[0]
        assert s.image.shape == (28, 28) and np.isfinite(s.image).all()


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash_the_decoder(raw):
    from digitlab.digits.preprocess import preprocess_digit

    try:
        preprocess_digit(raw)
    except ImageError:
        pass


# -- damaged files that reach the decoders ------------------------------------------------------------------
# Random bytes stop at the format sniffing (above); these are valid files with their header kept and
# their coded data cut short or flipped, so the decoder itself meets the damage.
def _photo(side: int) -> Image.Image:
    """A ring on noisy paper: enough entropy that every format has a sizable data part."""
    import cv2

    rng = np.random.default_rng(side)
    img = np.full((side, side), 235, np.uint8)
    cv2.circle(img, (side // 2, side // 2), side // 3, 20, max(2, side // 12))
    return Image.fromarray(np.clip(img + rng.integers(-25, 25, img.shape), 0, 255).astype(np.uint8))


DAMAGE_FORMATS = {
    "png": ("PNG", {}),
    "jpeg": ("JPEG", {"quality": 90}),
    "progressive-jpeg": ("JPEG", {"quality": 90, "progressive": True}),
    "gif": ("GIF", {}),
    "tiff": ("TIFF", {}),
    "tiff-lzw": ("TIFF", {"compression": "tiff_lzw"}),
}


def _data_span(raw: bytes, fmt: str) -> tuple[int, int]:
    """Where the coded image data lies in ``raw``: everything before ``start`` is header."""
    import struct

    if fmt == "PNG":  # the first IDAT chunk's data
        pos = 8
        while True:
            n, kind = struct.unpack(">I4s", raw[pos : pos + 8])
            if kind == b"IDAT":
                return pos + 8, pos + 8 + n
            pos += 12 + n
    if fmt == "JPEG":  # the first scan's entropy-coded data, up to EOI
        sos = raw.index(b"\xff\xda")
        return sos + 2 + struct.unpack(">H", raw[sos + 2 : sos + 4])[0], raw.rindex(b"\xff\xd9")
    if fmt == "GIF":  # the first image's LZW sub-blocks
        flags = raw[10]
        pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        while raw[pos] == 0x21:  # extensions: label, then sub-blocks
            pos += 2
            while raw[pos]:
                pos += raw[pos] + 1
            pos += 1
        assert raw[pos] == 0x2C
        flags = raw[pos + 9]
        pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
        return pos + 1, len(raw) - 1  # after the LZW code size, before the trailer
    tags = Image.open(io.BytesIO(raw)).tag_v2  # TIFF: the strips
    offsets, counts = tags[273], tags[279]
    return min(offsets), max(o + c for o, c in zip(offsets, counts))


def _damaged(raw: bytes, fmt: str, rng) -> list[tuple[str, bytes]]:
    import zlib

    start, end = _data_span(raw, fmt)
    # (a TIFF whose directory follows its strips is not cut: it would lose its header)
    header_first = fmt != "TIFF" or int.from_bytes(raw[4:8], "little" if raw[:2] == b"II" else "big") < start
    out = [(f"cut at {f:.0%} of the data", raw[: start + int(f * (end - start))]) for f in (0.1, 0.5, 0.9)
           if header_first]
    for k in range(4):
        b = bytearray(raw)
        for p in rng.integers(start, end, 4):
            b[p] ^= 0xFF
        if fmt == "PNG":  # a matching CRC, so the damage reaches zlib rather than the chunk check
            b[end : end + 4] = zlib.crc32(bytes(b[start - 4 : end])).to_bytes(4, "big")
        out.append((f"4 bytes flipped ({k})", bytes(b)))
    return out


@pytest.fixture(scope="module")
def damaged_files():
    rng = np.random.default_rng(0)
    cases = []
    for side in (64, 1400):  # 1400: above the server's PREDICT_SIDE, so it decodes (and downscales) it itself
        for name, (fmt, kw) in DAMAGE_FORMATS.items():
            img = _photo(side).convert("RGB") if fmt == "JPEG" else _photo(side)
            raw = save(img, fmt, **kw)
            for what, bad in _damaged(raw, fmt, rng):
                cases.append((f"{name} {side}px, {what}", fmt, side, bad))
    return cases


def test_damaged_files_pass_the_sniffing_and_reach_the_decoder(damaged_files):
    """Every damaged file still opens as its format with its size (header intact), so what follows
    is the decoder's work; the truncated ones fail there, loading the pixels."""
    assert len(damaged_files) >= 70
    for label, fmt, side, raw in damaged_files:
        img = Image.open(io.BytesIO(raw))
        assert (img.format, img.size) == (fmt, (side, side)), label
        if "cut" in label:
            with pytest.raises((OSError, SyntaxError, ValueError, EOFError)):
                Image.open(io.BytesIO(raw)).load()


@pytest.mark.parametrize("loader", ["load_image", "load_rgb"])
def test_damaged_files_give_an_image_error_or_an_image(damaged_files, loader):
    """A cut or flipped file is a digitlab ImageError ("cannot decode image") or, where the decoder
    shrugs the damage off (JPEG, raw TIFF), a sane image: never another exception."""
    from digitlab.io import images

    load = getattr(images, loader)
    errors = 0
    for label, fmt, side, raw in damaged_files:
        try:
            a = load(raw)
        except ImageError as exc:
            assert "cannot decode image" in str(exc), (label, str(exc))
            errors += 1
            continue
        except Exception as exc:  # pragma: no cover - the failure this test is for
            pytest.fail(f"{label}: {type(exc).__name__}: {exc}")
        assert "cut" not in label, f"{label}: a truncated file was read"
        assert a.shape[:2] == (side, side) and a.dtype == np.float32, label
        assert np.isfinite(a).all() and a.min() >= 0 and a.max() <= 1, label
    assert errors >= len(damaged_files) // 2  # most damage is caught by the decoders, not read past


def test_damaged_files_are_422_from_the_api_never_500(client, damaged_files):
    for label, fmt, side, raw in damaged_files:
        r = upload(client, raw, f"x.{fmt.lower()}")
        assert r.status_code in (200, 422), (label, r.status_code, r.text[:200])
        if "cut" in label:
            assert r.status_code == 422 and "cannot decode image" in r.json()["error"], (label, r.text[:200])


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    """A cache that cannot be written (read-only home, full disk) costs speed, not the load."""
    from digitlab.datasets import mnist as data

    def refuse(path, payload):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data, "atomic_write", refuse)
    split = data.load_mnist("test")
    assert len(split) == 10000 and not (tmp_path / "cache" / "npy").exists()


def test_server_binds_loopback_and_shuts_down_gracefully_on_sigterm():
    import json
    import signal
    import subprocess
    import urllib.request

    from helpers import start_server

    proc, url = start_server(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert json.loads(urllib.request.urlopen(url + "/api/health", timeout=5).read())["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    # uvicorn finishes in-flight work, then re-raises SIGTERM so a supervisor sees how it ended.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Uvicorn running on http://127.0.0.1:" in out and "Application shutdown complete" in out
    assert "Traceback" not in out


# -- no request can starve the service --------------------------------------------------------
def dot_page(side=4000, step=16, dot=3) -> bytes:
    """A page covered in small dots (squared paper looks much like it): a 28 KB PNG, 62,500 marks."""
    yy, xx = np.ogrid[:side, :side]
    return save(Image.fromarray(np.where((yy % step < dot) & (xx % step < dot), 0, 255).astype(np.uint8)), "PNG")


@pytest.fixture(scope="module")
def dots():
    return dot_page()


def test_dense_dot_page_is_refused_quickly_everywhere(client, dots, three):
    import time

    # Start-up (imports, loading models) is not what is timed here.
    assert client.app.state.heavy.ready(120)
    assert upload(client, save(Image.fromarray(three), "PNG")).status_code == 200
    for path in ("/api/check", "/api/read"):
        t0 = time.perf_counter()
        r = client.post(path, files={"file": ("dots.png", dots, "image/png")})
        took = time.perf_counter() - t0
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "too many marks to read as handwriting" in r.json()["error"]
        assert took < 15, (path, took)  # about 0.3 s once the worker is warm
    # A single digit is read from a downscaled copy: cheap whatever it holds.
    t0 = time.perf_counter()
    r = client.post("/api/predict", files={"file": ("dots.png", dots, "image/png")})
    assert r.status_code in (200, 422) and time.perf_counter() - t0 < 5


def test_heavy_work_past_its_deadline_is_killed_and_its_slot_freed():
    import asyncio
    import math
    import os
    import signal
    import time

    from digitlab.server.handlers import ApiError
    from digitlab.server.workers import HeavyPool

    pool = HeavyPool(workers=1, queue_size=0, timeout=1.0, deadline=1.5, warm=False)

    def patient(yes: bool) -> None:  # room for a worker's start-up, or the tight limits under test
        pool.wait, pool.deadline = (60, 61) if yes else (0.5, 1.5)

    async def scenario():
        patient(True)
        assert await pool.run(math.factorial, 5) == 120
        patient(False)
        first = asyncio.create_task(pool.run(math.factorial, 10 ** 8))  # minutes of CPU
        await asyncio.sleep(0.2)
        with pytest.raises(ApiError) as busy:  # the one slot is taken and nobody may wait
            await pool.run(math.factorial, 5)
        assert busy.value.status == 503
        [pid] = pool.pids()
        t0 = time.perf_counter()
        with pytest.raises(ApiError) as late:
            await first
        assert late.value.status == 504 and "stopped after 1.0 s" in late.value.message
        assert time.perf_counter() - t0 < 5
        return pid

    try:
        pid = asyncio.run(scenario())
        # The worker that ran past its deadline is gone (killed and reaped), not computing on.
        assert not Path(f"/proc/{pid}").exists()
        assert pool.killed == 1 and pid not in pool.pids()
        # A fresh worker answers the next request: the slot was freed.
        patient(True)
        assert asyncio.run(pool.run(math.factorial, 6)) == 720
        assert pid not in pool.pids() and len(pool.pids()) == 1
        # A worker killed from outside while idle (the OOM killer) is replaced, not used.
        [idle] = pool.pids()
        os.kill(idle, signal.SIGKILL)
        time.sleep(0.2)
        assert asyncio.run(pool.run(math.factorial, 4)) == 24
        assert idle not in pool.pids() and len(pool.pids()) == 1
    finally:
        pool.close()
    assert not pool.pids()


def test_worker_errors_keep_their_status_and_the_worker(client):
    # An unreadable upload is a 422 from inside the worker process; the same worker serves on.
    pids = client.app.state.heavy.pids()
    r = client.post("/api/check", files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image/png")})
    assert r.status_code == 422 and "error" in r.json()
    assert client.app.state.heavy.pids() == pids


def test_predictions_stay_fast_while_heavy_checks_run(client, dots, three):
    """Four page checks at once do not hold up single-digit predictions (separate pools)."""
    import threading
    import time

    raw = save(Image.fromarray(three), "PNG")
    stop = threading.Event()
    heavy_status = []

    def heavy():
        while not stop.is_set():
            heavy_status.append(client.post("/api/check", files={"file": ("d.png", dots, "image/png")}).status_code)

    threads = [threading.Thread(target=heavy) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)  # the checks are under way
        lat = []
        for _ in range(40):
            t0 = time.perf_counter()
            r = client.post("/api/predict", files={"file": ("3.png", raw, "image/png")})
            lat.append(time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["digit"] == 3
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert heavy_status and set(heavy_status) <= {422, 503}, heavy_status
    # The benchmark measures p95 <= 250 ms on a real server; here the bound leaves room for CI noise.
    assert float(np.percentile(lat, 95)) < 1.0, sorted(lat)[-5:]


def test_exercise_book_photo_is_not_taken_for_dots(client):
    """The server's mark count is a backstop far above real pages: a 3164x4000 photo of a squared or
    ruled exercise book on a table (rulings, table, specks: thousands of marks) is read, not refused."""
    from digitlab.synthetic import pagegen
    from digitlab.reader.glyphs import GlyphBank
    from digitlab.server.inputs import count_marks, load_grey
    from digitlab.server.limits import MAX_MARKS, PAGE_SIDE

    rng = np.random.default_rng(3)
    raw, truth, _ = pagegen.notebook_photo(GlyphBank.load("heldout", max_per_digit=20), rng, out_side=4000)
    marks = count_marks(load_grey(raw, PAGE_SIDE)[1], MAX_MARKS)
    assert 300 < marks < MAX_MARKS / 3
    assert client.app.state.heavy.ready(120)
    r = client.post("/api/check", files={"file": ("book.jpg", raw, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert len(r.json()["lines"]) >= len(truth) // 2


# -- Hostile clients: bodies bounded before any work, no open doors, no 500s ----------------------------------
TOKEN = "a-teacher-token-of-24-ch"
CHUNK = 64 * 1024
_A = b"A" * CHUNK


def asgi(app, method, path, chunks=(), headers=(), client=("127.0.0.1", 50000), server=("127.0.0.1", 8000)):
    """One request straight into the ASGI app, its body handed over chunk by chunk as the server would
    (chunked: no Content-Length unless given). Returns (status, headers, body, bytes of the body taken)."""
    import asyncio

    it = iter(chunks)
    taken = 0

    async def receive():
        nonlocal taken
        chunk = next(it, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v if isinstance(v, bytes) else v.encode()) for k, v in headers],
             "client": client, "server": server}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body, taken


def stream(total: int, head: bytes = b""):
    yield head
    for _ in range(total // CHUNK):
        yield _A


_MULTIPART = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
              b"Content-Type: image/png\r\n\r\n")
# (method, path, content type, start of the body): one request for every row of the body-limit table
ROUTES = [("POST", "/api/predict", "application/json", b'{"image": "'),
          ("POST", "/api/read", "multipart/form-data; boundary=xyz", _MULTIPART),
          ("POST", "/api/check", "application/json", b'{"image": "'),
          ("POST", "/api/visualize", "multipart/form-data; boundary=xyz", _MULTIPART),
          ("POST", "/api/worksheets/grade", "multipart/form-data; boundary=xyz", _MULTIPART),
          ("POST", "/api/corrections", "application/json", b'{"image": "'),
          ("POST", "/api/profiles/c/predict", "application/json", b'{"image": "'),
          ("POST", "/api/worksheets", "application/json", b'{"title": "'),
          ("PUT", "/api/worksheets/gradings/1/name", "application/json", b'{"name": "')]


_ACCESS_ENV = ("DIGITLAB_TEACHER_TOKEN", "DIGITLAB_TEACHER_TOKEN_FILE", "DIGITLAB_LISTEN_HOST")


def _clear_access_env(monkeypatch):
    for name in _ACCESS_ENV:  # set first, so that what the code under test sets is undone afterwards too
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture()
def pupils_app(tmp_path, monkeypatch):
    """An app on a fresh database, listening on loopback, no teacher token (pupils' routes open locally)."""
    monkeypatch.setenv("DIGITLAB_DB", str(tmp_path / "class.db"))
    _clear_access_env(monkeypatch)
    app = create_app()
    yield app
    if app.state.heavy is not None:
        app.state.heavy.close()


@pytest.mark.parametrize("method, path, ctype, head", [r for r in ROUTES if "/api/worksheets" in r[1]
                                                       or r[1].startswith(("/api/corrections", "/api/profiles"))])
def test_without_the_token_nothing_of_the_body_is_read(pupils_app, monkeypatch, method, path, ctype, head):
    monkeypatch.setenv("DIGITLAB_TEACHER_TOKEN", TOKEN)
    for given in ((), (("x-teacher-token", "wrong-token-wrong-token"),)):
        status, headers, body, taken = asgi(pupils_app, method, path, stream(20 * 1024 * 1024, head),
                                            [("content-type", ctype), ("host", "127.0.0.1:8000"), *given],
                                            client=(f"10.0.0.{len(given)}", 1))
        assert status == 401 and "teacher token" in body.decode(), (path, status, body[:200])
        assert taken == 0, (path, taken)  # refused before the body: the client is told to stop (close)
        assert headers.get("connection") == "close"


@pytest.mark.parametrize("method, path, ctype, head", ROUTES)
def test_chunked_bodies_stop_at_their_route_limit(pupils_app, method, path, ctype, head):
    from digitlab.server.limits import body_limit

    limit = body_limit(method, path)
    status, headers, body, taken = asgi(pupils_app, method, path, stream(2 * limit + 4 * CHUNK, head),
                                        [("content-type", ctype), ("host", "127.0.0.1:8000")])
    assert status == 413 and "error" in json.loads(body), (path, status, body[:200])
    assert taken <= limit + CHUNK + len(head), (path, taken, limit)  # counted while streaming, not read whole
    assert headers.get("connection") == "close"
    # With a Content-Length over the limit, not a byte is taken.
    status, _, _, taken = asgi(pupils_app, method, path, stream(2 * limit, head),
                               [("content-type", ctype), ("host", "127.0.0.1:8000"),
                                ("content-length", str(limit + 1))])
    assert status == 413 and taken == 0, (path, status, taken)


def test_the_limits_are_one_table_quoted_in_the_docs():
    from digitlab.server import limits

    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    assert limits.markdown_table() in doc
    # The routes check the decoded file against the same numbers as the table.
    from digitlab.profiles import api as profiles_api
    from digitlab.worksheets import api as worksheets_api

    assert worksheets_api.MAX_PHOTO == limits.MAX_PHOTO and profiles_api.MAX_IMAGE == limits.MAX_UPLOAD
    assert limits.body_limit("POST", "/api/worksheets/grade") > limits.MAX_PHOTO
    assert limits.body_limit("POST", "/api/predict") >= limits.base64_size(limits.MAX_UPLOAD)


def test_a_worksheet_photo_over_5mb_is_graded_not_refused(pupils_app):
    """The grading limit (12 MB) holds whether the photo comes with a Content-Length or chunked."""
    pupils_app.state.heavy.close()
    pupils_app.state.heavy = None  # graded in this process: no worker to start for a photo that is not one
    c = TestClient(pupils_app, base_url="http://127.0.0.1:8000")
    photo = b"\xff\xd8" + b"\0" * int(7.3 * 1024 * 1024)  # not a readable photo: the grader's 422, not a 413
    r = c.post("/api/worksheets/grade", files={"file": ("big.jpg", photo, "image/jpeg")})
    assert r.status_code == 422, r.text
    r = c.post("/api/worksheets/grade", files={"file": ("huge.jpg", b"\0" * (12 * 1024 * 1024 + 1), "image/jpeg")})
    assert r.status_code == 413 and "12 MB" in r.json()["error"]


# -- who may see the pupils' data -----------------------------------------------------------------------------
@pytest.mark.parametrize("host, is_open", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
                                           ("", False), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
                                           ("school.example", False)])
def test_every_bind_but_loopback_needs_the_token(pupils_app, monkeypatch, host, is_open):
    monkeypatch.setenv("DIGITLAB_LISTEN_HOST", host)
    c = TestClient(pupils_app, base_url="http://127.0.0.1:8000")
    for path in ("/api/worksheets", "/api/worksheets/gradings/list", "/api/corrections", "/api/profiles"):
        r = c.get(path)
        assert r.status_code == (200 if is_open else 403), (host, path, r.text)
    assert c.get("/api/health").status_code == 200


def test_loopback_mode_checks_the_host_and_the_origin(pupils_app):
    c = TestClient(pupils_app, base_url="http://localhost:8000")
    assert c.get("/api/worksheets").status_code == 200
    for host in ("evil.example", "evil.example:8000", "127.0.0.1:9999", "localhost.evil.example"):
        r = c.get("/api/worksheets/gradings/list", headers={"host": host})
        assert r.status_code == 403 and "Host" in r.json()["error"], host  # DNS rebinding
    for host in ("127.0.0.1:8000", "[::1]:8000", "localhost"):
        assert c.get("/api/worksheets", headers={"host": host}).status_code == 200, host
    assert c.get("/api/health", headers={"host": "evil.example"}).status_code == 200  # not pupils' data
    sheet = {"problems": 4, "seed": 1}
    for origin in ("http://evil.example", "null", "http://localhost:9999", "http://127.0.0.1.evil.example:8000"):
        r = c.post("/api/worksheets", json=sheet, headers={"origin": origin})
        assert r.status_code == 403 and "Origin" in r.json()["error"], origin
        r = c.post("/api/worksheets/grade", files={"file": ("a.png", b"x", "image/png")}, headers={"origin": origin})
        assert r.status_code == 403, origin
    assert c.get("/api/worksheets").json() == []  # nothing was stored
    assert c.post("/api/worksheets", json=sheet, headers={"origin": "http://localhost:8000"}).status_code == 200
    assert c.post("/api/worksheets", json=sheet).status_code == 200  # no Origin: not a browser


def test_the_token_is_long_rate_limited_utf8_and_may_come_from_a_file(pupils_app, monkeypatch, tmp_path):
    import time

    c = TestClient(pupils_app, base_url="http://127.0.0.1:8000")
    monkeypatch.setenv("DIGITLAB_LISTEN_HOST", "0.0.0.0")
    monkeypatch.setenv("DIGITLAB_TEACHER_TOKEN", "1234")
    r = c.get("/api/worksheets", headers={"X-Teacher-Token": "1234"})
    assert r.status_code == 403 and "too short" in r.json()["error"]
    token = "zwölf-äpfel-für-die-klasse"  # UTF-8, as a teacher might type it
    monkeypatch.setenv("DIGITLAB_TEACHER_TOKEN", token)
    right = {"X-Teacher-Token": token.encode("utf-8")}
    assert c.get("/api/worksheets", headers=right).status_code == 200
    statuses = [c.get("/api/worksheets", headers={"X-Teacher-Token": f"guess-{i:04d}"}).status_code for i in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3, statuses
    r = c.get("/api/worksheets", headers=right)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1  # even the right one: no guessing past it
    time.sleep(0.6)
    assert c.get("/api/worksheets", headers=right).status_code == 200
    monkeypatch.delenv("DIGITLAB_TEACHER_TOKEN")
    (tmp_path / "token").write_text("from-a-file-not-the-command-line\n")
    monkeypatch.setenv("DIGITLAB_TEACHER_TOKEN_FILE", str(tmp_path / "token"))
    assert c.get("/api/corrections", headers={"X-Teacher-Token": "from-a-file-not-the-command-line"}).status_code == 200
    assert c.get("/api/corrections").status_code == 401


def test_serve_refuses_short_tokens_and_sets_uvicorn_limits(monkeypatch, tmp_path, capsys):
    import os

    import uvicorn

    from digitlab.server import limits
    from digitlab.cli import main

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    _clear_access_env(monkeypatch)
    assert main(["serve", "--host", "", "--teacher-token", "short"]) == 2
    err = capsys.readouterr().err
    assert "too short" in err and "Traceback" not in err and not calls
    _clear_access_env(monkeypatch)
    (tmp_path / "token").write_text("x" * 20)
    assert main(["serve", "--host", "", "--teacher-token-file", str(tmp_path / "token")]) == 0
    assert os.environ["DIGITLAB_LISTEN_HOST"] == "" and os.environ["DIGITLAB_TEACHER_TOKEN_FILE"] == str(tmp_path / "token")
    [kw] = calls
    assert kw["timeout_keep_alive"] == limits.KEEP_ALIVE_S and kw["limit_concurrency"] == limits.MAX_CONNECTIONS
    assert kw["h11_max_incomplete_event_size"] == limits.MAX_HEADER_BYTES
    assert kw["http"].__name__ == "GuardedH11Protocol"


# -- every bad value a 4xx ------------------------------------------------------------------------------------
def test_bad_values_on_the_pupils_routes_are_4xx(pupils_app):
    from digitlab.storage import open_db

    c = TestClient(pupils_app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False)
    gid = open_db().add_grading({"file": "p.jpg", "sheet_id": "WS-1", "score": 0, "total": 1, "problems": [
        {"id": 1, "op": "+", "question": "1 + 1 = ?", "expected": ["2"], "read": ["3"], "status": "wrong",
         "confidence": 0.9}]}, crops={(1, 0): b"png"}, key={"sheet_id": "WS-1", "title": "T"})
    huge = str(2**63)
    for path in (f"/api/worksheets/gradings/{huge}", f"/api/worksheets/gradings/{huge}/name.png",
                 f"/api/worksheets/gradings/{gid}/crops/{huge}/0", f"/api/worksheets/gradings/1/crops/1/{2**64}"):
        r = c.get(path)
        assert 400 <= r.status_code < 500 and "error" in r.json(), (path, r.status_code)
    assert c.put(f"/api/worksheets/gradings/{huge}/name", json={"name": "A"}).status_code == 422
    assert c.post(f"/api/worksheets/gradings/{huge}/answers/1/fix", json={"labels": ["2"]}).status_code == 422
    for labels in (["²"], ["1" * 5000], ["٣"], ["-2"]):
        r = c.post(f"/api/worksheets/gradings/{gid}/answers/1/fix", json={"labels": labels})
        assert 400 <= r.status_code < 500 and "error" in r.json(), (labels[0][:8], r.status_code)
    assert c.post(f"/api/worksheets/gradings/{gid}/answers/1/fix", json={"labels": ["2"]}).json()["score"] == 1
    for body in ({"seed": -1}, {"seed": 2**70}, {"title": "a\x07b"}, {"title": "tab\there"}):
        r = c.post("/api/worksheets", json=body)
        assert r.status_code == 422 and "error" in r.json(), (body, r.status_code)


def test_a_stored_title_with_a_control_character_still_renders(pupils_app):
    from digitlab.storage import open_db
    from digitlab.worksheets.layout import key_of, layout, make_problems

    sheet = layout(make_problems(4, seed=1), "WS-CTRL1", "bad\x07title\x00")
    open_db().add_sheet(key_of(sheet), {})  # made before titles were checked, or by hand
    c = TestClient(pupils_app, base_url="http://127.0.0.1:8000")
    r = c.get("/api/worksheets/WS-CTRL1/pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert c.get("/api/worksheets/WS-CTRL1/png").status_code == 200


def test_cli_refuses_a_control_character_title_in_one_line(tmp_path, capsys):
    from digitlab.cli import main

    out = tmp_path / "sheets"
    out.mkdir()
    assert main(["worksheet", "create", "--title", "a\x07b", "--out", str(out / "s.pdf"), "--no-db"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "title" in err and "Traceback" not in err
    assert list(out.iterdir()) == []  # no stray PNG


def test_a_worker_that_dies_mid_request_is_a_503():
    import asyncio
    import os

    from digitlab.server.handlers import ApiError
    from digitlab.server.workers import HeavyPool

    pool = HeavyPool(workers=1, queue_size=0, timeout=20, deadline=60, warm=False)
    try:
        with pytest.raises(ApiError) as dead:
            asyncio.run(pool.run(os._exit, 3))  # the worker process ends while it has the request
        assert dead.value.status == 503 and dead.value.headers["Retry-After"]
        assert asyncio.run(pool.run(abs, -4)) == 4  # and a fresh worker takes the next one
    finally:
        pool.close()


# -- connections: idle or slow ones cannot shut the others out ------------------------------------------------
@pytest.fixture(scope="module")
def served():
    import os
    import subprocess

    from helpers import start_server

    env = {**os.environ, "DIGITLAB_HEADER_TIMEOUT": "1", "DIGITLAB_BODY_TIMEOUT": "1", "DIGITLAB_HEAVY_WORKERS": "1"}
    for name in _ACCESS_ENV:
        env.pop(name, None)
    proc, url = start_server(env=env)
    yield url
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _connect(url):
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


def _closed_within(sock, seconds: float) -> bytes:
    """What the server sends before it closes the connection; fails if it is still open after ``seconds``."""
    import socket
    import time

    sock.settimeout(seconds)
    got, t0 = b"", time.monotonic()
    try:
        while True:
            part = sock.recv(65536)
            if not part:
                return got
            got += part
    except socket.timeout:
        pytest.fail(f"connection still open after {time.monotonic() - t0:.1f} s; got {got[:200]!r}")


def test_idle_connections_do_not_shut_others_out(served):
    import urllib.request

    socks = [_connect(served) for _ in range(300)]  # more than the connection cap, none sending anything
    try:
        r = urllib.request.urlopen(served + "/api/health", timeout=5)
        assert r.status == 200
    finally:
        for s in socks:
            s.close()


def test_a_silent_or_trickling_connection_is_closed(served):
    silent = _connect(served)
    _closed_within(silent, 4)  # nothing sent: closed after the header timeout (1 s here)
    trickle = _connect(served)
    trickle.sendall(b"GET /api/health HTTP/1.1\r\n")  # a head that never ends
    _closed_within(trickle, 4)


def test_a_body_shorter_than_its_content_length_is_a_408(served):
    s = _connect(served)
    s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{\"image\": \"")
    got = _closed_within(s, 5)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]


# -- pupils' data at rest, and the batches ----------------------------------------------------------------------
def test_the_database_is_private_to_its_owner(tmp_path):
    import os
    import stat

    from digitlab.storage import open_db

    db = open_db(tmp_path / "new" / "class.db")
    db.add_sheet({"sheet_id": "WS-1", "title": "T"}, {})
    for p in [db.path, *db.path.parent.glob("class.db-*")]:
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o077 == 0, (p, oct(os.stat(p).st_mode))


def test_class_csv_cells_cannot_be_formulas(tmp_path):
    import csv

    from digitlab.worksheets.report import write_csv

    evil = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2", "@SUM(A1)", "\tTAB", "\rCR", "Ann"]
    rep = {"pupils": [{"grading_id": i, "pupil": name, "sheet_id": "WS-1", "score": 1, "total": 2, "percent": 50.0,
                       "unsure": 0, "blank": 0, "time": "t", "file": name + ".jpg"} for i, name in enumerate(evil)]}
    write_csv(rep, tmp_path / "c.csv")
    rows = list(csv.reader((tmp_path / "c.csv").open(newline="")))[1:]
    for row, name in zip(rows, evil):
        for cell in (row[1], row[-1]):
            assert not cell[:1] in ("=", "+", "-", "@", "\t", "\r"), cell
        assert row[1] == (name if name == "Ann" else "'" + name)


def test_sheet_pictures_are_drawn_off_the_event_loop(pupils_app, monkeypatch):
    import asyncio

    from digitlab.worksheets import layout

    on_loop = []

    def spy(fn):
        def wrapped(*a, **kw):
            try:
                asyncio.get_running_loop()
                on_loop.append(fn.__name__)
            except RuntimeError:
                pass
            return fn(*a, **kw)
        return wrapped

    for name in ("redraw", "to_pdf", "to_raster"):
        monkeypatch.setattr(layout, name, spy(getattr(layout, name)))
    c = TestClient(pupils_app, base_url="http://127.0.0.1:8000")
    sid = c.post("/api/worksheets", json={"problems": 4, "seed": 2}).json()["sheet_id"]
    assert c.get(f"/api/worksheets/{sid}/pdf").status_code == 200
    assert c.get(f"/api/worksheets/{sid}/png").status_code == 200
    assert on_loop == []


def test_a_read_only_database_is_one_line(tmp_path, monkeypatch, capsys):
    import sqlite3

    from digitlab.cli import main
    from digitlab.storage import db as dbmod

    path = tmp_path / "class.db"
    dbmod.open_db(path).add_grading({"file": "p.jpg", "sheet_id": "WS-1", "score": 0, "total": 0, "problems": []},
                                    key={"sheet_id": "WS-1", "title": "T"})
    real = sqlite3.connect

    def read_only(p, *a, **kw):  # as on a read-only mount (chmod does not stop root, who runs CI here)
        kw.pop("isolation_level", None)
        return real(f"file:{p}?mode=ro", *a, uri=True, isolation_level=None, **kw)

    monkeypatch.setattr(dbmod.sqlite3, "connect", read_only)
    assert main(["worksheet", "rename", "1", "Ann", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "read-only" in err and "Traceback" not in err


def test_a_grading_batch_reports_every_failure_and_finishes(tmp_path, monkeypatch, capsys):
    from digitlab.cli import main
    from digitlab.predictor import Predictor
    from digitlab.reader import read as reader
    from digitlab.worksheets import grade

    class Graded:
        def __init__(self, name):
            self.result = {"file": name, "sheet_id": "WS-1", "score": 1, "total": 1, "problems": []}
            self.name_png, self.crops, self.key = None, {}, {"sheet_id": "WS-1", "title": "T"}

    monkeypatch.setattr(Predictor, "grade", lambda self, photo, **kw: Graded(photo))
    monkeypatch.setattr(grade, "annotate", lambda g, **kw: b"png")
    monkeypatch.setattr(reader, "get_line_reader", lambda *a, **kw: None)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (photos / name).write_bytes(b"x")
    out = tmp_path / "marked"
    out.write_text("a file, not a folder")  # the marked photos cannot be written
    db = tmp_path / "class.db"
    code = main(["worksheet", "grade", str(photos), "--annotate", str(out), "--db", str(db)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert [n for n in ("a.jpg", "b.jpg", "c.jpg") if n in err] == ["a.jpg", "b.jpg", "c.jpg"], err
    from digitlab.storage import open_db

    assert len(open_db(db).gradings()) == 3  # every photo graded and stored, none skipped


def test_grading_decodes_at_most_the_documented_pixels():
    import struct
    import time
    import zlib

    from digitlab.server.limits import MAX_PHOTO_PIXELS
    from digitlab.predictor import grade_photo

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    w, h = 8000, 7000  # 56 MP: under the 8192 px a side the decoder allows, over the grading limit
    assert w * h > MAX_PHOTO_PIXELS
    raw = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 100_000)) + chunk(b"IEND", b""))
    for _ in range(2):  # the first call also imports the reader
        t0 = time.perf_counter()
        with pytest.raises(ImageError, match="too many pixels"):
            grade_photo(raw, name="huge.png", key={"sheet_id": "WS-1", "problems": []})
    assert time.perf_counter() - t0 < 0.5  # refused from the header, nothing decoded
