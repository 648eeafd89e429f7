"""The grading pool under the faults a GPU step meets: slow answers, killed workers, many threads, broken installs.

Every wait here is bounded (``HANG_BOUND_S``) so that a hang fails the test instead of stalling the suite; the
bound is far above the work's duration and is not a performance assertion.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from smartthinker_verl import grading_pool
from smartthinker_verl.errors import ConfigError
from smartthinker_verl.grading_pool import GradingPool

HANG_BOUND_S = 240.0
PATHOLOGICAL = "\\boxed{9^{9^{9^{9^{9}}}}}"  # sympy would compute a tower of powers for ever
ROOT = Path(__file__).resolve().parents[1]


def grade_from_threads(pool: GradingPool, requests: list[tuple[str, str]], threads: int) -> dict[int, tuple]:
    """Grade ``requests`` (taken in order) from ``threads`` daemon threads; returns what came back in time."""
    todo: queue.Queue[tuple[int, str, str]] = queue.Queue()
    for index, (answer, truth) in enumerate(requests):
        todo.put((index, answer, truth))
    results: dict[int, tuple] = {}

    def work() -> None:
        while True:
            try:
                index, answer, truth = todo.get_nowait()
            except queue.Empty:
                return
            results[index] = pool.verify(answer, truth)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + HANG_BOUND_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    return results


def one_worker_pid(pool: GradingPool) -> int:
    """The pid of an idle worker of ``pool`` (a task that reports where it ran)."""
    _generation, pebble_pool = pool._current()
    return pebble_pool.schedule(os.getpid).result(timeout=HANG_BOUND_S)


def kill_and_reap(pid: int) -> None:
    process = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_answers_queued_behind_timed_out_ones_are_all_graded():
    """2 graders, 2 answers past a 1 s limit, then 6 normal answers, from 16 threads: a request must not wait for
    an idle worker that a timeout discarded."""
    pool = GradingPool(num_processes=2, time_limit_s=1.0)
    try:
        requests = [(PATHOLOGICAL, "5")] * 2 + [(f"\\boxed{{{i}}}", str(i)) for i in range(6)]
        results = grade_from_threads(pool, requests, threads=16)
        assert sorted(results) == list(range(8)), f"only {sorted(results)} of 8 answers came back: the pool hangs"
        assert results[0] == results[1] == (False, True)  # past the limit: 0, reported timed out
        assert [results[i] for i in range(2, 8)] == [(True, False)] * 6
    finally:
        pool.close()


def test_math_verifys_own_timeout_counts_as_timed_out(monkeypatch):
    """math-verify catches its SIGALRM timeout and returns "wrong": the statistic must still count it."""
    monkeypatch.setattr(grading_pool, "MATH_VERIFY_TIMEOUT_S", 1)
    assert grading_pool.grade_in_worker(PATHOLOGICAL, "5") == (False, True)
    assert grading_pool.grade_in_worker("\\boxed{5}", "5") == (True, False)  # reset for the next answer


def test_workers_run_in_their_main_thread_and_are_not_forked_from_the_caller():
    pool = GradingPool(num_processes=1)
    try:
        _generation, pebble_pool = pool._current()
        # signal.signal works only in a process's main thread, as math-verify's SIGALRM timeouts do
        pebble_pool.schedule(signal.signal, args=(signal.SIGUSR2, signal.SIG_DFL)).result(timeout=HANG_BOUND_S)
        assert pebble_pool.schedule(os.getppid).result(timeout=HANG_BOUND_S) != os.getpid()  # forked by the forkserver
    finally:
        pool.close()


def test_worker_killed_while_idle_is_replaced_and_the_answer_still_graded():
    pool = GradingPool(num_processes=1)
    try:
        assert pool.verify("\\boxed{2}", "2") == (True, False)
        idle = one_worker_pid(pool)
        kill_and_reap(idle)
        assert pool.verify("\\boxed{2}", "2") == (True, False)  # retried on a new worker, not scored 0
        assert one_worker_pid(pool) != idle
    finally:
        pool.close()


def test_every_worker_killed_while_idle_under_load_loses_no_answer():
    """Kill both idle workers, then grade from many threads at once: pebble declares the pool broken (no task was
    running) and every waiting answer must be submitted again to a rebuilt pool."""
    pool = GradingPool(num_processes=2)
    try:
        assert pool.verify("\\boxed{1}", "1") == (True, False)
        _generation, pebble_pool = pool._current()
        for process in psutil.Process(os.getpid()).children(recursive=True):
            if process.pid in pebble_pool._pool_manager.worker_manager.workers:  # pebble's own map of its workers
                kill_and_reap(process.pid)
        requests = [(f"\\boxed{{{i}}}", str(i if i % 3 else i + 1)) for i in range(24)]
        results = grade_from_threads(pool, requests, threads=8)
        assert sorted(results) == list(range(24))
        assert all(results[i] == ((i % 3 != 0), False) for i in range(24)), results
    finally:
        pool.close()


def test_worker_killed_mid_answer_never_raises_and_the_answer_is_graded_again(caplog):
    pool = GradingPool(num_processes=1, time_limit_s=3.0)
    try:
        busy = one_worker_pid(pool)
        killer = threading.Timer(1.0, kill_and_reap, args=(busy,))  # while the pathological answer runs
        killer.start()
        with caplog.at_level(logging.WARNING, logger="smartthinker_verl.grading_pool"):
            assert pool.verify(PATHOLOGICAL, "5") == (False, True)  # the second grading hits the limit
        killer.join()
        assert any("grading the answer again" in record.getMessage() for record in caplog.records)
        assert pool.verify("\\boxed{5}", "5") == (True, False)
    finally:
        pool.close()


def test_a_stuck_pool_is_rebuilt_and_the_answer_reported_timed_out(monkeypatch):
    """A worker SIGKILLed while it holds pebble's task-channel lock leaves the lock held for ever: pebble can then
    neither hand out tasks nor stop a timed-out worker. Holding that lock from the test reproduces the state."""
    monkeypatch.setattr(grading_pool, "STUCK_GRACE_S", 2.0)
    pool = GradingPool(num_processes=1, time_limit_s=1.0)
    try:
        _generation, pebble_pool = pool._current()
        channel = pebble_pool._pool_manager.worker_manager.workers_channel
        results: dict[int, tuple] = {}
        thread = threading.Thread(target=lambda: results.setdefault(0, pool.verify(PATHOLOGICAL, "5")), daemon=True)
        thread.start()
        deadline = time.monotonic() + HANG_BOUND_S
        while not pebble_pool._pool_manager.task_manager.tasks or not all(
            task.started for task in pebble_pool._pool_manager.task_manager.tasks.values()
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        locks = (channel.mutex.reader_mutex, channel.mutex.writer_mutex)  # pebble drops them when the pool stops
        assert all(lock.acquire(timeout=HANG_BOUND_S) for lock in locks)  # the worker is busy: the locks are free
        try:
            thread.join(HANG_BOUND_S)
        finally:
            for lock in locks:
                lock.release()
        assert results == {0: (False, True)}
        assert pool.verify("\\boxed{5}", "5") == (True, False)  # a new pool serves the next answer
    finally:
        pool.close()


def run_script(code: str, tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=HANG_BOUND_S, env=environment
    )


def test_graders_do_not_run_the_callers_unguarded_main_script(tmp_path):
    """multiprocessing's forkserver and spawn children re-run the parent's __main__; ours must not."""
    done = run_script(
        """
        print("main ran", flush=True)
        from smartthinker_verl.grading_pool import GradingPool

        pool = GradingPool(num_processes=2)
        print(pool.verify("\\\\boxed{5}", "5"), flush=True)
        pool.close()
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["main ran", "(True, False)"]


