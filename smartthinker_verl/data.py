"""verl's RL row schema and the dataset layer behind ``data_preprocess/``.

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

The module has three layers:

* rows: :func:`build_row`, :func:`validate_row`, :func:`validate_rows`, :func:`write_parquet`,
  :func:`read_parquet`, :func:`validate_parquet_file`;
* datasets: :class:`DatasetSpec` (where a dataset lives and which columns hold what), :func:`load_records`
  (Hugging Face hub or a local jsonl/json/parquet copy), :func:`normalize_answer`,
  :func:`extract_gsm8k_answer`, :func:`convert_records` (records -> rows, with drop counts);
* the command line shared by every ``data_preprocess/`` script: :func:`preprocess_main`.

Local copies are read with ``json`` and pyarrow, not ``datasets.load_dataset("json", ...)``: that builder unifies
the records' schemas (keys missing from a record come back as None, so a source's column set changes), caches an
Arrow copy under ``~/.cache/huggingface``, and reports a bad line without its line number; the readers here are
about 40 lines and say ``file:line`` and the fix.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import numbers
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import DataError, MissingFileError, SmartThinkerError

logger = logging.getLogger(__name__)

#: The paper's instruction, appended to every problem (docs/algorithm.md, section 7).
PROMPT_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."

REQUIRED_COLUMNS: tuple[str, ...] = ("data_source", "prompt", "ability", "reward_model", "extra_info")

#: File types :func:`load_records` reads from a local copy of a dataset.
LOCAL_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".parquet")

# Drop reasons counted by convert_records (the keys of ConversionResult.dropped).
DROP_NO_PROBLEM = "no problem"
DROP_NO_ANSWER = "no answer"
DROP_UNUSABLE_ANSWER = "unusable answer"


class RowSchemaError(DataError):
    """A row does not follow verl's RL schema; the message names the row, the field and the fix."""


class DatasetLoadError(SmartThinkerError, RuntimeError):
    """A dataset could not be loaded (hub unreachable, unknown file type, missing columns); says how to fix it."""


# ----------------------------------------------------------------------------------------------------------- rows


def make_prompt(problem: str, suffix: str = PROMPT_SUFFIX) -> str:
    """The paper's prompt: the problem, a newline, the instruction."""
    return f"{problem.strip()}\n{suffix}" if suffix else problem.strip()


def build_row(
    *,
    data_source: str,
    problem: str,
    ground_truth: str,
    split: str,
    index: int,
    ability: str = "math",
    prompt_suffix: str = PROMPT_SUFFIX,
    **extra_info: Any,
) -> dict[str, Any]:
    """One verl RL row. ``extra_info`` always carries ``split``, ``index`` and ``question`` (the raw problem)."""
    row = {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": make_prompt(problem, prompt_suffix)}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": {"split": split, "index": int(index), "question": problem, **extra_info},
    }
    validate_row(row, position=index)
    return row


def validate_row(row: dict[str, Any], position: int | str = "?") -> None:
    """Raise :class:`RowSchemaError` if ``row`` is not a usable verl RL row."""
    where = f"row {position}"
    missing = [column for column in REQUIRED_COLUMNS if column not in row]
    if missing:
        raise RowSchemaError(f"{where}: missing column(s) {missing}; build rows with smartthinker_verl.data.build_row")
    if not isinstance(row["data_source"], str) or not row["data_source"].strip():
        raise RowSchemaError(f"{where}: data_source must be a non-empty string (it routes scoring)")
    prompt = row["prompt"]
    if (
        not isinstance(prompt, Sequence)
        or isinstance(prompt, str)
        or not prompt
        or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in prompt)
    ):
        raise RowSchemaError(f"{where}: prompt must be a non-empty list of {{'role', 'content'}} chat messages")
    reward_model = row["reward_model"]
    if not isinstance(reward_model, dict) or not isinstance(reward_model.get("ground_truth"), str):
        raise RowSchemaError(f"{where}: reward_model.ground_truth must be a string (convert numbers with str())")
    if not reward_model["ground_truth"].strip():
        raise RowSchemaError(f"{where}: reward_model.ground_truth is empty; drop rows without an answer")
    extra_info = row["extra_info"]
    if not isinstance(extra_info, dict) or "split" not in extra_info or "index" not in extra_info:
        raise RowSchemaError(f"{where}: extra_info must be a dict with at least 'split' and 'index'")


def validate_rows(rows: Iterable[dict[str, Any]]) -> int:
    """Validate every row; return how many there are."""
    count = 0
    for position, row in enumerate(rows):
        validate_row(row, position)
        count += 1
    return count


