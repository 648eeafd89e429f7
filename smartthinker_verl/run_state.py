"""The owner of the current run's state of the stateful shaping methods (LASER-DE's adaptive targets).

:func:`reset_states` starts a run (the checkpoint callback calls it when verl builds the trainer; a tool running
several trainings in one process, before each); :func:`state_of` hands the estimator the run's state of a method;
the callback (:mod:`smartthinker_verl.shaping_state`) saves and restores it.
"""

from __future__ import annotations

import logging
from typing import Any

from smartthinker_verl.shaping import ShapingMethod

logger = logging.getLogger(__name__)

#: What ``trainer.checkpoint_callback_class`` must name for the state to reach the checkpoints.
CALLBACK_CLASS = "smartthinker_verl.shaping_state.ShapingStateCallback"

_states: dict[str, Any] = {}
_saved_by_callback = False


def reset_states(saved_by_callback: bool = False) -> None:
    """Start a new run: every method's state is made afresh at its next use; ``saved_by_callback``: the checkpoint
    callback of this run will save it."""
    global _saved_by_callback
    _states.clear()
    _saved_by_callback = _saved_by_callback or saved_by_callback


def state_of(method: ShapingMethod) -> Any:
    """The current run's state of ``method`` (a stateful one), made on first use; a warning when no checkpoint
    callback saves it (a resumed run would restart the adaptive targets)."""
    if method.name not in _states:
        if not _saved_by_callback:
            logger.warning(
                "%s keeps state across steps, but trainer.checkpoint_callback_class is not %s in this process: a "
                "resumed run would restart its adaptive targets. Set it so (the recipe yaml does).",
                method.name,
                CALLBACK_CLASS,
            )
        _states[method.name] = method.state_type()
    return _states[method.name]
