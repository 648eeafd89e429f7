"""verl's RL row schema: build, validate, write and read the rows of a parquet file.

A row, as verl's RL dataset (``verl.utils.dataset.rl_dataset.RLHFDataset``) reads it::

    data_source   str, never empty (routes scoring and names the validation metrics); the dataset's hub id
    prompt        list of chat messages [{"role": "user", "content": problem + "\\n" + PROMPT_SUFFIX}]
    ability       str ("math")
    reward_model  {"style": "rule", "ground_truth": str}
    extra_info    {"split": str, "index": int, "question": str, "solution": str (when the source has one),
                   the source's identifying columns (id, url, level, ...) as strings}

``extra_info`` keys differ between datasets, but every value other than ``index`` is a string, so the files of
different datasets can be read together (verl concatenates its validation files; mixed value types per key
would make that fail).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import DataError, MissingFileError

logger = logging.getLogger(__name__)

#: The paper's instruction, appended to every problem (docs/algorithm.md, section 7).
PROMPT_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."

REQUIRED_COLUMNS: tuple[str, ...] = ("data_source", "prompt", "ability", "reward_model", "extra_info")


def make_prompt(problem: str) -> str:
    """The paper's prompt: the problem, a newline, the instruction."""
    return f"{problem.strip()}\n{PROMPT_SUFFIX}"


def build_row(
    *,
    data_source: str,
    problem: str,
    ground_truth: str,
    split: str,
    index: int,
    ability: str = "math",
    **extra_info: Any,
) -> dict[str, Any]:
    """One verl RL row. ``extra_info`` always carries ``split``, ``index`` and ``question`` (the raw problem).
    Not validated here: :func:`write_parquet` validates every row it writes."""
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": make_prompt(problem)}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": {"split": split, "index": int(index), "question": problem, **extra_info},
    }


def validate_row(row: dict[str, Any], position: int | str = "?") -> None:
    """Raise :class:`DataError` if ``row`` is not a usable verl RL row (the column types verl's RL dataset reads)."""
    where = f"row {position}"
    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; build rows with smartthinker_verl.data.build_row")
    if not isinstance(row["data_source"], str) or not row["data_source"].strip():
        raise DataError(f"{where}: data_source must be a non-empty string (it routes scoring)")
    if not isinstance(row["ability"], str):
        raise DataError(f"{where}: ability must be a string (e.g. 'math')")
    prompt = row["prompt"] if isinstance(row["prompt"], list | tuple) else []
    chat = all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt
    )
    if not prompt or not chat:
        raise DataError(f"{where}: prompt must be a non-empty list of {{'role', 'content'}} chat messages (strings)")
    reward_model = row["reward_model"]
    if not isinstance(reward_model, dict) or not isinstance(reward_model.get("ground_truth"), str):
        raise DataError(f"{where}: reward_model.ground_truth must be a string (convert numbers with str())")
    if not reward_model["ground_truth"].strip():
        raise DataError(f"{where}: reward_model.ground_truth is empty; drop rows without an answer")
    extra_info = row["extra_info"]
    index = extra_info.get("index") if isinstance(extra_info, dict) else None
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(extra_info.get("split"), str):
        raise DataError(f"{where}: extra_info must be a dict with a string 'split' and an integer 'index'")


def read_parquet(path: str | Path) -> list[dict[str, Any]]:
    """Read a verl parquet file back as a list of row dicts, every row validated."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; create it with the scripts in data_preprocess/")
    rows = pq.read_table(path).to_pylist()
    for position, row in enumerate(rows):
        try:
            validate_row(row, position)
        except DataError as error:
            raise DataError(f"{path}: {error}; rewrite the file with the scripts in data_preprocess/") from error
    return rows


def write_parquet(rows: Sequence[dict[str, Any]], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Validate ``rows`` and write them as a verl parquet file (parent folders created), with ``metadata`` in its
    schema. Returns the path.

    The file is written next to ``path`` first and only then moved into place, so ``path`` never holds a partial
    file. Same rows in, same bytes out.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise DataError(f"refusing to write {path}: no rows (check the input data and the filters)")
    for position, row in enumerate(rows):
        validate_row(row, position)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        table = pa.Table.from_pylist(list(rows))
        pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **(metadata or {})}), partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("wrote %d rows to %s", len(rows), path)
    return path