def _check_arrow_schema(schema: Any, path: Path) -> None:
    """Raise :class:`RowSchemaError` unless the parquet ``schema`` has the column types verl's RL dataset reads."""
    import pyarrow as pa

    def fail(what: str) -> None:
        raise RowSchemaError(f"{path}: {what}; rewrite the file with the scripts in data_preprocess/")

    missing = [name for name in REQUIRED_COLUMNS if schema.get_field_index(name) < 0]
    if missing:
        fail(f"missing column(s) {missing}")
    for name in ("data_source", "ability"):
        if not pa.types.is_string(schema.field(name).type):
            fail(f"column {name!r} has type {schema.field(name).type}, expected string")
    prompt = schema.field("prompt").type
    if not (pa.types.is_list(prompt) or pa.types.is_large_list(prompt)) or not pa.types.is_struct(prompt.value_type):
        fail(f"column 'prompt' has type {prompt}, expected a list of {{role, content}} structs")
    message = prompt.value_type
    for key in ("role", "content"):
        if message.get_field_index(key) < 0 or not pa.types.is_string(message.field(key).type):
            fail(f"prompt messages have type {message}, expected string fields 'role' and 'content'")
    reward_model = schema.field("reward_model").type
    if (
        not pa.types.is_struct(reward_model)
        or reward_model.get_field_index("ground_truth") < 0
        or not pa.types.is_string(reward_model.field("ground_truth").type)
    ):
        fail(f"column 'reward_model' has type {reward_model}, expected a struct with a string 'ground_truth'")
    extra_info = schema.field("extra_info").type
    if not pa.types.is_struct(extra_info) or extra_info.get_field_index("index") < 0:
        fail(f"column 'extra_info' has type {extra_info}, expected a struct with 'split' and an integer 'index'")
    if not pa.types.is_integer(extra_info.field("index").type):
        fail(f"extra_info.index has type {extra_info.field('index').type}, expected an integer")
    if extra_info.get_field_index("split") < 0 or not pa.types.is_string(extra_info.field("split").type):
        fail(f"column 'extra_info' has type {extra_info}, expected a string 'split'")