def test_a_worker_that_cannot_start_raises_naming_the_fix(tmp_path):
    broken = tmp_path / "broken" / "math_verify"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('math_verify is broken here')\n")
    done = run_script(
        """
        from smartthinker_verl.grading_pool import GradingPool
        from smartthinker_verl.errors import SetupError

        try:
            GradingPool(num_processes=1).verify("\\\\boxed{5}", "5")
        except SetupError as error:
            print(error)
        """,
        tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path / "broken"), str(ROOT)])},
    )
    assert done.returncode == 0, done.stderr
    assert "math_verify is broken here" in done.stdout and "pip install -e ." in done.stdout


def test_malformed_settings_in_the_environment_fail_at_use_not_at_import(tmp_path, monkeypatch):
    done = run_script(
        "import smartthinker_verl.plugin, smartthinker_verl.scoring, smartthinker_verl.reward_manager\n",
        tmp_path,
        env={"SMARTTHINKER_GRADER_PROCESSES": "four", "SMARTTHINKER_GRADE_TIMEOUT_S": "-1"},
    )
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("SMARTTHINKER_GRADER_PROCESSES", "four")
    with pytest.raises(ConfigError, match="SMARTTHINKER_GRADER_PROCESSES='four' is not a number"):
        grading_pool.get_pool(time_limit_s=1.0)
    monkeypatch.setenv("SMARTTHINKER_GRADE_TIMEOUT_S", "-1")
    with pytest.raises(ConfigError, match="SMARTTHINKER_GRADE_TIMEOUT_S='-1' must be > 0"):
        grading_pool.get_pool(num_processes=1)
    monkeypatch.setenv("SMARTTHINKER_GRADER_PROCESSES", "3")
    assert grading_pool.get_pool(time_limit_s=1.0).num_processes == 3
