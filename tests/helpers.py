"""Shared helpers for tests that start real processes on loopback."""

import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(**popen_kw) -> tuple[subprocess.Popen, str]:
    """`digitlab serve` on a free loopback port, returned once /api/health answers."""
    port = free_port()
    popen_kw.setdefault("stdout", subprocess.DEVNULL)
    popen_kw.setdefault("stderr", subprocess.DEVNULL)  # an unread pipe could fill with access logs
    proc = subprocess.Popen([sys.executable, "-m", "digitlab", "serve", "--port", str(port)], **popen_kw)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not answer /api/health within 30 s")
