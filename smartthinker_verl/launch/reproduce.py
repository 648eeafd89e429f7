"""The paper's table in one command: ``bash recipes/reproduce.sh MODEL [METHOD ...] [--dry-run] [-- OVERRIDE ...]``.

The stages, their folders and ``stage.done`` markers, reruns and ``--dry-run``: README, "The paper's table in one
command". For tests only: ``SMARTTHINKER_REPRODUCE_RUNNER=EXE`` runs ``EXE STAGE COMMAND...`` instead of each
stage's command.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from smartthinker_verl.cli import exit_status, positive
from smartthinker_verl.errors import ConfigError
from smartthinker_verl.options import CONFIG_KEY

logger = logging.getLogger("smartthinker_verl.launch.reproduce")

REPO_ROOT = Path(__file__).resolve().parents[2]
RECIPES = REPO_ROOT / "recipes"

#: model argument -> (recipe script, GPUs per evaluated model: vLLM tensor parallel size).
MODELS: dict[str, tuple[str, int]] = {
    "1.5b": ("run_1.5b.sh", 1),
    "7b": ("run_7b.sh", 2),
    "qwen3_4b": ("run_qwen3_4b.sh", 1),
}
DEFAULT_METHODS = (CONFIG_KEY,)
#: The paper's evaluation: four benchmarks (data/NAME/test.parquet, written by data_preprocess/NAME.py) ...
BENCHMARKS = ("aime24", "aime25", "amc23", "math500")
#: ... sampled at temperature 0.6, top-p 1.0, up to 32,768 new tokens (docs/evaluation.md).
TEMPERATURE, TOP_P, MAX_TOKENS = 0.6, 1.0, 32768
#: Samples per problem (the README's and docs/evaluation.md's choice for AIME/AMC; the authors' scripts use 4).
DEFAULT_K = 16
#: Context of the evaluation engine: the longest benchmark prompt (< 1,000 tokens) + the new tokens. Without it vLLM
#: takes the model's own context (262,144 tokens for Qwen3-4B-Thinking-2507) and reserves KV cache for it.
EVAL_MAX_MODEL_LEN = MAX_TOKENS + 2048
RUNNER_ENV = "SMARTTHINKER_REPRODUCE_RUNNER"


@dataclass
class Stage:
    """One step of the run: its command, its folder ``run_dir/name``, and whether it still has to run."""

    name: str
    run_dir: Path
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: Why it does not run (set while planning), else None.
    skip: str | None = None
    #: True where a changed command just means "run again" (the report: cheap, derived from the others).
    rerun_when_changed: bool = False
    #: What --dry-run checked (one line).
    checked: str = ""

    @property
    def directory(self) -> Path:
        return self.run_dir / self.name

    @property
    def marker(self) -> Path:
        return self.directory / "stage.done"

    @property
    def log(self) -> Path:
        return self.directory / "stage.log"

    def recorded(self) -> list[str]:
        """The command as stored in ``stage.done``: the interpreter shown as ``python`` (a rerun may use another
        path to the same environment)."""
        return ["python" if part == sys.executable else part for part in self.command]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    overrides: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, overrides = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="bash recipes/reproduce.sh",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Hydra OVERRIDEs after `--` go to every training stage. Environment as the recipes' "
        "(recipes/common.sh): MODEL_PATH, DATA_DIR, NGPUS, NNODES, PROJECT, PYTHON.",
    )
    parser.add_argument("model", metavar="MODEL", help=f"one of {', '.join(MODELS)}")
    parser.add_argument(
        "methods", nargs="*", metavar="METHOD", help=f"advantage estimators to train (default: {DEFAULT_METHODS[0]})"
    )
    parser.add_argument("--dry-run", action="store_true", help="compose and validate every stage, print the plan")
    parser.add_argument("--run-dir", type=Path, help="run folder (default: runs/reproduce-MODEL); shared with NNODES>1")
    parser.add_argument("--k", type=positive, default=DEFAULT_K, help=f"samples per problem (default {DEFAULT_K})")
    parser.add_argument(
        "--eval-tp",
        type=positive,
        help="GPUs per vLLM engine (tensor parallel; default 1, 2 for 7b): one engine per N visible GPUs",
    )
    args = parser.parse_args(argv)
    args.overrides = overrides
    if args.model not in MODELS:
        raise ConfigError(f"unknown model {args.model!r}. Fix: choose one of {', '.join(MODELS)}")
    args.methods = list(dict.fromkeys(args.methods or DEFAULT_METHODS))
    return args


def check_methods(methods: Sequence[str]) -> None:
    """Every method is a registered verl advantage estimator (the plugin's and verl's own)."""
    import verl  # noqa: F401  (loads the plugin, which registers the project's estimators)
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    import smartthinker_verl.plugin  # noqa: F401  (registers them where verl's entry points are switched off)
    from smartthinker_verl.shaping import METHODS

    unknown = [m for m in methods if m not in ADV_ESTIMATOR_REGISTRY]
    if unknown:
        choices = " ".join(["grpo", *(m.name for m in METHODS.values())])
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}. Fix: choose from {choices}")


def compose_training(recipe: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """The training config the recipe would launch (its ``--dry-run``: composed and validated, printed as YAML)."""
    import yaml

    done = subprocess.run(["bash", str(recipe), "--dry-run", *overrides], capture_output=True, text=True)
    for line in done.stderr.splitlines():
        if "WARNING" in line or "ERROR" in line:
            logger.warning("%s", line.split(": ", 1)[-1])
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise ConfigError(
            f"{recipe.name} --dry-run {' '.join(overrides)} failed (exit {done.returncode}):\n{tail}\n"
            "Fix the overrides after `--` or the environment named above"
        )
    return yaml.safe_load(done.stdout)


def cli_command(subcommand: str, *args: str) -> list[str]:
    """A ``smartthinker-verl`` command, its arguments parsed by that subcommand's own parser (no side effects)."""
    from smartthinker_verl.cli import SUBCOMMANDS

    parser = argparse.ArgumentParser(prog=f"smartthinker-verl {subcommand}", exit_on_error=False)
    importlib.import_module(SUBCOMMANDS[subcommand][0]).add_arguments(parser)
    try:
        parser.parse_args(args)
    except (argparse.ArgumentError, SystemExit) as error:
        raise ConfigError(f"smartthinker-verl {subcommand} refuses {shlex.join(args)}: {error}") from error
    return [sys.executable, "-m", "smartthinker_verl.cli", subcommand, *args]


