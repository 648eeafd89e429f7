"""The resumable generation loop: sample ``n`` responses per problem and append them to a JSONL file.

Work is split into (problem, sample index) pairs. Pairs already in the file are skipped, so a run that was
interrupted (killed, out of time, out of memory) continues where it stopped, and asking for more samples later adds
only the missing ones. Lines are appended and synced after every chunk, so at most one chunk is lost.

``eval_config.json`` in the output folder records the model and the sampling protocol; resuming with a different
model or protocol is refused, since it would mix two evaluations in one file.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smartthinker_verl.errors import ConfigError, DataError, ResumeError
from smartthinker_verl.evaluation.backends import GenerationBackend, SamplingSettings, sample_seed
from smartthinker_verl.evaluation.problems import Problem
from smartthinker_verl.evaluation.records import RecordWriter, read_records, record_key

logger = logging.getLogger(__name__)

RUN_CONFIG = "eval_config.json"
GENERATIONS_DIR = "generations"
#: Run settings that must match for generations to be resumed into the same files.
RESUME_KEYS: tuple[str, ...] = ("model", "chat_template", "temperature", "top_p", "max_tokens")


def generations_path(out_dir: str | Path, benchmark: str) -> Path:
    """Where the generations of ``benchmark`` go: ``OUT/generations/<benchmark>.jsonl``."""
    return Path(out_dir) / GENERATIONS_DIR / f"{benchmark}.jsonl"


def prepare_out_dir(out_dir: str | Path, run_config: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Create ``out_dir`` (or reuse it for a resume) and write ``eval_config.json``.

    Raises :class:`ResumeError` when the folder holds a run whose ``RESUME_KEYS`` differ from ``run_config``'s,
    unless ``overwrite`` (which deletes its generations first).
    """
    out_dir = Path(out_dir)
    config_path = out_dir / RUN_CONFIG
    if overwrite and out_dir.exists():
        shutil.rmtree(out_dir / GENERATIONS_DIR, ignore_errors=True)
        config_path.unlink(missing_ok=True)
    if config_path.is_file():
        previous = json.loads(config_path.read_text())
        different = {
            key: (previous.get(key), run_config.get(key))
            for key in RESUME_KEYS
            if previous.get(key) != run_config.get(key)
        }
        if different:
            changes = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in different.items())
            raise ResumeError(
                f"{out_dir} holds generations of another run ({changes}); use another --out, or --overwrite to "
                "delete them"
            )
        logger.info("resuming the run in %s", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(run_config, indent=2) + "\n")
    return out_dir


def _record(problem: Problem, sample: int, prompt_tokens: int, completion: Any) -> dict[str, Any]:
    return {
        "id": problem.id,
        "sample": sample,
        "benchmark": problem.benchmark,
        "data_source": problem.data_source,
        "ground_truth": problem.ground_truth,
        "response": completion.text,
        "response_tokens": completion.num_tokens,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": prompt_tokens,
    }


def pending_samples(
    problems: Sequence[Problem], samples_per_problem: int, done: set[tuple[str, int]]
) -> list[tuple[Problem, int]]:
    """The (problem, sample index) pairs still to generate, problem by problem."""
    return [
        (problem, sample)
        for problem in problems
        for sample in range(samples_per_problem)
        if (str(problem.id), sample) not in done
    ]


def _check_same_problems(existing: Sequence[dict[str, Any]], problems: Sequence[Problem], path: Path) -> None:
    """Refuse to resume into generations made for other problems (same ids, other ground truths)."""
    truths = {str(p.id): p.ground_truth for p in problems}
    for record in existing:
        problem_id, _ = record_key(record)
        if problem_id in truths and str(record.get("ground_truth")) != truths[problem_id]:
            raise ResumeError(
                f"{path} holds generations of other problems (id {problem_id}: ground truth "
                f"{record.get('ground_truth')!r} there, {truths[problem_id]!r} in the data); use another --out, "
                "name the benchmark differently (--data NAME=PATH), or --overwrite"
            )


