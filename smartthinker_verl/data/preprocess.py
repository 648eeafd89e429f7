"""Dataset records -> verl rows (with drop counts), and the command line every ``data_preprocess/`` script shares."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.cli import exit_status
from smartthinker_verl.data.answers import is_missing, normalize_answer
from smartthinker_verl.data.gradable import checked_mark, describe, unparseable
from smartthinker_verl.data.rows import build_row, write_parquet
from smartthinker_verl.data.sources import DatasetSpec, load_records

logger = logging.getLogger(__name__)

# Drop reasons counted by convert_records.
DROP_NO_PROBLEM = "no problem"
DROP_NO_ANSWER = "no answer"
DROP_UNUSABLE_ANSWER = "unusable answer"
DROP_UNGRADABLE_ANSWER = "answer math-verify cannot parse"


def convert_records(
    spec: DatasetSpec, records: Iterable[dict[str, Any]], split: str | None = None
) -> tuple[list[dict[str, Any]], Counter]:
    """Records -> ``(verl rows in source order, how many records were dropped for which reason)``; records without
    a problem or a usable answer are dropped. ``extra_info.index`` is the record's position in the source, so every
    row can be traced back."""
    rows: list[dict[str, Any]] = []
    dropped: Counter = Counter()
    for index, record in enumerate(records):
        problem, raw_answer = record.get(spec.problem_key), record.get(spec.answer_key)
        ground_truth = None if is_missing(raw_answer) else spec.extract_answer(raw_answer)
        if is_missing(problem) or not isinstance(problem, str):
            reason = DROP_NO_PROBLEM
        elif is_missing(raw_answer):
            reason = DROP_NO_ANSWER
        elif ground_truth is None or not ground_truth.strip():
            reason = DROP_UNUSABLE_ANSWER
        else:
            reason = None
        if reason is not None:
            dropped[reason] += 1
            logger.debug("%s record %d: dropped, %s (answer %r)", spec.name, index, reason, raw_answer)
            continue
        solution = record.get(spec.solution_key) if spec.solution_key else None
        extra = {"solution": solution.strip()} if isinstance(solution, str) and solution.strip() else {}
        for key in spec.metadata_keys:  # as text, so that every dataset's extra_info concatenates
            if not is_missing(value := record.get(key)):
                extra[key] = normalize_answer(value) or json.dumps(value, sort_keys=True, default=str)
        rows.append(
            build_row(
                data_source=spec.hub_id,
                problem=problem.strip(),
                ground_truth=ground_truth,
                split=split or spec.output_split,
                index=index,
                **extra,
            )
        )
    if dropped:
        total = len(rows) + dropped.total()
        logger.warning("%s: dropped %d of %d records (%s)", spec.name, dropped.total(), total, dict(dropped))
    return rows, dropped


def preprocess_main(spec: DatasetSpec, argv: Sequence[str] | None = None) -> int:
    """Entry point of a ``data_preprocess/`` script: load, convert, drop the rows whose ground truth the grader
    cannot parse (each named in the log), write and verify one parquet file, print a one-line summary.

    Returns the exit code: 0 on success, 2 when the data could not be loaded or written (the reason on stderr).
    """
    parser = argparse.ArgumentParser(description=spec.description)
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
        help=f"extra_info.split and the output file name (default: {spec.output_split}, or --split if given)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (lists every dropped record)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    output_split = args.output_split or (args.split if args.split != spec.split else spec.output_split)
    if args.output is not None and not args.output.endswith(".parquet"):
        parser.error(f"--output {args.output} must end in .parquet")
    folder = Path(args.output_dir or Path("data") / spec.name)
    output = Path(args.output) if args.output else folder / f"{output_split}.parquet"
    return exit_status(parser.prog, lambda: _preprocess(spec, args, output_split, output))


def _preprocess(spec: DatasetSpec, args: argparse.Namespace, output_split: str, output: Path) -> None:
    from tqdm import tqdm

    records = load_records(spec, args.local_dataset_path, args.split)
    progress = tqdm(records, desc=spec.name, unit="row", file=sys.stderr, disable=None)
    rows, dropped = convert_records(spec, progress, output_split)
    bad = set(unparseable([row["reward_model"]["ground_truth"] for row in rows]))
    for position in sorted(bad):
        logger.warning("%s: dropped %s", spec.name, describe(rows[position], "a row"))
    rows = [row for position, row in enumerate(rows) if position not in bad]
    if bad:
        dropped[DROP_UNGRADABLE_ANSWER] += len(bad)
    path = write_parquet(rows, output, metadata=checked_mark())
    reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(dropped.items()))
    summary = f"{spec.name}: {len(records)} rows in, {len(rows)} rows out, {dropped.total()} dropped"
    print(summary + (f" ({reasons})" if reasons else "") + f" -> {path}")