def training_stages(args: argparse.Namespace, recipe: Path, run_dir: Path) -> tuple[list[Stage], str]:
    """Preflight, training and conversion of every method, and the base model the recipe trains from.

    Each training config is composed by the recipe's own ``--dry-run`` (side by side: one Python process per method)
    and must train METHOD into ``run_dir/train/METHOD/checkpoints``.
    """
    checkpoint_dirs = {m: run_dir / "train" / m / "checkpoints" for m in args.methods}
    overrides = {
        m: [f"algorithm.adv_estimator={m}", f"trainer.default_local_dir={path}", *args.overrides]
        for m, path in checkpoint_dirs.items()
    }
    with ThreadPoolExecutor(max_workers=len(args.methods)) as pool:
        configs = list(pool.map(lambda m: compose_training(recipe, overrides[m]), args.methods))
    stages: list[Stage] = []
    for method, config in zip(args.methods, configs, strict=True):
        checkpoints = checkpoint_dirs[method]
        composed = (config["algorithm"]["adv_estimator"], str(config["trainer"]["default_local_dir"]))
        if composed != (method, str(checkpoints)):
            raise ConfigError(
                f"{recipe.name} composes adv_estimator={composed[0]}, default_local_dir={composed[1]} for method "
                f"{method}: an override after `--` replaces what reproduce sets; drop it"
            )
        preflight = Stage(
            f"preflight/{method}",
            run_dir,
            ["bash", str(recipe), "--doctor-only", *overrides[method]],
            checked="the training stage's config (composed below)",
        )
        if os.environ.get("SMARTTHINKER_SKIP_DOCTOR") == "1":
            preflight.skip, preflight.checked = "SMARTTHINKER_SKIP_DOCTOR=1", "skipped by SMARTTHINKER_SKIP_DOCTOR=1"
        train = Stage(
            f"train/{method}",
            run_dir,
            ["bash", str(recipe), "--skip-doctor", *overrides[method]],
            env={"RESUME": "1"},
            checked=f"composed by {recipe.name} --dry-run: adv_estimator={method}, "
            f"{config['trainer']['total_training_steps']} steps, checkpoints -> {checkpoints}",
        )
        model = run_dir / "convert" / method / "model"
        convert = Stage(
            f"convert/{method}",
            run_dir,
            cli_command("convert", str(checkpoints), "--step", "latest", "--out", str(model), "--force"),
            checked="arguments parsed by convert's parser; reads the training config's default_local_dir",
        )
        stages += [preflight, train, convert]
    return stages, str(configs[0]["actor_rollout_ref"]["model"]["path"])


