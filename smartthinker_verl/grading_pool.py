"""A pool of math-verify processes, safe to call from any thread, with a wall-clock limit per answer.

Why processes: math-verify bounds parsing and verification with SIGALRM, which only works in a process's main
thread; verl's reward loop calls scorers from worker threads, where math-verify raises (and a scorer that caught
that would silently grade every answer wrong). Each request therefore runs in the main thread of a worker process.

Workers are plain ``python -m smartthinker_verl.grading_pool`` subprocesses talking over two pipes: no ``fork`` of
a multi-threaded parent (Ray actors are), and no re-import of the caller's ``__main__`` (as ``spawn``/``forkserver``
would do, breaking unguarded scripts). A request borrows one idle worker for its whole duration; a request that
exceeds the limit, or whose worker dies, gets that worker killed and replaced and is reported as timed out. A worker
that cannot even start raises :class:`GradingPoolError`: a broken environment must never pass as "every answer
wrong".
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from smartthinker_verl.errors import SmartThinkerError, UsageError

logger = logging.getLogger(__name__)

#: Seconds math-verify may spend parsing, and separately verifying, one answer (its own SIGALRM timeouts).
MATH_VERIFY_TIMEOUT_S = 5
#: Wall-clock limit for one answer; past it the worker is killed and replaced, and the answer scores 0.
DEFAULT_TIME_LIMIT_S = float(os.environ.get("SMARTTHINKER_GRADE_TIMEOUT_S", 3 * MATH_VERIFY_TIMEOUT_S))
#: Seconds a new worker may take to start (python + import math_verify).
STARTUP_LIMIT_S = 120.0

_READY = "ready"


class GradingPoolError(SmartThinkerError, RuntimeError):
    """The grading workers cannot run; the message says why and what to do."""


class GroundTruthError(SmartThinkerError, ValueError):
    """math-verify cannot parse a ground truth: a data problem, never scored as a wrong answer."""


def default_num_processes() -> int:
    """Worker processes per pool: ``SMARTTHINKER_GRADER_PROCESSES`` or min(4, CPU count)."""
    configured = os.environ.get("SMARTTHINKER_GRADER_PROCESSES")
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise UsageError(f"SMARTTHINKER_GRADER_PROCESSES={configured!r}: set it to a positive integer")
        return int(configured)
    return max(1, min(4, os.cpu_count() or 1))


# ----------------------------------------------------------------------------------------------------------------
# Worker side: `python -m smartthinker_verl.grading_pool READ_FD WRITE_FD`.


def verify_answer(answer: str, ground_truth: str) -> bool:
    """math-verify in the current (main) thread: parse gold and answer, then ``verify(gold, answer)``."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold = parse(f"\\boxed{{{ground_truth}}}", extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not gold:
        gold = parse(ground_truth, extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not gold:
        raise GroundTruthError(f"ground truth {ground_truth!r} cannot be parsed by math-verify; fix the dataset row")
    predicted = parse(answer, extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not predicted:
        return False
    return bool(verify(gold, predicted, timeout_seconds=MATH_VERIFY_TIMEOUT_S))


def _serve(read_fd: int, write_fd: int) -> None:
    """Answer ``(answer, ground_truth)`` requests with ``("ok", bool)`` or ``(error type, message)``."""
    requests, replies = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    import math_verify  # noqa: F401  (before "ready": a broken install fails the start, not a request)

    replies.send(_READY)
    while True:
        try:
            answer, ground_truth = requests.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", verify_answer(answer, ground_truth))
        except GroundTruthError as error:
            reply = ("ground_truth", str(error))
        except BaseException as error:  # math-verify's TimeoutException derives from BaseException
            reply = (type(error).__name__, str(error))
        replies.send(reply)


# ----------------------------------------------------------------------------------------------------------------
# Parent side.


class _Worker:
    """One grading subprocess and the parent's ends of its two pipes."""

    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "smartthinker_verl.grading_pool", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.requests = Connection(to_child_w, readable=False)
        self.replies = Connection(from_child_r, writable=False)
        try:
            ready = self.replies.poll(STARTUP_LIMIT_S) and self.replies.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise GradingPoolError(
                f"a math-verify worker ({sys.executable} -m smartthinker_verl.grading_pool) did not start; its error "
                "is printed above. Check that math-verify is installed in this interpreter (`pip install -e .`)."
            )

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.requests.close()
        self.replies.close()


class GradingPool:
    """``num_processes`` grading subprocesses (started on demand); thread-safe."""

    def __init__(self, num_processes: int | None = None, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
        self.num_processes = num_processes or default_num_processes()
        self.time_limit_s = time_limit_s
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self._closed = False

    def _borrow(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise GradingPoolError("the grading pool is closed")
            start_one = self._idle.empty() and self._started < self.num_processes
            if start_one:
                self._started += 1
        if not start_one:
            return self._idle.get()
        try:
            worker = _Worker()
        except BaseException:
            with self._lock:
                self._started -= 1
            raise
        with self._lock:
            self._live.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._live.discard(worker)
            self._started -= 1  # the next request starts a replacement

    def verify(self, answer: str, ground_truth: str) -> tuple[bool, bool]:
        """Grade one extracted answer. Returns ``(correct, timed_out)``.

        Raises:
            GroundTruthError: math-verify cannot parse the ground truth.
            GradingPoolError: no worker can start.
        """
        worker = self._borrow()
        try:
            worker.requests.send((answer, ground_truth))
            if not worker.replies.poll(self.time_limit_s):
                logger.warning(
                    "grading took over %.0f s; the answer scores 0 and its worker is replaced (answer starts %r)",
                    self.time_limit_s,
                    answer[:80],
                )
                self._discard(worker)
                return False, True
            status, value = worker.replies.recv()
        except (EOFError, OSError):
            logger.warning("a grading worker died mid-answer; the answer scores 0 and the worker is replaced")
            self._discard(worker)
            return False, True
        self._idle.put(worker)
        if status == "ok":
            return bool(value), False
        if status == "ground_truth":
            raise GroundTruthError(value)
        logger.debug("math-verify raised %s on an answer (%s); it scores 0", status, value)
        return False, "Timeout" in status

    def close(self) -> None:
        with self._lock:
            self._closed = True
            live, self._live = self._live, set()
        for worker in live:
            worker.kill()


_POOL: GradingPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> GradingPool:
    """This process's shared grading pool (created on first use; a forked child gets its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = GradingPool()
            logger.debug("grading pool: up to %d processes", _POOL.num_processes)
        return _POOL


def _forget_pool_after_fork() -> None:
    global _POOL, _POOL_LOCK
    _POOL = None
    _POOL_LOCK = threading.Lock()


def _close_pool() -> None:
    if _POOL is not None:
        _POOL.close()


os.register_at_fork(after_in_child=_forget_pool_after_fork)
atexit.register(_close_pool)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
