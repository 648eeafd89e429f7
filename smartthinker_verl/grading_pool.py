"""A pool of math-verify processes with a wall-clock limit per answer, safe to call from any thread.

Why processes: math-verify bounds parsing and verification with SIGALRM, which works only in a process's main
thread; verl's reward loop calls scorers from worker threads. Each answer is graded in the main thread of a worker
of a ``pebble`` process pool, whose per-task timeout (counted from the moment a worker takes the answer, not while
it waits in the queue) kills and replaces a worker that runs past the limit.

How workers start: from multiprocessing's forkserver (a fresh interpreter started by exec, forked while
single-threaded), never by forking the caller, which in verl is a multi-threaded Ray actor. The forkserver preloads
this module, so math-verify is imported once, and its children skip the re-import of the caller's ``__main__`` that
multiprocessing performs for spawn and forkserver children (:func:`_prepare_without_main`): an unguarded script
would run again in every grader, and a Ray worker's or verl's entry module would be imported in each.

What the caller of :meth:`GradingPool.verify` sees for each fault:

- answer past the limit: ``(False, timed_out=True)``; pebble kills the worker and starts another;
- worker killed mid-answer (OOM killer, a signal): the answer is graded again on a fresh worker, up to
  :data:`MAX_GRADINGS` times, then ``(False, True)``;
- worker died while idle: pebble replaces it, or declares the whole pool broken (it does when no task is running);
  then the pool is rebuilt and every answer still waiting is submitted again: nothing is scored 0 for it;
- pebble makes no progress on a running answer long after its limit (a worker killed while holding the task
  channel's lock blocks pebble's timeout): the pool is rebuilt and the answer is reported timed out;
- a worker cannot start: :class:`SetupError` naming the fix (a broken environment never passes as "every
  answer wrong"); a ground truth math-verify cannot parse: :class:`DataError` (a data error).
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
from multiprocessing import spawn
from typing import Any

from pebble import ProcessExpired, ProcessPool
from pebble.pool.process import WORKERS_NAME

from smartthinker_verl.errors import ConfigError, DataError, SetupError

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
#: Seconds past the limit after which a running answer counts as stuck (pebble needs about 3 s to kill a worker).
STUCK_GRACE_S = 30.0
_POLL_S = 0.5


def positive_int(value: Any, name: str) -> int:
    """``value`` as an integer >= 1 (ints or digit strings), else a :class:`ConfigError` naming ``name``."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r}: set it to a positive integer (number of grading processes)")
    return value


def positive_seconds(value: Any, name: str) -> float:
    """``value`` as a number of seconds > 0 (numbers or numeric strings), else a :class:`ConfigError`."""
    try:
        seconds = float(value) if not isinstance(value, bool) else -1.0
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{name}={value!r}: set it to a positive number of seconds (wall-clock limit per answer)")
    return seconds


def default_num_processes() -> int:
    """Worker processes per pool: ``SMARTTHINKER_GRADER_PROCESSES`` or min(4, CPU count); read at each call."""
    configured = os.environ.get("SMARTTHINKER_GRADER_PROCESSES")
    if configured:
        return positive_int(configured, "SMARTTHINKER_GRADER_PROCESSES")
    return max(1, min(4, os.cpu_count() or 1))


def default_time_limit_s() -> float:
    """Seconds per answer: ``SMARTTHINKER_GRADE_TIMEOUT_S`` or :data:`DEFAULT_TIME_LIMIT_S`; read at each call."""
    configured = os.environ.get("SMARTTHINKER_GRADE_TIMEOUT_S")
    if configured:
        return positive_seconds(configured, "SMARTTHINKER_GRADE_TIMEOUT_S")
    return DEFAULT_TIME_LIMIT_S


# ----------------------------------------------------------------------------------------------------------------
# Worker side (runs in the main thread of a pool worker).