def evaluation_stages(args: argparse.Namespace, run_dir: Path, base_model: str, tp: int) -> list[Stage]:
    """The paper's protocol on the base model and on every converted model, then the report against the base.
    Missing benchmark files are an error, or a warning in a dry run."""
    data_dir = Path(os.environ.get("DATA_DIR") or REPO_ROOT / "data")  # absolute: plan() made it so
    data = {name: data_dir / name / "test.parquet" for name in BENCHMARKS}
    missing = [str(path) for path in data.values() if not path.is_file()]
    data_note = f"{len(missing)} of {len(data)} benchmark files missing" if missing else "benchmark files present"
    if missing:
        message = (
            f"benchmark files missing: {', '.join(missing)}. Fix: for name in {' '.join(BENCHMARKS)}; do python "
            f"data_preprocess/$name.py --output_dir {data_dir}/$name; done (or set DATA_DIR)"
        )
        if not args.dry_run:
            raise ConfigError(message)
        logger.warning("%s", message)
    protocol = f"temperature {TEMPERATURE}, top-p {TOP_P}, {MAX_TOKENS} new tokens, k={args.k}"
    models = {"base": (base_model, Path(base_model.rstrip("/")).name)}
    models |= {m: (str(run_dir / "convert" / m / "model"), m) for m in args.methods}
    protocol_args = [
        "--data", *(f"{name}={path}" for name, path in data.items()),
        "--k", str(args.k), "--temperature", str(TEMPERATURE), "--top-p", str(TOP_P), "--max-tokens", str(MAX_TOKENS),
        "--backend", "vllm", "--tensor-parallel-size", str(tp), "--max-model-len", str(EVAL_MAX_MODEL_LEN),
        "--no-progress",
    ]  # fmt: skip
    stages = [
        Stage(
            f"eval/{name}",
            run_dir,
            cli_command("eval", "--model", model, "--label", label, *protocol_args, "--out", f"{run_dir}/eval/{name}"),
            checked=f"arguments parsed by eval's parser; {protocol}; {data_note}",
        )
        for name, (model, label) in models.items()
    ]
    report_dir = run_dir / "report"
    results = [str(run_dir / "eval" / m / "res.json") for m in args.methods]
    plot = ["--plot", str(report_dir / "report.png")] if importlib.util.find_spec("matplotlib") else ["--no-plot"]
    baseline = str(run_dir / "eval" / "base" / "res.json")
    command = cli_command("report", *results, "--baseline", baseline, "--out", str(report_dir / "report.md"), *plot)
    checked = "arguments parsed by report's parser; AES against eval/base"
    if plot[0] == "--no-plot":
        checked += "; no plot (matplotlib is not installed: pip install -e .[plot])"
    return [*stages, Stage("report", run_dir, command, rerun_when_changed=True, checked=checked)]


def plan(args: argparse.Namespace) -> list[Stage]:
    """Every stage of the run, composed and validated; the ``smartthinker-verl`` commands parsed by their parsers.

    ``DATA_DIR`` and a local ``MODEL_PATH`` become absolute paths first: the stages run from other folders (Ray
    workers keep the raylet's working directory), where a relative path names something else."""
    if os.environ.get("DATA_DIR"):
        os.environ["DATA_DIR"] = str(Path(os.environ["DATA_DIR"]).expanduser().resolve())
    model = os.environ.get("MODEL_PATH")
    if model and Path(model).expanduser().exists():
        os.environ["MODEL_PATH"] = str(Path(model).expanduser().resolve())
    recipe_name, default_tp = MODELS[args.model]
    run_dir = (args.run_dir or Path("runs") / f"reproduce-{args.model}").expanduser().resolve()
    stages, base_model = training_stages(args, RECIPES / recipe_name, run_dir)
    return stages + evaluation_stages(args, run_dir, base_model, args.eval_tp or default_tp)


