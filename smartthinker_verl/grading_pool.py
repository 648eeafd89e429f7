"""A pool of math-verify processes with a wall-clock limit per answer, safe to call from any thread.

math-verify bounds parsing and verification with SIGALRM, which works only in a process's main thread, and verl's
reward loop calls scorers from worker threads: each answer is graded in the main thread of a ``pebble`` worker,
whose per-task timeout (counted from when a worker takes the answer) kills and replaces a worker past the limit.

Workers start from multiprocessing's forkserver, never by forking the caller (in verl a multi-threaded Ray actor).
The forkserver preloads this module, so math-verify is imported once, and its children skip the re-import of the
caller's ``__main__`` (:func:`smartthinker_verl.verl_patches.install_spawn_patch`): an unguarded script would
otherwise run in every grader.

What :meth:`GradingPool.verify` returns for each fault:

- answer past the limit (pebble's, or math-verify's own): ``(False, True)``;
- worker killed mid-answer: graded again on a fresh worker, up to :data:`MAX_GRADINGS` times, then ``(False, True)``;
- worker died while idle, or pebble declared the pool broken: the pool is rebuilt and every waiting answer
  submitted again (none is scored 0 for it);
- no progress on a running answer long after its limit (a worker killed while holding pebble's task-channel lock
  blocks pebble's timeout): the pool is rebuilt and the answer reported timed out;
- a worker cannot start: :class:`SetupError` (a broken environment never passes as "every answer wrong"); a
  ground truth math-verify cannot parse: :class:`DataError`.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import CancelledError, Future, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pebble import ProcessExpired, ProcessPool
from pebble.pool.process import WORKERS_NAME

from smartthinker_verl import verl_patches
from smartthinker_verl.errors import DataError, SetupError
from smartthinker_verl.options import RewardOptions

logger = logging.getLogger(__name__)

#: Seconds math-verify may spend parsing, and separately verifying, one answer (its own SIGALRM timeouts).
MATH_VERIFY_TIMEOUT_S = 5
#: Wall-clock limit for one answer when neither the option nor ``SMARTTHINKER_GRADE_TIMEOUT_S`` sets one.
DEFAULT_TIME_LIMIT_S = 3.0 * MATH_VERIFY_TIMEOUT_S
#: Seconds a new pool may take to start its first worker (forkserver + import math_verify).
STARTUP_LIMIT_S = 120.0
#: Times one answer is graded at most when its worker dies under it.
MAX_GRADINGS = 2
#: Times one answer is submitted at most (pool rebuilds included) before it is scored 0 as timed out.
MAX_SUBMISSIONS = 6
#: Seconds past the limit after which a running answer counts as stuck (pebble needs a few seconds to kill a worker).
STUCK_GRACE_S = 30.0
_POLL_S = 0.5


def default_num_processes() -> int:
    """``SMARTTHINKER_GRADER_PROCESSES`` or min(4, CPU count), read at each call."""
    configured = os.environ.get("SMARTTHINKER_GRADER_PROCESSES")
    if configured:
        return RewardOptions.check_value("grader_processes", configured, "SMARTTHINKER_GRADER_PROCESSES")
    return max(1, min(4, os.cpu_count() or 1))


def default_time_limit_s() -> float:
    """``SMARTTHINKER_GRADE_TIMEOUT_S`` or :data:`DEFAULT_TIME_LIMIT_S`, read at each call."""
    configured = os.environ.get("SMARTTHINKER_GRADE_TIMEOUT_S")
    if configured:
        return RewardOptions.check_value("grade_timeout_s", configured, "SMARTTHINKER_GRADE_TIMEOUT_S")
    return DEFAULT_TIME_LIMIT_S


def pool_settings(options: RewardOptions) -> tuple[int, float]:
    """``(processes, seconds per answer)`` of ``options``, None taking the environment's default."""
    processes, seconds = options.grader_processes, options.grade_timeout_s
    return (
        default_num_processes() if processes is None else processes,
        default_time_limit_s() if seconds is None else seconds,
    )


# Worker side (the main thread of a pool worker).


