"""Where a dataset lives (:class:`DatasetSpec`) and :func:`load_records`: the Hugging Face hub or a local copy.

Local copies are read with ``json`` and pyarrow, not ``datasets.load_dataset("json", ...)``: that builder unifies
the records' schemas (keys missing from a record come back as None, so a source's column set changes), caches an
Arrow copy under ``~/.cache/huggingface``, and reports a bad line without its line number. :func:`read_jsonl` is
also the project's one JSONL reader (generations, verl's file-logger metrics).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartthinker_verl.data.answers import normalize_answer
from smartthinker_verl.errors import ConfigError, DataError, MissingFileError, SetupError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and which of its columns hold what; its hub id is every row's ``data_source``.

    ``split`` is the hub split to load; ``output_split`` is the role the rows play in training (``"train"`` or
    ``"test"``), used in ``extra_info.split`` and in the default output path ``data/<name>/<output_split>.parquet``.
    """

    name: str
    hub_id: str
    split: str
    problem_key: str
    answer_key: str
    output_split: str
    hub_config: str | None = None
    solution_key: str | None = None
    metadata_keys: tuple[str, ...] = ()
    extract_answer: Callable[[Any], str | None] = normalize_answer
    description: str = ""

    @property
    def layout(self) -> str:
        """The source columns this spec reads, for error messages."""
        keys = [self.problem_key, self.answer_key, self.solution_key, *self.metadata_keys]
        return ", ".join(dict.fromkeys(key for key in keys if key))


def read_jsonl(path: str | Path, *, allow_partial_tail: bool = False) -> list[dict[str, Any]]:
    """The objects of a JSONL file, one per non-blank line; :class:`DataError` naming ``file:line`` otherwise.

    ``allow_partial_tail``: skip (with a warning) a malformed last line without its newline, the line a killed
    writer leaves behind; a malformed line anywhere else is still an error.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        lines = handle.readlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if allow_partial_tail and number == len(lines) and not line.endswith("\n"):
                logger.warning("%s: skipping a partial last line %d (interrupted run?)", path, number)
                continue
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg}); fix or delete that line") from error
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line, got {type(record).__name__}")
        records.append(record)
    return records


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error}); for one object per line name it .jsonl") from error
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return data
    if isinstance(data, dict) and data and all(isinstance(column, list) for column in data.values()):
        if len({len(column) for column in data.values()}) == 1:
            return [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]
    raise DataError(
        f"{path}: expected a JSON list of records or an object of equal-length columns; "
        "for one record per line name the file .jsonl"
    )


def _read_parquet_records(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


_READERS: dict[str, Callable[[Path], list[dict[str, Any]]]] = {
    ".jsonl": read_jsonl,
    ".json": _read_json,
    ".parquet": _read_parquet_records,
}


def _local_files(path: Path, split: str) -> list[Path]:
    """The files of a local copy: ``path`` itself, or the files under a folder whose names start with ``split``."""
    if path.is_file():
        if path.suffix not in _READERS:
            raise ConfigError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(_READERS)}")
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _READERS)
        chosen = [p for p in found if p.name.startswith(split)]
        if chosen:
            return chosen
        if len(found) == 1:
            return found
        names = ", ".join(str(p.relative_to(path)) for p in found[:10]) or "none"
        raise MissingFileError(
            f"{path}: no {'/'.join(_READERS)} file named {split}* (found: {names}); "
            "pass the file itself to --local_dataset_path"
        )
    raise MissingFileError(f"--local_dataset_path {path} does not exist; pass a .jsonl, .json or .parquet file")


def _load_from_hub(spec: DatasetSpec, split: str) -> list[dict[str, Any]]:
    where = f"{spec.hub_id!r}" + (f" (config {spec.hub_config!r})" if spec.hub_config else "") + f" split {split!r}"
    import datasets

    logger.info("loading %s from the Hugging Face hub", where)
    try:
        dataset = datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    except Exception as error:
        raise SetupError(
            f"could not load {where} from the Hugging Face hub ({type(error).__name__}: {error}). "
            "If this machine is offline or the hub is blocked, download the dataset where the hub is reachable "
            f"and pass the file with --local_dataset_path (.jsonl, .json or .parquet with columns {spec.layout}); "
            "check HF_ENDPOINT / HF_HUB_OFFLINE / HF_DATASETS_OFFLINE otherwise"
        ) from error
    return dataset.to_list()


def load_records(spec: DatasetSpec, local_dataset_path: str | Path | None = None, split: str | None = None) -> list:
    """The dataset's records (dicts of source columns), in source order.

    With ``local_dataset_path`` reads a local copy (a ``.jsonl``, ``.json`` or ``.parquet`` file, or a folder
    holding ``<split>*`` files of those types, concatenated in name order); otherwise loads ``spec.hub_id`` from
    the Hugging Face hub with ``datasets.load_dataset``. Checks that the spec's problem and answer columns exist.
    """
    split = split or spec.split
    if local_dataset_path is not None:
        files = _local_files(Path(local_dataset_path), split)
        records = [record for path in files for record in _READERS[path.suffix](path)]
        source = ", ".join(map(str, files))
    else:
        records = _load_from_hub(spec, split)
        source = spec.hub_id
    if not records:
        raise DataError(f"{source}: no records; check the file or the split name ({split!r})")
    columns = set().union(*(record.keys() for record in records))
    missing = [key for key in (spec.problem_key, spec.answer_key) if key not in columns]
    if missing:
        raise DataError(
            f"{source}: no column(s) {missing} (columns found: {sorted(columns)}); {spec.name} expects the layout "
            f"of {spec.hub_id}: {spec.layout}"
        )
    logger.info("read %d records from %s", len(records), source)
    return records
