"""Where the work runs, split by cost so that no request can starve the others.

- light work (``/api/predict``, ``/api/visualize``, ``/api/models``) runs in this process in a small
  bounded thread pool (``run_bounded``); images are downscaled before preprocessing, so its cost is
  bounded;
- heavy work (``/api/check``, ``/api/read``, worksheet grading) runs in separate worker processes
  (``HeavyPool``) at lower priority with one thread each, behind a bounded queue (503 when full). A
  request past its deadline gets a 504 and its worker process is killed and replaced, so the work
  stops there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import DigitlabError
from .handlers import ApiError
from .inputs import decode_base64
from .schemas import request_examples
from .work import check_work, read_work

log = logging.getLogger("digitlab")


TIMEOUT_S = float(os.environ.get("DIGITLAB_TIMEOUT", 20))
STARTUP_TIMEOUT_S = 120.0  # a heavy worker's start-up (imports, models), not counted in a request's deadline
STARTUP_WAIT_S = 60.0  # how much longer a request waits for a pool whose workers are still starting
_POOL = ThreadPoolExecutor(max_workers=int(os.environ.get("DIGITLAB_WORKERS", 2)), thread_name_prefix="infer")
_QUEUE = threading.BoundedSemaphore(int(os.environ.get("DIGITLAB_QUEUE", 64)))


async def run_bounded(fn, *args):
    """Run light blocking work in the thread pool; refuse when too many wait, time out when stuck."""
    if not _QUEUE.acquire(blocking=False):
        raise ApiError(503, "server busy, try again", {"Retry-After": "1"})
    try:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.run_in_executor(_POOL, fn, *args), TIMEOUT_S)
    except asyncio.TimeoutError:
        raise ApiError(504, f"inference took longer than {TIMEOUT_S:.0f} s") from None
    finally:
        _QUEUE.release()


def _heavy_worker(conn, warm: bool = True) -> None:
    """A heavy worker process: one job at a time from ``conn``, answered with ("ok"|"err", payload)."""
    with contextlib.suppress(OSError):
        os.nice(int(os.environ.get("DIGITLAB_HEAVY_NICE", 3)))  # predictions first when cores are short
    with contextlib.suppress(Exception):
        import cv2
        import torch

        torch.set_num_threads(1)
        cv2.setNumThreads(1)
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    if warm:  # load the models and run each job once now, rather than in the first requests
        examples = request_examples()
        for job, path in ((check_work, "/api/check"), (read_work, "/api/read")):
            with contextlib.suppress(Exception):
                job(decode_base64(examples[path]["image"]))
    try:
        conn.send(("ready", os.getpid()))  # the deadline of the first job does not count start-up
    except (EOFError, OSError):
        return
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        try:
            answer = ("ok", fn(*args))
        except DigitlabError as exc:
            answer = ("err", exc)
        except Exception as exc:  # a bug: logged here, a plain 500 there
            log.exception("heavy worker: unexpected error")
            answer = ("err", RuntimeError(f"{type(exc).__name__}: {exc}"))
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an answer that cannot be pickled
            conn.send(("err", RuntimeError(f"cannot send the answer: {exc}")))


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_hidden():
    """Workers need nothing from ``__main__`` (their code is in digitlab): keep multiprocessing
    from re-running the main script in them, which breaks scripts without an ``if __name__`` guard."""
    main = sys.modules.get("__main__")
    with _MAIN_LOCK:
        saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
        try:
            for k in saved:
                main.__dict__[k] = None
            yield
        finally:
            if saved:
                main.__dict__.update(saved)


class _Worker:
    def __init__(self, ctx, warm: bool) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_heavy_worker, args=(child, warm), daemon=True, name="digitlab-heavy")
        with _main_hidden():
            self.process.start()
        child.close()
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        """Wait for the worker's start-up (imports, models) to finish; EOFError if it does not."""
        if not self.ready:
            if not self.conn.poll(timeout):
                raise EOFError("heavy worker did not start")
            self.conn.recv()
            self.ready = True

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
            self.process.join(5)
        with contextlib.suppress(Exception):
            self.conn.close()


def _context():
    method = os.environ.get("DIGITLAB_START_METHOD", "forkserver")
    if method not in multiprocessing.get_all_start_methods():
        method = "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":  # workers fork from a server that has already imported these
        ctx.set_forkserver_preload(["digitlab.server.workers", "digitlab.digits.preprocess", "digitlab.digits.recognize", "torch", "cv2"])
    return ctx


