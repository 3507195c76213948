"""Issue 7: hostile and odd input everywhere, property tests, and safe model/cache files.

Issue 16: no request can starve the service (bounded work, killable heavy workers, fairness)."""

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from digitlab.errors import ImageError
from digitlab.preprocess import NoDigitFound
from digitlab.segment import segment_ink
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
    from digitlab.preprocess import preprocess_digit

    try:
        preprocess_digit(raw)
    except ImageError:
        pass


def test_unwritable_cache_still_loads(tmp_path, monkeypatch):
    """A cache that cannot be written (read-only home, full disk) costs speed, not the load."""
    from digitlab import data

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


# -- Issue 16: no request can starve the service --------------------------------------------------
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

    from digitlab.server import ApiError, HeavyPool

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
    from digitlab.server import MAX_MARKS, PAGE_SIDE, count_marks, load_grey

    rng = np.random.default_rng(3)
    raw, truth, _ = pagegen.notebook_photo(GlyphBank.load("heldout", max_per_digit=20), rng, out_side=4000)
    marks = count_marks(load_grey(raw, PAGE_SIDE)[1], MAX_MARKS)
    assert 300 < marks < MAX_MARKS / 3
    assert client.app.state.heavy.ready(120)
    r = client.post("/api/check", files={"file": ("book.jpg", raw, "image/jpeg")})
    assert r.status_code == 200, r.text
    assert len(r.json()["lines"]) >= len(truth) // 2