def verify_answer(answer: str, ground_truth: str) -> bool:
    """math-verify in the current (main) thread: parse gold and answer, then ``verify(gold, answer)``."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    extraction = [LatexExtractionConfig(), ExprExtractionConfig()]
    gold = parse(f"\\boxed{{{ground_truth}}}", extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not gold:
        gold = parse(ground_truth, extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not gold:
        raise DataError(f"ground truth {ground_truth!r} cannot be parsed by math-verify; fix the dataset row")
    predicted = parse(answer, extraction_config=extraction, parsing_timeout=MATH_VERIFY_TIMEOUT_S)
    if not predicted:
        return False
    return bool(verify(gold, predicted, timeout_seconds=MATH_VERIFY_TIMEOUT_S))


def grade_in_worker(answer: str, ground_truth: str) -> tuple[bool, bool]:
    """``(correct, timed_out)`` for one answer; only :class:`DataError` leaves the worker."""
    try:
        return verify_answer(answer, ground_truth), False
    except DataError:
        raise
    except BaseException as error:  # math-verify's TimeoutException derives from BaseException
        logger.debug("math-verify raised %s on an answer (%s); it scores 0", type(error).__name__, error)
        return False, "Timeout" in type(error).__name__


def worker_identity() -> dict[str, Any]:
    """Where a task runs: ``pid``, ``ppid`` and whether it is the process's main thread (for tests)."""
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "main_thread": threading.current_thread() is threading.main_thread(),
    }


def _worker_ready() -> bool:
    import math_verify  # noqa: F401  (a broken install fails the pool's start, not an answer)

    return True


def _warm_up() -> None:
    """Grade one answer when a worker starts, off the clock: math-verify's first grading loads its grammars
    (about 0.5 s on a loaded CPU), which would otherwise count against the first answer's limit."""
    try:
        verify_answer("\\boxed{1}", "1")
    except BaseException as error:  # reported by the start-up check, which names the fix
        logger.debug("grading worker warm-up failed: %s: %s", type(error).__name__, error)


_stock_prepare = spawn.prepare


def _prepare_without_main(data: dict[str, Any]) -> None:
    """``multiprocessing.spawn.prepare`` minus the re-import of the parent's ``__main__`` for pebble workers.

    Installed at import, it matters only in the forkserver that preloads this module: ``prepare`` runs in the
    children a forkserver forks, never in the process that imports this module. Pebble's workers run only
    importable functions (ours), so they need nothing from the parent's ``__main__``.
    """
    if data.get("name") == WORKERS_NAME:
        data = {key: value for key, value in data.items() if key not in ("init_main_from_name", "init_main_from_path")}
    _stock_prepare(data)


if getattr(spawn.prepare, "__name__", "") != _prepare_without_main.__name__:
    spawn.prepare = _prepare_without_main


# ----------------------------------------------------------------------------------------------------------------
# Caller side.

_CONTEXT_LOCK = threading.Lock()


def _worker_context() -> Any:
    """multiprocessing's forkserver context, preloading this module (once per process, before the server starts)."""
    with _CONTEXT_LOCK:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context


class GradingPool:
    """``num_processes`` grading workers (started at the first answer); thread-safe.

    Args:
        num_processes: workers; None: :func:`default_num_processes`.
        time_limit_s: wall-clock seconds per answer; None: :func:`default_time_limit_s`.
    """

    def __init__(self, num_processes: int | None = None, time_limit_s: float | None = None) -> None:
        self.num_processes = (
            positive_int(num_processes, "num_processes") if num_processes is not None else default_num_processes()
        )
        self.time_limit_s = (
            positive_seconds(time_limit_s, "time_limit_s") if time_limit_s is not None else default_time_limit_s()
        )
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
        """Drop pool ``generation`` (if still current); the next answer starts a new one."""
        with self._lock:
            if generation != self._generation or self._pool is None:
                return
            old, self._pool = self._pool, None
            self._generation += 1
        logger.warning("grading pool restarted: %s", reason)
        threading.Thread(target=_stop, args=(old,), daemon=True, name="grading-pool-stop").start()

    def verify(self, answer: str, ground_truth: str) -> tuple[bool, bool]:
        """Grade one extracted answer. Returns ``(correct, timed_out)``.

        Raises:
            DataError: math-verify cannot parse the ground truth.
            SetupError: no worker can start.
        """
        expired = 0
        for _ in range(MAX_SUBMISSIONS):
            generation, pool = self._current()
            try:
                future = pool.schedule(grade_in_worker, args=(answer, ground_truth), timeout=self.time_limit_s)
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
    key = (
        positive_int(num_processes, "num_processes") if num_processes is not None else default_num_processes(),
        positive_seconds(time_limit_s, "time_limit_s") if time_limit_s is not None else default_time_limit_s(),
    )
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