class _TimeoutNoticer(logging.Handler):
    """math-verify catches its own timeouts, logs them and returns "wrong"; this notices the log record."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        self.seen = self.seen or record.getMessage().startswith("Timeout during")


_MATH_VERIFY_TIMEOUTS = _TimeoutNoticer()


def parse_gold(ground_truth: str) -> list:
    """math-verify's parse of a ground truth as the scorer reads it (boxed first, then as written), in the current
    (main) thread; :class:`DataError` when it yields nothing."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold = parse(f"\\boxed{{{ground_truth}}}", extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not gold:
        gold = parse(ground_truth, extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not gold:
        raise DataError(f"ground truth {ground_truth!r} cannot be parsed by math-verify; fix the dataset row")
    return gold


def verify_answer(answer: str, ground_truth: str) -> bool:
    """math-verify in the current (main) thread: parse gold and answer, then ``verify(gold, answer)``."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    gold = parse_gold(ground_truth)
    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]
    predicted = parse(answer, extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    return bool(predicted) and bool(verify(gold, predicted, timeout_seconds=MATH_VERIFY_TIMEOUT_S))


def grade_in_worker(answer: str, ground_truth: str) -> tuple[bool, bool]:
    """``(correct, timed_out)`` for one answer; only :class:`DataError` leaves the worker."""
    math_verify_logger = logging.getLogger("math_verify")
    if _MATH_VERIFY_TIMEOUTS not in math_verify_logger.handlers:
        math_verify_logger.addHandler(_MATH_VERIFY_TIMEOUTS)
    _MATH_VERIFY_TIMEOUTS.seen = False
    try:
        correct = verify_answer(answer, ground_truth)
    except DataError:
        raise
    except BaseException as error:  # math-verify's TimeoutException derives from BaseException
        logger.debug("math-verify raised %s on an answer (%s); it scores 0", type(error).__name__, error)
        return False, "Timeout" in type(error).__name__
    return correct, _MATH_VERIFY_TIMEOUTS.seen and not correct  # a timeout that cost nothing is not counted


def _worker_ready() -> bool:
    import math_verify  # noqa: F401  (a broken install fails the pool's start, not an answer)

    return True


def _warm_up() -> None:
    """Grade one answer when a worker starts: math-verify's first grading loads its grammars, which would otherwise
    count against the first answer's limit."""
    try:
        verify_answer("\\boxed{1}", "1")
    except BaseException as error:  # the start-up check reports it, naming the fix
        logger.debug("grading worker warm-up failed: %s: %s", type(error).__name__, error)


# Caller side.

_CONTEXT_LOCK = threading.Lock()


def _worker_context() -> Any:
    """multiprocessing's forkserver context, preloading this module (set before the server starts)."""
    with _CONTEXT_LOCK:
        verl_patches.install_spawn_patch(WORKERS_NAME)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context


class GradingPool:
    """``num_processes`` grading workers, started at the first answer; thread-safe. None: the environment's
    defaults (:func:`pool_settings`)."""

    def __init__(self, num_processes: int | None = None, time_limit_s: float | None = None) -> None:
        options = RewardOptions(grader_processes=num_processes, grade_timeout_s=time_limit_s)
        self.num_processes, self.time_limit_s = pool_settings(options)
        self._lock = threading.Lock()
        self._pool: ProcessPool | None = None
        self._generation = 0
        self._closed = False

    def _current(self) -> tuple[int, ProcessPool]:
        with self._lock:
            if self._closed:
                raise SetupError("the grading pool is closed")
            if self._pool is None:
                self._pool = self._start()
            return self._generation, self._pool

    def start(self) -> None:
        """Start the workers now rather than at the first answer; :class:`SetupError` when they cannot."""
        self._current()

    def _start(self) -> ProcessPool:
        pool = ProcessPool(max_workers=self.num_processes, initializer=_warm_up, context=_worker_context())
        try:
            pool.schedule(_worker_ready, timeout=STARTUP_LIMIT_S).result(timeout=STARTUP_LIMIT_S + 10)
        except BaseException as error:
            _stop(pool)
            raise SetupError(
                f"a math-verify grading worker did not start ({type(error).__name__}: {error}). Check that "
                f"math-verify and smartthinker-verl are installed in {sys.executable} (`pip install -e .`)."
            ) from error
        logger.debug("grading pool started: %d processes, %.1f s per answer", self.num_processes, self.time_limit_s)
        return pool

    def _replace(self, generation: int, reason: str) -> None:
        """Drop pool ``generation`` if it is still current; the next answer starts a new one."""
        with self._lock:
            if generation != self._generation or self._pool is None:
                return
            old, self._pool = self._pool, None
            self._generation += 1
        logger.warning("grading pool restarted: %s", reason)
        threading.Thread(target=_stop, args=(old,), daemon=True, name="grading-pool-stop").start()

    def verify(self, answer: str, ground_truth: Any, grader: Any = grade_in_worker) -> tuple[bool, bool]:
        """``(correct, timed_out)`` for one extracted answer: ``grader(answer, ground_truth)`` (an importable
        function returning that pair; default math-verify's :func:`grade_in_worker`) in a worker.

        Raises:
            DataError: math-verify cannot parse the ground truth.
            SetupError: no worker can start.
        """
        expired = 0
        for _ in range(MAX_SUBMISSIONS):
            generation, pool = self._current()
            try:
                future = pool.schedule(grader, args=(answer, ground_truth), timeout=self.time_limit_s)
            except RuntimeError:  # pebble: the pool is broken or stopped
                self._replace(generation, "it stopped accepting answers")
                continue
            outcome = self._wait(future, generation)
            if outcome == "resubmit":
                continue
            if outcome == "expired":
                expired += 1
                if expired < MAX_GRADINGS:
                    logger.warning("a grading worker died mid-answer; grading the answer again on a fresh worker")
                    continue
                logger.warning(
                    "grading workers died %d times on one answer; it scores 0 (starts %r)", expired, answer[:80]
                )
                return False, True
            if outcome == "timeout":
                logger.warning(
                    "grading took over %.0f s; the answer scores 0 and its worker is replaced (answer starts %r)",
                    self.time_limit_s,
                    answer[:80],
                )
                return False, True
            return outcome
        logger.error("an answer could not be graded after %d submissions; it scores 0", MAX_SUBMISSIONS)
        return False, True

    def _wait(self, future: Future, generation: int) -> Any:
        """The answer's ``(correct, timed_out)``, or "timeout" / "expired" / "resubmit"."""
        running_since: float | None = None
        while True:
            done, _ = wait([future], timeout=_POLL_S)
            if done:
                try:
                    return future.result()
                except TimeoutError:
                    return "timeout"
                except ProcessExpired:
                    return "expired"
                except (BrokenProcessPool, CancelledError, OSError) as error:
                    self._replace(generation, f"pebble reported {type(error).__name__}: {error}")
                    return "resubmit"
            if generation != self._generation:  # another answer rebuilt the pool: this one waits on the old
                future.cancel()
                return "resubmit"
            if future.running():
                running_since = running_since or time.monotonic()
                if time.monotonic() - running_since > self.time_limit_s + STUCK_GRACE_S:
                    self._replace(generation, f"an answer ran {STUCK_GRACE_S:.0f} s past its limit")
                    return "timeout"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            _stop(pool)


def _stop(pool: ProcessPool) -> None:
    try:
        pool.stop()
        pool.join(timeout=30)
    except Exception as error:  # a pool that fails to stop must not raise into the reward step
        logger.warning("stopping a grading pool failed: %s: %s", type(error).__name__, error)


_POOLS: dict[tuple[int, float], GradingPool] = {}
_POOLS_LOCK = threading.Lock()


def get_pool(num_processes: int | None = None, time_limit_s: float | None = None) -> GradingPool:
    """This process's shared pool for these settings (None: the environment's defaults), created on first use."""
    key = pool_settings(RewardOptions(grader_processes=num_processes, grade_timeout_s=time_limit_s))
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = GradingPool(*key)
        return _POOLS[key]


def _forget_pools_after_fork() -> None:
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


def _close_pools() -> None:
    for pool in list(_POOLS.values()):
        pool.close()


os.register_at_fork(after_in_child=_forget_pools_after_fork)
atexit.register(_close_pools)
