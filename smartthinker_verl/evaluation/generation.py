"""The resumable generation loop: sample ``n`` responses per problem and append them to a JSONL file per benchmark.

(Problem, sample index) pairs already on disk are skipped, so an interrupted run continues where it stopped and more
samples later add only the missing ones. Every benchmark's missing samples go to the engine at once, and each line is
appended and synced as its response finishes, so an interruption loses only the responses in flight. With several
engines (data parallel) each gets a :func:`shard` and appends to its own ``<benchmark>.part<i>.jsonl``, which
:func:`merge_parts` moves into ``<benchmark>.jsonl`` after the engines, or at the start of the next run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import DataError, ResumeError
from smartthinker_verl.evaluation.backends import GenerationBackend, SamplingSettings, stable_seed
from smartthinker_verl.evaluation.problems import Problem
from smartthinker_verl.evaluation.records import append_records, read_records, record_key

logger = logging.getLogger(__name__)

RUN_CONFIG = "eval_config.json"
GENERATIONS_DIR = "generations"
#: Run settings that must match for generations to be resumed into the same files.
RESUME_KEYS: tuple[str, ...] = ("model", "chat_template", "temperature", "top_p", "max_tokens")


def generations_path(out_dir: str | Path, benchmark: str) -> Path:
    """Where the generations of ``benchmark`` go: ``OUT/generations/<benchmark>.jsonl``."""
    return Path(out_dir) / GENERATIONS_DIR / f"{benchmark}.jsonl"


def prepare_out_dir(out_dir: str | Path, run_config: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Create ``out_dir`` (or reuse it for a resume; ``overwrite``: delete its generations first) and write
    ``eval_config.json`` (model and sampling protocol); a folder holding a run with other ``RESUME_KEYS`` is a
    :class:`ResumeError`, since resuming it would mix two evaluations in one file."""
    out_dir = Path(out_dir)
    config_path = out_dir / RUN_CONFIG
    if overwrite:
        shutil.rmtree(out_dir / GENERATIONS_DIR, ignore_errors=True)
        config_path.unlink(missing_ok=True)
    if config_path.is_file():
        previous = json.loads(config_path.read_text())
        changes = ", ".join(
            f"{k}: {previous.get(k)!r} -> {run_config.get(k)!r}"
            for k in RESUME_KEYS
            if previous.get(k) != run_config.get(k)
        )
        if changes:
            raise ResumeError(
                f"{out_dir} holds generations of another run ({changes}); use another --out, or --overwrite to "
                "delete them"
            )
        logger.info("resuming the run in %s", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(run_config, indent=2) + "\n")
    return out_dir


def part_path(path: Path, index: int) -> Path:
    """Engine ``index``'s lines of the benchmark file ``path``: ``<benchmark>.part<index>.jsonl``."""
    return path.with_name(f"{path.name.removesuffix('.jsonl')}.part{index}.jsonl")


def merge_parts(path: Path) -> None:
    """Append the lines of ``path``'s part files (partial last lines cut off) that ``path`` lacks, then delete them:
    a merge interrupted before deleting is finished by the next one without duplicates."""
    parts = sorted(path.parent.glob(f"{path.name.removesuffix('.jsonl')}.part*.jsonl"))
    if not parts:
        return
    done = {record_key(r) for r in read_records(path, repair=True)} if path.exists() else set()
    for part in parts:
        new = [r for r in read_records(part, repair=True) if record_key(r) not in done]
        done.update(record_key(r) for r in new)
        append_records(path, new)
    for part in parts:
        part.unlink()


