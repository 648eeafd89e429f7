"""``smartthinker-verl eval``: generate and grade on benchmark parquet files, or grade a generations JSONL.

Generate, grade and summarise (the paper's protocol is the default: temperature 0.6, top-p 1.0, 32,768 tokens)::

    smartthinker-verl eval --model MODEL_DIR --data data/aime25/test.parquet data/amc23/test.parquet \\
        data/math500/test.parquet --k 16 --backend vllm --out evals/base

writes ``evals/base/generations/<benchmark>.jsonl`` (one line per sample; rerun the same command to resume),
``evals/base/res.json`` (metrics) and ``evals/base/res.graded.jsonl`` (per-sample grades). Grade existing
generations::

    smartthinker-verl eval --generations evals/base/generations/aime25.jsonl --k 1 4 --out aime25_res.json
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import logging
import os
from pathlib import Path
from typing import Any

from smartthinker_verl.cli import positive
from smartthinker_verl.errors import ConfigError, DataError, SetupError
from smartthinker_verl.evaluation import generation
from smartthinker_verl.evaluation.backends import BACKENDS, SamplingSettings, make_backend, stable_seed
from smartthinker_verl.evaluation.grading import count_response_tokens, grade_records
from smartthinker_verl.evaluation.problems import Problem, load_benchmarks
from smartthinker_verl.evaluation.records import append_records, number_samples, read_records, validate_for_grading
from smartthinker_verl.evaluation.statistics import summarize

logger = logging.getLogger(__name__)

#: Samples per problem when --k is not given (the authors' evaluation scripts; peers use 16).
DEFAULT_SAMPLES = 4
#: The flags (argparse names) that go to the vllm backend alone; hf takes --device and --batch-size.
VLLM_OPTIONS = ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "max_num_seqs", "enforce_eager")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        nargs="+",
        metavar="[NAME=]FILE.parquet",
        help="benchmark parquet files (verl rows); named after the file, or its folder for data/NAME/test.parquet",
    )
    source.add_argument("--generations", nargs="+", metavar="FILE.jsonl", help="grade existing generations")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder (with --data) or res.json path (with --generations; a folder gets res.json inside)",
    )
    parser.add_argument(
        "--k",
        type=positive,
        nargs="+",
        help=f"k of pass@k to report; with --data the largest is the samples per problem (default {DEFAULT_SAMPLES}: "
        "the authors' setting, peers use 16); with --generations the default is 1 and powers of two up to the "
        "smallest sample count",
    )
    parser.add_argument("--require-think-close", action="store_true", help="score 0 without </think> (as training)")
    parser.add_argument("--label", help="model name in reports (default: the model folder's name)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    gen = parser.add_argument_group("generation (with --data)")
    gen.add_argument("--model", help="Hugging Face model folder or hub id")
    gen.add_argument(
        "--backend", choices=BACKENDS, default="vllm", help="vllm (GPUs, or vLLM's CPU build) or hf (transformers)"
    )
    gen.add_argument("--temperature", type=float, default=0.6, help="sampling temperature (default 0.6; 0: greedy)")
    gen.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (default 1.0: off)")
    gen.add_argument("--max-tokens", type=int, default=32768, help="new tokens per response (default 32768)")
    gen.add_argument("--seed", type=int, default=0, help="engine seed of the run (default 0; docs/evaluation.md)")
    gen.add_argument("--chat-template", help="Jinja file replacing the tokenizer's chat template")
    gen.add_argument("--trust-remote-code", action="store_true")
    gen.add_argument("--limit", type=positive, help="first N problems of each file only (smoke tests)")
    gen.add_argument("--overwrite", action="store_true", help="delete the output folder's generations first")
    gen.add_argument("--generate-only", action="store_true", help="stop after generating (grade later)")
    gen.add_argument("--tensor-parallel-size", type=positive, default=1, help="vllm: GPUs per engine")
    gen.add_argument(
        "--data-parallel-size",
        type=positive,
        help="engines, one process each with a share of the samples (default: vllm, visible GPUs / tensor parallel "
        "size; hf, 1)",
    )
    gen.add_argument("--max-num-seqs", type=positive, help="vllm: sequences per engine at once (default: all that fit)")
    gen.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm")
    gen.add_argument(
        "--max-model-len",
        type=positive,
        help="vllm: context length (default: --max-tokens + 2048, at most the model's)",
    )
    gen.add_argument("--enforce-eager", action="store_true", help="vllm: no CUDA graphs")
    gen.add_argument("--dtype", default="auto", choices=("auto", "bfloat16", "float16", "float32"))
    gen.add_argument("--device", default="auto", help="hf: auto | cpu | cuda[:N]")
    gen.add_argument("--batch-size", type=positive, default=8, help="hf: sequences per generate call")

    grade = parser.add_argument_group("grading existing generations (with --generations)")
    grade.add_argument("--tokenizer", help="count response tokens with this tokenizer where lines lack them")
    grade.add_argument(
        "--group-by",
        choices=("benchmark", "data_source", "file"),
        default="benchmark",
        help="benchmark: a line's `benchmark`, else its `data_source`, else its file name",
    )


def run(args: argparse.Namespace) -> int:
    return _generate_and_grade(args) if args.data else _grade_files(args)


def _grade_and_write(
    args: argparse.Namespace, groups: dict[str, list[dict[str, Any]]], settings: dict[str, Any] | None
) -> int:
    """Grade every group's records in one parallel pass, write ``res.json`` (``settings``: the run's
    ``eval_config.json``, None if unknown) and ``res.graded.jsonl`` and print a summary table."""
    import pandas as pd
    from tqdm.auto import tqdm

    model = (settings or {}).get("model")
    meta = {
        "model": model,
        "label": args.label or (Path(model.rstrip("/")).name if model else Path(args.generations[0]).stem),
        "settings": settings,
        **({"generations": args.generations} if args.generations else {}),
        "require_think_close": args.require_think_close,
    }
    flat = [r for records in groups.values() for r in records]
    with tqdm(total=len(flat), desc="grading", unit="answer", disable=args.no_progress) as bar:
        lines = iter(grade_records(flat, require_think_close=args.require_think_close, progress=bar))
    graded = {name: [next(lines) for _ in records] for name, records in groups.items()}
    results = summarize(graded, ks=args.k, meta=meta)
    res_path = Path(args.out) if Path(args.out).suffix == ".json" else Path(args.out) / "res.json"
    res_path.parent.mkdir(parents=True, exist_ok=True)
    res_path.write_text(json.dumps(results, indent=2) + "\n")
    graded_path = res_path.with_suffix(".graded.jsonl")
    graded_path.unlink(missing_ok=True)
    append_records(graded_path, itertools.chain(*graded.values()))

    k_max, rows = max(results["ks"]), []
    for name, m in [*results["benchmarks"].items(), ("overall", results)]:
        se, trunc = m["pass@1_stderr"], m["truncation_rate"]
        row = {"benchmark": name, "problems": m["num_problems"], "samples": f"{m['samples_per_problem']:.4g}"}
        row["pass@1"] = f"{100 * m['pass@1']:.1f}" + (f" ± {100 * se:.1f}" if se is not None else "")
        if k_max > 1:
            row[f"pass@{k_max}"] = f"{100 * m[f'pass@{k_max}']:.1f}"
        row["tokens"] = f"{m['mean_response_tokens']:.0f}"
        row["truncated"] = "-" if trunc is None else f"{100 * trunc:.1f}%"
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"metrics: {res_path}\nper-sample grades: {graded_path}")
    return 0


def _engine_devices(args: argparse.Namespace) -> list[list[str] | None]:
    """The GPUs of each engine (``CUDA_VISIBLE_DEVICES`` ids, ``--tensor-parallel-size`` each); None entries on a
    machine without GPUs, where the engines share the CPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        import torch

        gpus = [str(i) for i in range(torch.cuda.device_count())]
    per_engine = args.tensor_parallel_size if args.backend == "vllm" else 1
    engines = args.data_parallel_size
    if engines is None:
        engines = max(1, len(gpus) // per_engine) if args.backend == "vllm" else 1
    if not gpus:
        return [None] * engines
    if engines * per_engine > len(gpus):
        raise ConfigError(
            f"--data-parallel-size {engines} x {per_engine} GPUs per engine needs {engines * per_engine} GPUs; "
            f"{len(gpus)} are visible ({gpus}): lower --data-parallel-size or --tensor-parallel-size"
        )
    return [gpus[i * per_engine : (i + 1) * per_engine] for i in range(engines)]


def _run_engines(
    args: argparse.Namespace, settings: SamplingSettings, pending: list[tuple[Problem, int]], out_dir: Path
) -> list[int | None]:
    """Sample ``pending`` with one engine here, or with one process per engine; the failed engines' exit codes."""
    import multiprocessing

    own = VLLM_OPTIONS if args.backend == "vllm" else ("device", "batch_size")
    options = {name: getattr(args, name) for name in (*own, "dtype", "chat_template", "trust_remote_code")}
    devices = _engine_devices(args)
    seed, alone = generation.run_seed(args.seed, pending), len(devices) == 1
    load = functools.partial(make_backend, args.backend, args.model, **options)
    jobs = [
        (load, dataclasses.replace(settings, seed=seed if alone else stable_seed(seed, i)), share, out_dir,
         None if alone else i, devices[i], not args.no_progress)
        for i, share in enumerate(generation.shard(pending, len(devices)))
    ]  # fmt: skip
    if alone:
        generation.generate_samples(*jobs[0])
        return []
    logger.info("%d samples over %d engines (%s)", len(pending), len(devices), devices)
    context = multiprocessing.get_context("spawn")  # vLLM and CUDA in each child, nothing inherited
    processes = [
        context.Process(target=generation.generate_samples, args=job, name=f"eval-engine-{i}")
        for i, job in enumerate(jobs)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    return [process.exitcode for process in processes if process.exitcode != 0]


def _generate_and_grade(args: argparse.Namespace) -> int:
    if not args.model:
        raise ConfigError("--data needs --model (the model to sample from)")
    if Path(args.out).suffix == ".json":
        raise ConfigError(f"--out {args.out}: with --data, --out is a folder (res.json and generations go inside)")
    samples = max(args.k) if args.k else DEFAULT_SAMPLES
    args.k = args.k or [1, samples]
    settings = SamplingSettings(
        temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed
    )
    benchmarks = load_benchmarks(args.data, limit=args.limit)
    # eval_config.json: what identifies the run (generation.RESUME_KEYS) plus informative settings.
    config = {"model": args.model, "backend": args.backend, "chat_template": args.chat_template}
    config |= {**dataclasses.asdict(settings), "samples_per_problem": samples, "data": args.data}
    out_dir = generation.prepare_out_dir(args.out, config, overwrite=args.overwrite)

    # Every benchmark's missing samples in one pass over the engines.
    paths: dict[str, Path] = {}
    pending: list[tuple[Problem, int]] = []
    for name, problems in benchmarks.items():
        paths[name] = generation.generations_path(out_dir, name)
        pending += generation.resume_pending(problems, samples, paths[name])
    failed = _run_engines(args, settings, pending, out_dir) if pending else []
    for path in paths.values():
        generation.merge_parts(path)
    if failed:
        raise SetupError(
            f"{len(failed)} generation engine(s) failed (exit codes {failed}; their errors are above); the samples "
            "they finished are saved: rerun the same command to generate the rest"
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, problems in benchmarks.items():
        groups[name] = generation.evaluation_records(paths[name], problems, samples)
        logger.info("%s: %d samples in %s", name, len(groups[name]), paths[name])
    if args.generate_only:
        print(f"generations: {out_dir / 'generations'}; grade them with --generations")
        return 0
    return _grade_and_write(args, groups, config)


def _grade_files(args: argparse.Namespace) -> int:
    groups: dict[str, list[dict[str, Any]]] = {}
    settings: dict[str, Any] | None = None
    # --group-by: the first of these fields a record has, else the name of its file.
    fields = {"benchmark": ("benchmark", "data_source"), "data_source": ("data_source",), "file": ()}[args.group_by]
    for path in map(Path, args.generations):
        records = read_records(path)
        if not records:
            raise DataError(f"{path} holds no generations")
        if args.tokenizer:
            count_response_tokens(records, args.tokenizer)
        validate_for_grading(records, path)
        file_name = path.name.removesuffix(".jsonl")
        for record in records:
            groups.setdefault(next((str(record[f]) for f in fields if record.get(f)), file_name), []).append(record)
        run_config_path = path.parent.parent / generation.RUN_CONFIG  # written by `eval --data` next to generations/
        if settings is None and run_config_path.is_file():
            settings = json.loads(run_config_path.read_text())
    sources = ", ".join(args.generations)
    for records in groups.values():
        number_samples(records, sources)
    return _grade_and_write(args, groups, settings)
