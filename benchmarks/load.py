"""Load test of the web API on loopback: bounded request count, stops by itself.

    python benchmarks/load.py                                   # 2,000 requests, 16 clients, then mixed runs
    python benchmarks/load.py --requests 500 --concurrency 1 --no-mixed --no-heavy   # single-client latency
    python benchmarks/load.py --only-heavy                      # just the heavy/light run

Starts `digitlab serve` on a free 127.0.0.1 port (or uses --url), sends a drawn digit (a 280x280
canvas PNG as base64 JSON, like the page does) to /api/predict, and reports throughput and latency
percentiles. The mixed run sends 10% bad inputs and checks each bad one gets its 4xx and each good
one its 200. The heavy run keeps 4 page checks going at once (`/api/check`, multipart, alternating a
4000x4000 PNG of dense small dots, which must be refused with a 422, and a 3800x2660 photo of a
worksheet, which must be read: 200) while 4 clients send predictions: every prediction must be a
200, and it reports their latency beside that of the checks. Exits 1 on any wrong status.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image, ImageDraw


def dot_page(side: int = 4000, step: int = 16, dot: int = 3) -> bytes:
    """A page covered in small dots (squared paper looks much like it): a 28 KB PNG, 62,500 marks."""
    yy, xx = np.ogrid[:side, :side]
    buf = io.BytesIO()
    Image.fromarray(np.where((yy % step < dot) & (xx % step < dot), 0, 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def big_worksheet() -> bytes:
    """examples/homework.jpg (4 handwritten sums) enlarged 7x, as a phone photo would be: 3801x2660 JPEG."""
    img = Image.open(Path(__file__).resolve().parents[1] / "examples" / "homework.jpg")
    buf = io.BytesIO()
    img.resize((img.width * 7, img.height * 7), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def multipart(raw: bytes, name: str, ctype: str) -> tuple[bytes, str]:
    boundary = "digitlab-load-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n").encode() + raw + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def heavy_run(url: str, n_light: int, light_clients: int = 4, heavy_clients: int = 4) -> dict:
    """Predictions while ``heavy_clients`` page checks run at once, back to back."""
    u = urlparse(url)
    pages = [(multipart(dot_page(), "dots.png", "image/png"), 422), (multipart(big_worksheet(), "sheet.jpg", "image/jpeg"), 200)]
    stop = threading.Event()
    heavy: list[tuple[float, object, int]] = []

    def check(conn, i: int) -> tuple[float, object, int]:
        (body, ctype), expected = pages[i % len(pages)]
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/api/check", body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            status = f"error: {exc}"
        return time.perf_counter() - t0, status, expected

    def checker(k: int) -> None:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        i = k
        while not stop.is_set():
            heavy.append(check(conn, i))
            if isinstance(heavy[-1][1], str):
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            i += 1

    warm = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    for i in range(len(pages)):  # the worker process has started and read each kind of page once
        check(warm, i)

    threads = [threading.Thread(target=checker, args=(k,)) for k in range(heavy_clients)]
    for t in threads:
        t.start()
    time.sleep(2.0)  # the checks are under way
    light = run(url, n_light, light_clients)
    stop.set()
    for t in threads:
        t.join(60)
    lat = np.array([h[0] for h in heavy])
    light.update({
        "heavy_clients": heavy_clients, "checks": len(heavy),
        "checks_by_status": {s: sum(1 for h in heavy if str(h[1]) == s) for s in sorted({str(h[1]) for h in heavy})},
        "checks_wrong_status": sum(1 for h in heavy if h[1] != h[2]),
        "check_p50_s": round(float(np.percentile(lat, 50)), 2), "check_max_s": round(float(lat.max()), 2),
    })
    return light


def drawn_seven() -> bytes:
    img = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(img).line([(70, 60), (210, 60), (120, 240)], fill=0, width=18, joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


BAD = [  # (body, expected status)
    (b'{"image": "!!!"}', 422),
    (b'{"pixels": [[0, 1]]}', 422),
    (b'{"image": "' + base64.b64encode(b"not an image") + b'"}', 422),
    (b'{"nope', 422),
    (b'{"pixels": ' + json.dumps([[999] * 28] * 28).encode() + b"}", 422),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "digitlab", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/api/health")
            if c.getresponse().status == 200:
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def run(url: str, n: int, concurrency: int, bad_every: int = 0) -> dict:
    u = urlparse(url)
    good = json.dumps({"image": base64.b64encode(drawn_seven()).decode()}).encode()
    plan = [(BAD[(i // bad_every) % len(BAD)] if bad_every and i % bad_every == 0 else (good, 200)) for i in range(n)]

    def worker(indices):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        out = []
        for i in indices:
            body, expected = plan[i]
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                ok_body = status != 200 or json.loads(data).get("digit") == 7
            except (OSError, http.client.HTTPException) as exc:
                status, ok_body = f"error: {exc}", False
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            out.append((time.perf_counter() - t0, status, expected, ok_body))
        return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = [r for chunk in pool.map(worker, [range(k, n, concurrency) for k in range(concurrency)]) for r in chunk]
    wall = time.perf_counter() - t0
    lat = np.array([r[0] for r in results]) * 1000
    return {
        "requests": n, "concurrency": concurrency, "bad_inputs": sum(1 for p in plan if p[1] != 200),
        "seconds": round(wall, 2), "throughput_rps": round(n / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "wrong_status": sum(1 for r in results if r[1] != r[2]),
        "wrong_answers": sum(1 for r in results if not r[3]),
        "transport_errors": sum(1 for r in results if isinstance(r[1], str)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an already running server (default: start one on loopback)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--no-mixed", action="store_true", help="skip the run with 10%% bad inputs")
    ap.add_argument("--no-heavy", action="store_true", help="skip the run with 4 page checks at once")
    ap.add_argument("--only-heavy", action="store_true", help="only the run with 4 page checks at once")
    ap.add_argument("--heavy-requests", type=int, default=1000, help="predictions sent during the heavy run")
    ap.add_argument("--json", default="benchmarks/results/load.json")
    args = ap.parse_args()
    host = urlparse(args.url).hostname if args.url else "127.0.0.1"
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise SystemExit("load tests only target loopback addresses")
    proc, url = (None, args.url) if args.url else start_server()
    try:
        run(url, 50, 4)  # warm-up
        runs = {}
        if not args.only_heavy:
            runs["clean"] = run(url, args.requests, args.concurrency)
            if not args.no_mixed:
                runs["mixed_10pct_bad"] = run(url, args.requests, args.concurrency, bad_every=10)
        if not args.no_heavy:
            runs["predict_during_4_checks"] = heavy_run(url, args.heavy_requests)
    finally:
        if proc:
            proc.terminate()
            proc.wait(15)
    print(f"{'run':18} {'req':>5} {'conc':>4} {'rps':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'bad':>4} {'wrong':>5} {'errors':>6}")
    for name, r in runs.items():
        print(f"{name:18} {r['requests']:5d} {r['concurrency']:4d} {r['throughput_rps']:7.1f} {r['p50_ms']:7.2f} "
              f"{r['p95_ms']:7.2f} {r['p99_ms']:7.2f} {r['bad_inputs']:4d} {r['wrong_status'] + r['wrong_answers']:5d} "
              f"{r['transport_errors']:6d}")
    if "predict_during_4_checks" in runs:
        r = runs["predict_during_4_checks"]
        print(f"page checks during that run: {r['checks']} ({r['checks_by_status']}), "
              f"median {r['check_p50_s']} s, slowest {r['check_max_s']} s, wrong status {r['checks_wrong_status']}")
    result = {"runs": runs, "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "load_average_at_end": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version()}
    print(f"{os.cpu_count()} CPUs; load average (1/5/15 min) at the end: {result['load_average_at_end']}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    if any(r["wrong_status"] or r["wrong_answers"] or r["transport_errors"] or r.get("checks_wrong_status")
           for r in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