def resume_pending(problems: Sequence[Problem], samples_per_problem: int, path: Path) -> list[tuple[Problem, int]]:
    """The (problem, sample index) pairs not yet in ``path`` (its part files merged, partial last lines cut off)."""
    merge_parts(path)
    existing = read_records(path, repair=True) if path.exists() else []
    truths = {str(p.id): p.ground_truth for p in problems}
    for record in existing:  # generations made for other problems (same ids, other ground truths)
        problem_id, _ = record_key(record)
        if problem_id in truths and str(record.get("ground_truth")) != truths[problem_id]:
            raise ResumeError(
                f"{path} holds generations of other problems (id {problem_id}: ground truth "
                f"{record.get('ground_truth')!r} there, {truths[problem_id]!r} in the data); use another --out, "
                "name the benchmark differently (--data NAME=PATH), or --overwrite"
            )
    done = {record_key(r) for r in existing}
    pending = [(p, s) for p in problems for s in range(samples_per_problem) if (str(p.id), s) not in done]
    if existing:
        logger.info("%s: %d samples already there, %d to generate", path, len(existing), len(pending))
    return pending


def run_seed(seed: int, pending: Sequence[tuple[Problem, int]]) -> int:
    """The engine seed of one run: from ``--seed`` and the samples it generates.

    The same missing samples give the same seed (a run is repeatable), and a resumed or extended run draws other
    random numbers than the run before it (new samples are not replays of old ones).
    """
    return stable_seed(seed, *(f"{p.benchmark}/{p.id}/{s}" for p, s in pending))


def shard(pending: Sequence[tuple[Problem, int]], engines: int) -> list[list[tuple[Problem, int]]]:
    """Split the missing samples over ``engines`` engines, round robin: each gets every benchmark and a like mix of
    problems (and so of response lengths)."""
    return [list(pending[i::engines]) for i in range(engines)]


def generate_samples(
    load: Callable[[SamplingSettings], GenerationBackend],
    settings: SamplingSettings,
    pending: Sequence[tuple[Problem, int]],
    out_dir: Path,
    part: int | None,
    devices: list[str] | None,
    show_progress: bool,
) -> None:
    """One engine: ``load(settings)`` on ``devices`` (``CUDA_VISIBLE_DEVICES`` ids; None: leave them), sample the
    (problem, sample index) pairs ``pending`` and append each record to its benchmark's file in ``out_dir`` as it
    finishes (its :func:`part_path` file for engine ``part`` under data parallelism), then close the engine."""
    from tqdm.auto import tqdm

    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
    desc = "generating" if part is None else f"engine {part}"
    with (
        closing(load(settings)) as backend,
        tqdm(total=len(pending), desc=desc, unit="sample", position=part or 0, disable=not show_progress) as bar,
    ):
        encoded = {problem: backend.encode(problem.messages) for problem in {p for p, _ in pending}}
        prompts = [encoded[p] for p, _ in pending]
        for finished in backend.generate(prompts):
            by_benchmark: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for i, completion in finished:
                problem, sample = pending[i]
                by_benchmark[problem.benchmark].append(
                    {
                        "id": problem.id,
                        "sample": sample,
                        "benchmark": problem.benchmark,
                        "data_source": problem.data_source,
                        "ground_truth": problem.ground_truth,
                        "response": completion.text,
                        "response_tokens": completion.num_tokens,
                        "finish_reason": completion.finish_reason,
                        "prompt_tokens": len(prompts[i]),
                    }
                )
            for benchmark, records in by_benchmark.items():
                path = generations_path(out_dir, benchmark)
                append_records(path if part is None else part_path(path, part), records)
            bar.update(len(finished))


def evaluation_records(path: Path, problems: Sequence[Problem], samples_per_problem: int) -> list[dict[str, Any]]:
    """The records of every (problem, sample < samples_per_problem) pair in ``path``; each must be there once."""
    wanted = {(str(p.id), s) for p in problems for s in range(samples_per_problem)}
    records = [r for r in read_records(path) if record_key(r) in wanted]
    if len(records) != len(wanted) or len({record_key(r) for r in records}) != len(wanted):
        raise DataError(
            f"{path}: expected {len(wanted)} samples after generation, found {len(records)}; did two runs write to "
            "this --out at once? Generate each benchmark in one process only"
        )
    return records
