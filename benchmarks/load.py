"""Load test of the web API on loopback: bounded request count, stops by itself.

    python benchmarks/load.py                                   # 2,000 requests, 16 clients, then a mixed run
    python benchmarks/load.py --requests 500 --concurrency 1 --no-mixed   # single-client latency

Starts `digitlab serve` on a free 127.0.0.1 port (or uses --url), sends a drawn digit (a 280x280
canvas PNG as base64 JSON, like the page does) to /api/predict, and reports throughput and latency
percentiles. The mixed run sends 10% bad inputs and checks each bad one gets its 4xx and each good
one its 200.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import platform
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image, ImageDraw


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
    ap.add_argument("--json", default="benchmarks/results/load.json")
    args = ap.parse_args()
    host = urlparse(args.url).hostname if args.url else "127.0.0.1"
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise SystemExit("load tests only target loopback addresses")
    proc, url = (None, args.url) if args.url else start_server()
    try:
        run(url, 50, 4)  # warm-up
        runs = {"clean": run(url, args.requests, args.concurrency)}
        if not args.no_mixed:
            runs["mixed_10pct_bad"] = run(url, args.requests, args.concurrency, bad_every=10)
    finally:
        if proc:
            proc.terminate()
            proc.wait(15)
    print(f"{'run':18} {'req':>5} {'conc':>4} {'rps':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'bad':>4} {'wrong':>5} {'errors':>6}")
    for name, r in runs.items():
        print(f"{name:18} {r['requests']:5d} {r['concurrency']:4d} {r['throughput_rps']:7.1f} {r['p50_ms']:7.2f} "
              f"{r['p95_ms']:7.2f} {r['p99_ms']:7.2f} {r['bad_inputs']:4d} {r['wrong_status'] + r['wrong_answers']:5d} "
              f"{r['transport_errors']:6d}")
    result = {"runs": runs, "machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2))
    if any(r["wrong_status"] or r["wrong_answers"] or r["transport_errors"] for r in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