def _read_validated(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise MissingFileError(f"{path} does not exist; create it with the scripts in data_preprocess/")
    table = pq.read_table(path)
    _check_arrow_schema(table.schema, path)
    rows = table.to_pylist()
    try:
        validate_rows(rows)
    except RowSchemaError as error:
        raise RowSchemaError(f"{path}: {error}") from error
    return rows


def validate_parquet_file(path: str | Path) -> int:
    """Check a written verl parquet file: column types, then every row. Returns the number of rows."""
    return len(_read_validated(Path(path)))


def write_parquet(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Validate ``rows`` and write them as a verl parquet file (parent folders created). Returns the path.

    The file is written next to ``path`` first, checked with :func:`validate_parquet_file` and only then moved
    into place, so ``path`` never holds a partial or invalid file. Same rows in, same bytes out.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not rows:
        raise RowSchemaError(f"refusing to write {path}: no rows (check the input data and the filters)")
    validate_rows(rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        pq.write_table(pa.Table.from_pylist(list(rows)), partial)
        written = validate_parquet_file(partial)
        if written != len(rows):
            raise RowSchemaError(f"{path}: wrote {written} rows, expected {len(rows)}")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("wrote %d rows to %s", len(rows), path)
    return path


def read_parquet(path: str | Path) -> list[dict[str, Any]]:
    """Read a verl parquet file back as a list of row dicts (column types and every row validated)."""
    return _read_validated(Path(path))


# ------------------------------------------------------------------------------------------------------- answers


def is_missing(value: Any) -> bool:
    """True for None, NaN and blank strings: values that carry no answer (or problem) at all."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def normalize_answer(value: Any) -> str | None:
    """A source answer as the ground-truth string verl stores, or None when it is not usable.

    Strings are stripped; integral numbers lose their decimal point (AMC's ``27.0`` -> ``"27"``); other finite
    numbers use Python's shortest round-trip form (``2.5`` -> ``"2.5"``). None, NaN, infinities, blank strings,
    booleans and containers give None.
    """
    if is_missing(value) or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    return None


def extract_gsm8k_answer(value: Any) -> str | None:
    """GSM8K's final answer: the text after the last ``####``, stripped, thousands separators removed.

    ``"...she sold 72 clips.\\n#### 1,072"`` -> ``"1072"``. None when there is no ``####`` or nothing after it.
    """
    if not isinstance(value, str) or "####" not in value:
        return None
    answer = value.rsplit("####", 1)[1].strip().replace(",", "")
    return answer or None


def _as_text(value: Any) -> str | None:
    """A source metadata value as text (None stays None), so every dataset's extra_info concatenates."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip()
    normalized = normalize_answer(value)
    return normalized if normalized is not None else json.dumps(value, sort_keys=True, default=str)


# ------------------------------------------------------------------------------------------------------ datasets


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and which of its columns hold what.

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
    def data_source(self) -> str:
        """The ``data_source`` of every row: the dataset's hub id."""
        return self.hub_id

    @property
    def layout(self) -> str:
        """The source columns this spec reads, for error messages."""
        keys = [self.problem_key, self.answer_key]
        if self.solution_key and self.solution_key not in keys:
            keys.append(self.solution_key)
        return ", ".join(keys + [k for k in self.metadata_keys if k not in keys])

    def default_output(self, split: str | None = None) -> Path:
        """``data/<name>/<split>.parquet`` (relative to the working directory)."""
        return Path("data") / self.name / f"{split or self.output_split}.parquet"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetLoadError(
                    f"{path}:{line_number}: not valid JSON ({error.msg}); fix or remove the line"
                ) from error
            if not isinstance(record, dict):
                raise DatasetLoadError(f"{path}:{line_number}: expected one JSON object per line")
            records.append(record)
    return records


def _read_json(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetLoadError(f"{path}: not valid JSON ({error}); for one object per line name it .jsonl") from error
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return data
    if isinstance(data, dict) and data and all(isinstance(column, list) for column in data.values()):
        lengths = {len(column) for column in data.values()}
        if len(lengths) == 1:
            keys = list(data)
            return [dict(zip(keys, values, strict=True)) for values in zip(*data.values(), strict=True)]
    raise DatasetLoadError(
        f"{path}: expected a JSON list of records or an object of equal-length columns; "
        "for one record per line name the file .jsonl"
    )


def _read_parquet_records(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


_READERS: dict[str, Callable[[Path], list[dict[str, Any]]]] = {
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".parquet": _read_parquet_records,
}


def _local_files(path: Path, split: str) -> list[Path]:
    """The files of a local copy: ``path`` itself, or the files under a folder whose names start with ``split``."""
    if path.is_file():
        if path.suffix not in _READERS:
            raise DatasetLoadError(
                f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(LOCAL_SUFFIXES)}"
            )
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _READERS)
        chosen = [p for p in found if p.name.startswith(split)]
        if chosen:
            return chosen
        if len(found) == 1:
            return found
        names = ", ".join(str(p.relative_to(path)) for p in found[:10]) or "none"
        raise DatasetLoadError(
            f"{path}: no {'/'.join(LOCAL_SUFFIXES)} file named {split}* (found: {names}); "
            "pass the file itself to --local_dataset_path"
        )
    raise DatasetLoadError(f"--local_dataset_path {path} does not exist; pass a .jsonl, .json or .parquet file")


def _load_from_hub(spec: DatasetSpec, split: str) -> list[dict[str, Any]]:
    where = f"{spec.hub_id!r}" + (f" (config {spec.hub_config!r})" if spec.hub_config else "") + f" split {split!r}"
    try:
        import datasets
    except ImportError as error:  # pragma: no cover - verl depends on datasets
        raise DatasetLoadError(f"loading {where} needs the `datasets` package: pip install datasets") from error
    logger.info("loading %s from the Hugging Face hub", where)
    try:
        dataset = datasets.load_dataset(spec.hub_id, spec.hub_config, split=split)
    except Exception as error:
        raise DatasetLoadError(
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
    columns = set().union(*(record.keys() for record in records)) if records else set()
    missing = [key for key in (spec.problem_key, spec.answer_key) if key not in columns]
    if records and missing:
        raise DatasetLoadError(
            f"{source}: no column(s) {missing} (columns found: {sorted(columns)}); {spec.name} expects the layout "
            f"of {spec.hub_id}: {spec.layout}"
        )
    if not records:
        raise DatasetLoadError(f"{source}: no records; check the file or the split name ({split!r})")
    logger.info("read %d records from %s", len(records), source)
    return records


@dataclass
class ConversionResult:
    """Rows built from a dataset's records, and how many records were dropped for which reason."""

    rows: list[dict[str, Any]]
    rows_in: int
    dropped: Counter = field(default_factory=Counter)

    @property
    def rows_out(self) -> int:
        return len(self.rows)

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    def summary(self, name: str, path: str | Path | None = None) -> str:
        """One line: rows in, rows out, dropped (by reason), where written."""
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.dropped.items()))
        line = f"{name}: {self.rows_in} rows in, {self.rows_out} rows out, {self.n_dropped} dropped"
        if reasons:
            line += f" ({reasons})"
        return line + (f" -> {path}" if path is not None else "")


def convert_records(
    spec: DatasetSpec,
    records: Iterable[dict[str, Any]],
    split: str | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> ConversionResult:
    """Records -> verl rows, in source order; records without a problem or a usable answer are dropped.

    ``extra_info.index`` is the record's position in the source, so every row can be traced back. ``progress``
    wraps the iteration (the CLI passes a tqdm bar).
    """
    split = split or spec.output_split
    records = list(records)
    iterable: Iterable[dict[str, Any]] = records if progress is None else progress(records)
    rows: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    for index, record in enumerate(iterable):
        problem = record.get(spec.problem_key)
        if is_missing(problem) or not isinstance(problem, str):
            dropped[DROP_NO_PROBLEM] += 1
            logger.debug("%s record %d: dropped, no problem", spec.name, index)
            continue
        raw_answer = record.get(spec.answer_key)
        if is_missing(raw_answer):
            dropped[DROP_NO_ANSWER] += 1
            logger.debug("%s record %d: dropped, no answer", spec.name, index)
            continue
        ground_truth = spec.extract_answer(raw_answer)
        if ground_truth is None or not ground_truth.strip():
            dropped[DROP_UNUSABLE_ANSWER] += 1
            logger.debug("%s record %d: dropped, unusable answer %r", spec.name, index, raw_answer)
            continue
        extra: dict[str, Any] = {}
        if spec.solution_key:
            solution = record.get(spec.solution_key)
            if isinstance(solution, str) and solution.strip():
                extra["solution"] = solution.strip()
        for key in spec.metadata_keys:
            text = _as_text(record.get(key))
            if text is not None:
                extra[key] = text
        rows.append(
            build_row(
                data_source=spec.data_source,
                problem=problem.strip(),
                ground_truth=ground_truth,
                split=split,
                index=index,
                **extra,
            )
        )
    if dropped:
        n_dropped = sum(dropped.values())
        logger.warning("%s: dropped %d of %d records (%s)", spec.name, n_dropped, len(records), dict(dropped))
    return ConversionResult(rows=rows, rows_in=len(records), dropped=dropped)


def preprocess(
    spec: DatasetSpec,
    *,
    local_dataset_path: str | Path | None = None,
    output: str | Path | None = None,
    split: str | None = None,
    output_split: str | None = None,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> tuple[ConversionResult, Path]:
    """Load, convert, write and verify one dataset. Returns the conversion result and the written path."""
    output_split = output_split or spec.output_split
    records = load_records(spec, local_dataset_path, split)
    result = convert_records(spec, records, output_split, progress=progress)
    path = write_parquet(result.rows, output if output is not None else spec.default_output(output_split))
    return result, path


# ------------------------------------------------------------------------------------------------- command line


def build_parser(spec: DatasetSpec) -> argparse.ArgumentParser:
    """The arguments every ``data_preprocess/`` script takes."""
    parser = argparse.ArgumentParser(
        description=spec.description
        or f"Write {spec.hub_id} as verl RL parquet (data_source {spec.data_source!r}, the paper's prompt).",
    )
    parser.add_argument(
        "--local_dataset_path",
        "--local-dataset-path",
        help=f"a local copy (.jsonl, .json or .parquet with columns {spec.layout}, or a folder of such files) "
        f"instead of downloading {spec.hub_id} from the Hugging Face hub",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output_dir",
        "--output-dir",
        help=f"write <output_dir>/<split>.parquet (default: data/{spec.name}/{spec.output_split}.parquet)",
    )
    where.add_argument("--output", help="write exactly this .parquet file")
    parser.add_argument(
        "--split",
        default=spec.split,
        help=f"split to load from the hub, or to pick in a local folder (default: {spec.split})",
    )
    parser.add_argument(
        "--output_split",
        "--output-split",
        default=None,
        help=f"extra_info.split and the output file name (default: {spec.output_split}, or --split if given)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (lists every dropped record)")
    return parser


def preprocess_main(spec: DatasetSpec, argv: Sequence[str] | None = None) -> int:
    """Entry point of a ``data_preprocess/`` script: parse ``argv``, preprocess, print a one-line summary.

    Returns the exit code: 0 on success, 1 when the data could not be loaded or written (the reason on stderr).
    """
    from tqdm import tqdm

    args = build_parser(spec).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    output_split = args.output_split or (args.split if args.split != spec.split else spec.output_split)
    if args.output is not None:
        output = Path(args.output)
        if output.suffix != ".parquet":
            print(f"error: --output {output} must end in .parquet", file=sys.stderr)
            return 1
    elif args.output_dir is not None:
        output = Path(args.output_dir) / f"{output_split}.parquet"
    else:
        output = spec.default_output(output_split)

    def progress(iterable: Iterable[Any]) -> Iterable[Any]:
        return tqdm(iterable, desc=spec.name, unit="row", file=sys.stderr, disable=None)

    try:
        result, path = preprocess(
            spec,
            local_dataset_path=args.local_dataset_path,
            output=output,
            split=args.split,
            output_split=output_split,
            progress=progress,
        )
    except (DatasetLoadError, RowSchemaError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.summary(spec.name, path))
    return 0
