"""Old path of the checkpoint callback (``trainer.checkpoint_callback_class`` in recipes written before the rename)."""

from smartthinker_verl.shaping_state import ShapingStateCallback

__all__ = ["ShapingStateCallback"]