def finished(stage: Stage) -> str | None:
    """Why ``stage`` is skipped (it finished with the same command), else None; raises when its command changed."""
    try:
        record = json.loads(stage.marker.read_text())
    except (OSError, ValueError):
        return None
    if record.get("command") == stage.recorded():
        return f"finished {record.get('finished', '?')} ({stage.marker})"
    if stage.rerun_when_changed:
        logger.info("%s: its inputs changed since it finished; running it again", stage.name)
        return None
    raise ConfigError(
        f"{stage.name} finished with another command than now:\n  then: {shlex.join(record.get('command', []))}\n"
        f"  now:  {shlex.join(stage.recorded())}\nFix: go back to the settings of then, or delete {stage.marker} "
        "to run the stage again with the new ones (and the stages after it that used its output)"
    )


def mark_done(stage: Stage) -> None:
    record = {"stage": stage.name, "command": stage.recorded(), "finished": datetime.now(timezone.utc).isoformat()}
    stage.marker.write_text(json.dumps(record, indent=2) + "\n")


def resolve_skips(stages: list[Stage]) -> None:
    """Mark finished stages; the preflight runs only while a training stage is still to run."""
    for stage in stages:
        if stage.skip is None and not stage.name.startswith("preflight/"):
            stage.skip = finished(stage)
    for stage in stages:
        if stage.name.startswith("preflight/") and stage.skip is None:
            train = next(s for s in stages if s.name == "train/" + stage.name.split("/", 1)[1])
            if train.skip is not None:
                stage.skip = f"{train.name} is finished (the preflight checks the cluster only before training)"


def run_stage(stage: Stage) -> int:
    """Run one stage, its output to the console and to its log; mark it done on success. The exit code."""
    stage.directory.mkdir(parents=True, exist_ok=True)
    stage.marker.unlink(missing_ok=True)
    runner = os.environ.get(RUNNER_ENV)
    command = [runner, stage.name, *stage.command] if runner else stage.command
    logger.info("%s: %s (log: %s)", stage.name, shlex.join(stage.command), stage.log)
    with stage.log.open("a") as log:
        log.write(f"# {datetime.now(timezone.utc).isoformat()} {shlex.join(command)}\n")
        log.flush()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **stage.env}
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sys.stdout.write(line)
                log.write(line)
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
        code = process.wait()
    if code == 0:
        mark_done(stage)
    return code


def print_plan(stages: Sequence[Stage], dry_run: bool) -> None:
    print(f"reproduce plan ({'dry run: nothing runs' if dry_run else 'running'}):")
    for index, stage in enumerate(stages, 1):
        status = f"skip: {stage.skip}" if stage.skip else "run"
        print(f"{index:2d}. {stage.name:24s} {status}")
        if dry_run:
            print(f"      checked: {stage.checked}")
        if not stage.skip or dry_run:
            env = "".join(f"{k}={v} " for k, v in stage.env.items())
            print(f"      {env}{shlex.join(stage.recorded())}")
            print(f"      log: {stage.log}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[reproduce %(asctime)s] %(message)s", datefmt="%H:%M:%S")
    return exit_status("reproduce", lambda: _reproduce(sys.argv[1:] if argv is None else argv))


def _reproduce(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    check_methods(args.methods)
    stages = plan(args)
    resolve_skips(stages)
    sys.stderr.flush()
    print_plan(stages, args.dry_run)
    sys.stdout.flush()
    if args.dry_run:
        print("dry run OK: every stage composed and validated; rerun without --dry-run to start")
        return 0
    for stage in stages:
        if stage.skip:
            logger.info("%s: skipped, %s", stage.name, stage.skip)
            continue
        code = run_stage(stage)
        if code != 0:
            logger.error("%s FAILED (exit %d); its log: %s. Rerun the same command to continue", stage.name, code,
                         stage.log)  # fmt: skip
            return code
        logger.info("%s: done", stage.name)
    report = next(s for s in stages if s.name == "report")
    logger.info("all stages done; the table: %s", report.directory / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
