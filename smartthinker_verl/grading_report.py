"""Grading faults carried from verl's reward workers to the process that runs the training step.

verl 0.9.1 does not stop on an exception from a reward manager's ``run_single``: the v1 agent loop
(``trainer/ppo/v1/agent_loop_tq.py``, ``AgentLoopWorkerTQ._run_prompt``) logs it in the agent-loop worker's log and
marks the prompt ``failure``; the replay buffer (``trainer/ppo/v1/replay_buffer.py``, ``ReplayBuffer.sample``) keeps
failed groups sampleable and pads the missing responses, and raises only when a whole batch has none. Reward workers
(``RewardLoopWorker`` actors) run in other processes than the TaskRunner, where the estimator runs and metrics are
logged, and verl logs ``reward_extra_info`` only in validation. So reward workers report here:

- :func:`data_error`: a response scored 0 for its row's ground truth (missing, or math-verify cannot parse it);
- :func:`setup_failure`: a grading pool that cannot start;

and the estimator calls :func:`collect` at every advantage computation (the TaskRunner): it raises the first setup
failure as :class:`SetupError` (an exception there stops verl's step and the run) and returns the grading errors
reported since the last call. Inside Ray the tally is a named actor (:data:`TALLY_NAME`, no CPU) created by the first
report; without Ray it is this process's own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from smartthinker_verl.errors import SetupError

logger = logging.getLogger(__name__)

TALLY_NAME = "smartthinker_grading_tally"


class Tally:
    """Grading errors since the last :meth:`pop`, and every setup failure (kept: the run must not go on)."""

    def __init__(self) -> None:
        self.errors = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def add(self, errors: int = 0, failure: str | None = None) -> None:
        with self._lock:
            self.errors += errors
            if failure is not None:
                self.failures.append(failure)

    def pop(self) -> tuple[int, list[str]]:
        with self._lock:
            errors, self.errors = self.errors, 0
            return errors, list(self.failures)


_LOCAL = Tally()
_LOGGED = threading.Event()  # the first data error of this process has been logged
_HANDLE: list[Any] = []  # this process's handle on the tally actor, once it has one


def _ray_tally(create: bool) -> Any:
    """The run's tally actor (None outside Ray, or when ``create`` is False and nobody reported yet)."""
    import ray

    if not ray.is_initialized():
        return None
    if not _HANDLE and create:
        _HANDLE.append(ray.remote(num_cpus=0)(Tally).options(name=TALLY_NAME, get_if_exists=True).remote())
    elif not _HANDLE:
        try:
            _HANDLE.append(ray.get_actor(TALLY_NAME))
        except ValueError:
            return None
    return _HANDLE[0]


def data_error(error: Exception, data_source: Any, extra_info: Any) -> None:
    """Count one response scored 0 for its row; the first of this process is logged with the row and the fix."""
    index = extra_info.get("index") if isinstance(extra_info, dict) else None
    if not _LOGGED.is_set():
        _LOGGED.set()
        logger.warning(
            "grading error, the response scores 0 (counted in grading_errors): %s. Row: data_source=%r, "
            "extra_info.index=%r. Fix: rebuild the data with data_preprocess/, which drops and names such rows. "
            "Later grading errors in this process are counted, not logged.",
            error,
            data_source,
            index,
        )
    _report(errors=1)


def setup_failure(error: Exception) -> None:
    """Report a grading pool that cannot start; the next :func:`collect` raises it."""
    import socket

    message = f"on {socket.gethostname()}: {error}"
    logger.error("grading cannot start %s; the training step will stop", message)
    _report(failure=message)


def _report(**kwargs: Any) -> None:
    """Add to the tally and wait for it (from a grading thread), so the next :func:`collect` sees the report."""
    tally = _ray_tally(create=True)
    if tally is None:
        _LOCAL.add(**kwargs)
    else:
        import ray

        ray.get(tally.add.remote(**kwargs))


def collect() -> int:
    """Grading errors reported since the last call; raises :class:`SetupError` once any grading pool failed."""
    errors, failures = _LOCAL.pop()
    tally = _ray_tally(create=False)
    if tally is not None:
        import ray

        remote_errors, remote_failures = ray.get(tally.pop.remote())
        errors, failures = errors + remote_errors, failures + remote_failures
    if failures:
        raise SetupError(
            f"a reward worker's grading pool could not start ({failures[0]}); verl would go on without the "
            "responses that worker should have graded, so the run stops. Fix the grading environment on that node "
            "(smartthinker-verl doctor)"
        )
    return errors
