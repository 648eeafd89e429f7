"""Errors of ``smartthinker-verl convert``: each message says what was wrong and how to fix it."""

from __future__ import annotations

from smartthinker_verl.errors import SmartThinkerError


class ConversionError(SmartThinkerError):
    """Base class: the conversion stopped before anything was moved into the output folder."""


class CheckpointNotFoundError(ConversionError):
    """The run directory, step or actor folder could not be resolved."""


class ShardError(ConversionError):
    """A model shard is missing, unreadable, truncated or inconsistent with the others (the message names it)."""


class OutputExistsError(ConversionError):
    """The output folder exists and ``--force`` was not given."""


class VerificationError(ConversionError):
    """The written model did not reload to exactly the expected tensors."""