class HeavyPool:
    """Worker processes for work whose cost depends on the image: killed and replaced past a deadline.

    ``workers`` processes (started in the background: imports, models, one job of each kind); at
    most ``queue_size`` more requests wait, beyond that 503 at once. Every request is answered
    within ``deadline`` s: it waits for a worker while at least ``min(timeout, 4)`` s would be left
    to run it (else 503, "busy"), then runs at most ``timeout`` s and within the deadline (else 504:
    the worker process is killed, so the work really stops, and a fresh one is started).
    """

    MIN_RUN_S = 4.0

    def __init__(self, workers: int = 1, queue_size: int = 8, timeout: float = 10.0, deadline: float = 14.0,
                 warm: bool = True) -> None:
        self.size, self.timeout, self.deadline, self.warm = max(1, workers), timeout, max(deadline, 0.1), warm
        self.wait = max(0.0, self.deadline - min(timeout, self.MIN_RUN_S))
        self._admit = threading.BoundedSemaphore(self.size + queue_size)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._started = self._closed = False
        self._threads = ThreadPoolExecutor(self.size + queue_size, thread_name_prefix="heavy-wait")
        self.killed = 0  # workers killed at their deadline (or found dead)
        self._starting = 0  # workers between their launch and their "ready"
        self._ctx = None

    def _add_worker(self) -> None:
        """Start a worker and, once it is ready, offer it to the waiting requests (in a thread)."""
        with self._lock:
            if self._closed:
                return
            if self._ctx is None:
                self._ctx = _context()
            try:
                w = _Worker(self._ctx, self.warm)
            except Exception:
                log.exception("cannot start a heavy worker")
                return
            self._all.add(w)
            self._starting += 1
        try:
            w.wait_ready(STARTUP_TIMEOUT_S)
        except (EOFError, OSError):
            log.error("heavy worker %s did not start", w.process.pid)
            self._retire(w)
            return
        finally:
            with self._lock:
                self._starting -= 1
        self._idle.put(w)

    def _retire(self, w: _Worker) -> None:
        w.kill()
        with self._lock:
            self._all.discard(w)

    def start(self) -> None:
        """Start the workers in the background (returns at once; idempotent)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        for _ in range(self.size):
            threading.Thread(target=self._add_worker, name="heavy-start", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
        for w in workers:
            self._retire(w)
        self._threads.shutdown(wait=False, cancel_futures=True)

    def ready(self, timeout: float = STARTUP_TIMEOUT_S) -> bool:
        """Wait until every worker has started and is idle (for tests and benchmarks)."""
        self.start()
        end = time.monotonic() + timeout
        while self._idle.qsize() < self.size:
            if time.monotonic() > end:
                return False
            time.sleep(0.05)
        return True

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]

    async def run(self, fn, *args):
        """``fn(*args)`` in a worker process (``fn`` must be importable), answered asynchronously."""
        self.start()
        if not self._admit.acquire(blocking=False):
            raise ApiError(503, "server busy with other page checks, try again in a few seconds", {"Retry-After": "5"})
        try:
            future = asyncio.get_running_loop().run_in_executor(self._threads, self._call, fn, args)
        except BaseException:
            self._admit.release()
            raise
        status, payload = await future
        if status == "ok":
            return payload
        raise payload

    def _call(self, fn, args):
        t0 = time.monotonic()
        try:
            while True:
                # A worker that is still starting (the first requests after launch, or after a kill)
                # is not a busy server: its start-up does not count against the wait.
                budget = self.wait + (STARTUP_WAIT_S if self._starting else 0.0)
                try:
                    w = self._idle.get(timeout=min(0.5, max(0.0, budget - (time.monotonic() - t0))))
                except queue.Empty:
                    if time.monotonic() - t0 < budget:
                        continue
                    return "err", ApiError(503, "server busy with other page checks, try again in a few seconds",
                                           {"Retry-After": "5"})
                if w.process.is_alive():
                    break
                log.error("heavy worker %s died while idle", w.process.pid)  # killed from outside (OOM)
                self.killed += 1
                self._retire(w)
                threading.Thread(target=self._add_worker, name="heavy-start", daemon=True).start()
            limit = max(0.0, min(self.timeout, self.deadline - (time.monotonic() - t0)))
            healthy = False
            try:
                w.conn.send((fn, args))
                if not w.conn.poll(limit):
                    return "err", ApiError(504, f"stopped after {limit:.1f} s: the image is too complex to read "
                                                "in time; send a smaller, cleaner picture of the written lines")
                answer = w.conn.recv()
                healthy = True
                return answer
            except (EOFError, OSError):  # killed from outside (the OOM killer): the request may be retried
                log.error("heavy worker %s died", w.process.pid)
                return "err", ApiError(503, "the worker reading this image stopped; try again in a few seconds",
                                       {"Retry-After": "5"})
            finally:
                if healthy:
                    self._idle.put(w)
                else:
                    self.killed += 1
                    self._retire(w)
                    threading.Thread(target=self._add_worker, name="heavy-start", daemon=True).start()
        finally:
            self._admit.release()
