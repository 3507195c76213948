"""The JSON API, including every bad-input case: always a 4xx with {"error": ...}, never a 500."""

import base64
import io
import re
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digitlab.server import create_app


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


def png_bytes(arr, fmt="PNG", **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seven(mnist_test):
    return 255 - np.pad(mnist_test.images[0], 12)  # dark ink on white, a 7


def err(resp, status):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]
    return body["error"]


def test_health_and_models(client):
    assert client.get("/api/health").json()["status"] == "ok"
    models = client.get("/api/models").json()
    cnn = next(m for m in models if m["name"] == "cnn")
    assert cnn["test_accuracy"] >= 0.995


def test_predict_multipart(client, seven):
    r = client.post("/api/predict", files={"file": ("seven.png", png_bytes(seven), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["digit"] == 7 and len(body["probabilities"]) == 10
    assert np.asarray(body["input28"]).shape == (28, 28)


def test_predict_base64_and_pixels(client, seven, mnist_test):
    b64 = "data:image/png;base64," + base64.b64encode(png_bytes(seven)).decode()
    assert client.post("/api/predict", json={"image": b64}).json()["digit"] == 7
    pixels = mnist_test.images[1].tolist()
    r = client.post("/api/predict", json={"pixels": pixels, "compare": True})
    body = r.json()
    assert body["digit"] == int(mnist_test.labels[1])
    assert "cnn" in body["compare"]


def test_predict_refuses_non_digits_like_the_cli(client, mnist_test):
    # A filled square drawn on 28x28 pixels passes the "has ink" check; only the shape/score refuse it.
    square = np.zeros((28, 28), np.uint8)
    square[6:22, 6:22] = 255
    assert "no digit found" in err(client.post("/api/predict", json={"pixels": square.tolist()}), 422)
    grid = np.full((150, 150), 240, np.uint8)
    for v in range(15, 150, 24):
        grid[:, v : v + 3] = 30
        grid[v : v + 3, :] = 30
    r = client.post("/api/predict", files={"file": ("grid.png", png_bytes(grid), "image/png")})
    assert "no digit found" in err(r, 422)
    for i in range(20):  # and real digits from held-out writers still pass
        r = client.post("/api/predict", json={"pixels": mnist_test.images[i].tolist()})
        assert r.status_code == 200 and r.json()["digit"] == int(mnist_test.labels[i]), r.text


def test_read_number(client, mnist_test):
    digits = [mnist_test.images[i] for i in (1, 2, 3)]  # 2, 1, 0
    row = np.concatenate([np.pad(d, 6) for d in digits], axis=1)
    r = client.post("/api/read", files={"file": ("n.png", png_bytes(255 - row), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == "".join(str(mnist_test.labels[i]) for i in (1, 2, 3))
    xs = [d["box"][0] for d in body["digits"]]
    assert xs == sorted(xs)
    # each digit's box covers that digit's ink (a correction is cropped by it), not its neighbours'
    for k, d in enumerate(body["digits"]):
        cell = row[:, 40 * k : 40 * k + 40] > 60
        cols, rows = np.flatnonzero(cell.any(0)) + 40 * k, np.flatnonzero(cell.any(1))
        x0, y0, x1, y1 = d["box"]
        assert x0 <= cols[0] + 2 and x1 >= cols[-1] - 1 and y0 <= rows[0] + 2 and y1 >= rows[-1] - 1, (k, d, cols, rows)
        assert x0 >= 40 * k and x1 <= 40 * k + 41, (k, d)


def _bomb():
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 600000)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("name, raw, status", [
    ("empty.png", b"", 422),
    ("text.png", b"hello world", 422),
    ("fake.png", b"%PDF-1.4 not a png", 422),
    ("bomb.png", None, 422),
    ("big.png", "big", 422),
    ("white.png", "white", 422),
    ("black.png", "black", 422),
    ("tiny.png", "tiny", 422),
])
def test_bad_uploads(client, name, raw, status, seven):
    if raw is None:
        raw = _bomb()
    elif raw == "big":
        raw = png_bytes(np.full((10, 5000), 255, np.uint8))
    elif raw == "white":
        raw = png_bytes(np.full((60, 60), 255, np.uint8))
    elif raw == "black":
        raw = png_bytes(np.zeros((60, 60), np.uint8))
    elif raw == "tiny":
        raw = png_bytes(np.zeros((1, 1), np.uint8))
    msg = err(client.post("/api/predict", files={"file": (name, raw, "image/png")}), status)
    assert len(msg) < 300


def test_truncated_png_and_jpeg(client, seven):
    for fmt in ("PNG", "JPEG"):
        raw = png_bytes(seven, fmt)
        err(client.post("/api/predict", files={"file": ("t", raw[: len(raw) // 2], "image/png")}), 422)


def test_upload_over_5mb_is_413(client):
    raw = b"\x89PNG" + b"\0" * (5 * 1024 * 1024 + 100_000)
    err(client.post("/api/predict", files={"file": ("huge.png", raw, "image/png")}), 413)


@pytest.mark.parametrize("body, status", [
    ({"image": "!!!not base64!!!"}, 422),
    ({"image": base64.b64encode(b"plain text").decode()}, 422),
    ({"pixels": [[0] * 28] * 27}, 422),
    ({"pixels": [[300] * 28] * 28}, 422),
    ({"pixels": [[-1] * 28] * 28}, 422),
    ({"pixels": [["a"] * 28] * 28}, 422),
    ({"pixels": [[0] * 28] * 28}, 422),
    ({}, 422),
    ({"image": 5}, 422),
])
def test_bad_json(client, body, status):
    err(client.post("/api/predict", json=body), status)


def test_not_json_and_wrong_content_type(client):
    err(client.post("/api/predict", content=b"{nope", headers={"content-type": "application/json"}), 422)
    err(client.post("/api/predict", content=b"[1,2]", headers={"content-type": "application/json"}), 422)
    err(client.post("/api/predict", content=b"x", headers={"content-type": "text/plain"}), 415)
    err(client.post("/api/predict", files={"other": ("a", b"b")}), 422)


def test_unknown_model(client, seven):
    msg = err(client.post("/api/predict", json={"pixels": np.pad(np.full((10, 4), 255), ((9, 9), (12, 12))).tolist(),
                                                "model": "nope"}), 404)
    assert "nope" in msg


def test_model_names_only(client, mnist_test):
    for name in ("symbols", "/etc/passwd", "../weights/cnn.dlm"):
        err(client.post("/api/predict", json={"pixels": mnist_test.images[0].tolist(), "model": name}), 404)
    for name in ("linear", "knn", "svm", "mlp", "kmeans"):
        r = client.post("/api/predict", json={"pixels": mnist_test.images[0].tolist(), "model": name})
        assert r.status_code == 200 and r.json()["digit"] == 7 and r.json()["model"] == name


def test_unknown_route_is_json(client):
    err(client.get("/api/nothing"), 404)


def test_visualize(client, seven):
    r = client.post("/api/visualize", files={"file": ("s.png", png_bytes(seven), "image/png")})
    body = r.json()
    assert body["prediction"]["digit"] == 7
    assert any("maps" in layer for layer in body["layers"])
    assert np.asarray(body["saliency"]).shape == (28, 28)


def test_server_keeps_serving_after_bad_input(client, seven):
    for _ in range(3):
        client.post("/api/predict", content=b"garbage", headers={"content-type": "application/json"})
    r = client.post("/api/predict", files={"file": ("seven.png", png_bytes(seven), "image/png")})
    assert r.status_code == 200 and r.json()["digit"] == 7


def test_page_and_docs_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "draw-canvas" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/api/predict"]
    report = client.get("/report")
    assert report.status_code == 200 and "comparative study" in report.text


# -- a typed contract, fuzzed ------------------------------------------------------------------------
MINE = r"^/api/(predict|read|calc|check|visualize|models|health)$"


def test_every_post_declares_its_bodies_and_answers(client):
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def resolve(schema):
        return schemas[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema

    posts = {path: ops["post"] for path, ops in doc["paths"].items() if "post" in ops}
    assert all("requestBody" in op for op in posts.values()), [p for p, op in posts.items() if "requestBody" not in op]
    mine = {path: op for path, op in posts.items() if re.match(MINE, path)}
    assert set(mine) == {"/api/predict", "/api/read", "/api/calc", "/api/check", "/api/visualize"}
    for path, op in mine.items():
        content = op["requestBody"]["content"]
        form = resolve(content["multipart/form-data"]["schema"])
        assert form["properties"]["file"]["format"] == "binary" and "file" in form["required"], path
        assert resolve(content["application/json"]["schema"])["properties"]["image"], path
        assert "example" in content["application/json"], path
        answer = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert resolve(answer)["properties"], path
        for code in ("400", "413", "415", "422", "503", "504"):
            assert op["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    check = schemas["CheckResponse"]
    assert {"file", "skew_degrees", "lines"} <= set(check["required"]) and "sheet_found" not in check["required"]
    line = schemas["CheckLine"]
    assert "status" in line["properties"] and "status" not in line["required"]


def test_documented_examples_work(client):
    doc = client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        if "post" in ops and re.match(MINE, path):
            example = ops["post"]["requestBody"]["content"]["application/json"]["example"]
            r = client.post(path, json=example)
            assert r.status_code == 200, (path, r.text)


def test_check_page_and_its_boxes_in_the_uploaded_pixels(client):
    """A worksheet photo is read; a large one is read downscaled, with boxes in the upload's pixels."""
    from pathlib import Path

    from digitlab.server.limits import PAGE_SIDE
    from digitlab.server.schemas import CheckResponse

    page = Image.open(Path(__file__).resolve().parents[1] / "examples" / "homework.jpg")
    buf = io.BytesIO()
    page.save(buf, "JPEG", quality=95)
    small = client.post("/api/check", files={"file": ("hw.jpg", buf.getvalue(), "image/jpeg")})
    assert small.status_code == 200, small.text
    CheckResponse.model_validate(small.json())
    assert small.json()["lines"]
    k = 7  # 3801x2660: more than PAGE_SIDE a side, so the server reads a downscaled copy
    big_img = page.resize((page.width * k, page.height * k), Image.Resampling.BICUBIC)
    assert max(big_img.size) > PAGE_SIDE
    buf = io.BytesIO()
    big_img.save(buf, "JPEG", quality=90)
    big = client.post("/api/check", files={"file": ("big.jpg", buf.getvalue(), "image/jpeg")})
    assert big.status_code == 200, big.text
    lines = big.json()["lines"]
    assert len(lines) == len(small.json()["lines"])
    for line in lines:
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= big_img.width and 0 <= y0 < y1 <= big_img.height
    # In the upload's pixels, not the working copy's: the lines reach well past PAGE_SIDE.
    assert max(line["bbox"][2] for line in lines) > 1.2 * PAGE_SIDE


def test_calc_works_out_a_photographed_expression(client):
    from pathlib import Path

    from digitlab.server.schemas import CalcResponse

    photo = (Path(__file__).resolve().parents[1] / "examples" / "expression.png").read_bytes()
    r = client.post("/api/calc", files={"file": ("e.png", photo, "image/png")})
    assert r.status_code == 200, r.text
    got = CalcResponse.model_validate(r.json())
    assert (got.expression, got.value, got.status) == ("21*3+41*7-61", 289, "computed")
    w, h = Image.open(io.BytesIO(photo)).size
    x0, y0, x1, y1 = got.bbox
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    blank = io.BytesIO()
    Image.new("L", (200, 80), 255).save(blank, "PNG")
    r = client.post("/api/calc", files={"file": ("blank.png", blank.getvalue(), "image/png")})
    assert r.status_code == 422 and "error" in r.json()


@pytest.fixture(scope="module")
def api_schema():
    import schemathesis

    app = create_app()
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.heavy.close()


def _contract_test():
    """Schemathesis: requests generated from /openapi.json (the documented examples, then edge
    cases and random ones, both content types): no 5xx, every status documented, every answer
    matching its schema. FUZZ_EXAMPLES=200 for a longer run."""
    import os

    import schemathesis
    from hypothesis import HealthCheck, settings
    from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                     status_code_conformance)

    # The digit, number and page endpoints (the worksheet endpoints write to a database).
    @schemathesis.pytest.from_fixture("api_schema").include(path_regex=MINE).parametrize()
    @settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 25)), deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def test_api_contract_fuzzed(case):
        case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                       response_schema_conformance])

    return test_api_contract_fuzzed


test_api_contract_fuzzed = _contract_test()