def _check_sizes(samples_per_problem: int, chunk_size: int) -> None:
    """Refuse a non-positive sample count or chunk size."""
    if samples_per_problem < 1:
        raise ConfigError(f"samples per problem must be >= 1, got {samples_per_problem}")
    if chunk_size < 1:
        raise ConfigError(f"chunk size must be >= 1, got {chunk_size}")


def _resume_pending(problems: Sequence[Problem], samples_per_problem: int, path: Path) -> list[tuple[Problem, int]]:
    """The (problem, sample index) pairs not yet in ``path`` (whose partial last line is cut off first)."""
    existing = read_records(path, repair=True) if path.exists() else []
    _check_same_problems(existing, problems, path)
    done = {record_key(r) for r in existing}
    pending = pending_samples(problems, samples_per_problem, done)
    if existing:
        logger.info("%s: %d samples already there, %d to generate", path, len(existing), len(pending))
    return pending


def _generate_chunk(
    backend: GenerationBackend,
    writer: RecordWriter,
    chunk: Sequence[tuple[Problem, int]],
    prompts: dict[str, list[int]],
    seed: int,
) -> None:
    """Sample one chunk of (problem, sample index) pairs and append its records.

    ``prompts`` caches each problem's prompt token ids (``[prompt_len]``) by problem id; new problems are encoded
    into it.
    """
    for problem, _ in chunk:
        if str(problem.id) not in prompts:
            prompts[str(problem.id)] = backend.encode(problem.messages)
    completions = backend.generate(
        [prompts[str(p.id)] for p, _ in chunk],
        [sample_seed(seed, p.benchmark, p.id, s) for p, s in chunk],
    )
    if len(completions) != len(chunk):
        raise RuntimeError(f"backend {backend.name} returned {len(completions)} completions for {len(chunk)}")
    writer.write_many(_record(p, s, len(prompts[str(p.id)]), c) for (p, s), c in zip(chunk, completions, strict=True))


def _evaluation_records(path: Path, problems: Sequence[Problem], samples_per_problem: int) -> list[dict[str, Any]]:
    """The records of every (problem, sample < samples_per_problem) pair in ``path``; all must be there."""
    wanted = {(str(p.id), s) for p in problems for s in range(samples_per_problem)}
    records = [r for r in read_records(path) if record_key(r) in wanted]
    if len(records) != len(wanted):
        raise DataError(
            f"{path}: expected {len(wanted)} samples after generation, found {len(records)}; did two runs write to "
            "this --out at once? Generate each benchmark in one process only"
        )
    return records


def generate_benchmark(
    backend: GenerationBackend,
    problems: Sequence[Problem],
    samples_per_problem: int,
    path: str | Path,
    *,
    chunk_size: int,
    seed: int = 0,
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Generate the missing samples of ``problems`` into ``path``; return the records of this evaluation.

    Args:
        backend: the loaded model.
        problems: one benchmark's problems.
        samples_per_problem: samples wanted per problem (existing extra samples are kept in the file but not
            returned).
        path: the benchmark's generations JSONL (appended to; a partial last line is cut off first).
        chunk_size: samples per backend call; each chunk is on disk before the next starts.
        seed: the run's seed; each sample is seeded from it, its benchmark, problem id and sample index.
        progress: a tqdm-like object whose ``update(n)`` is called with the samples already on disk, then after
            each chunk (optional).

    Returns the records of every (problem, sample < samples_per_problem) pair, old and new.
    """
    _check_sizes(samples_per_problem, chunk_size)
    path = Path(path)
    pending = _resume_pending(problems, samples_per_problem, path)
    if progress is not None:
        progress.update(len(problems) * samples_per_problem - len(pending))
    prompts: dict[str, list[int]] = {}
    with RecordWriter(path) as writer:
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            _generate_chunk(backend, writer, chunk, prompts, seed)
            if progress is not None:
                progress.update(len(chunk))
    return _evaluation_records(path, problems, samples_per_problem)


def run_config(
    *, model: str, backend: str, settings: SamplingSettings, chat_template: str | None, extra: dict[str, Any]
) -> dict[str, Any]:
    """The ``eval_config.json`` of a run: what identifies it (``RESUME_KEYS``) plus informative settings."""
    return {
        "model": model,
        "backend": backend,
        "chat_template": chat_template,
        **settings.to_dict(),
        **extra,
    }
