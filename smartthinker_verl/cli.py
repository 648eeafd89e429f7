"""The ``smartthinker-verl`` console script: ``convert | eval | report | check-config | doctor | arena``.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and ``run(args) -> int``; the
module is imported only when its subcommand runs, so ``smartthinker-verl --help`` stays fast. A
:class:`~smartthinker_verl.errors.SmartThinkerError` (bad input or configuration) is printed as one line with the fix
and exits 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from smartthinker_verl.errors import SmartThinkerError

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "convert": ("smartthinker_verl.convert", "FSDP checkpoint of a run -> Hugging Face model (verified)"),
    "eval": ("smartthinker_verl.evaluation.cli", "generate and grade on benchmark parquet files, or grade a JSONL"),
    "report": ("smartthinker_verl.evaluation.report", "Markdown table and plot comparing evaluation results"),
    "check-config": ("smartthinker_verl.launch.check_config", "compose and validate a recipe's config without GPUs"),
    "doctor": (
        "smartthinker_verl.launch.doctor",
        "preflight of a run on its Ray cluster (every node: checkpoint folder, disk, wandb, plugin; GPU nodes: GPUs)",
    ),
    "arena": ("smartthinker_verl.arena.cli", "every length method on simulated prompts whose best length is known"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the chosen subcommand (importing every module would slow every call down).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="smartthinker-verl", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_module=module)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return exit_status(f"smartthinker-verl {args.command}", lambda: args._module.run(args))


def positive(text: str) -> int:
    """argparse type of the CLIs' counts: an integer >= 1 (argparse names the flag and exits 2 otherwise)."""
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return int(text)


def exit_status(program: str, call: Callable[[], int | None]) -> int:
    """Run ``call`` and return its exit status; a :class:`SmartThinkerError` (bad input or configuration) becomes
    one line with the fix and exit 2, the one place that does so. Any other exception is a bug (traceback)."""
    try:
        return int(call() or 0)
    except SmartThinkerError as error:
        logging.getLogger(__name__).debug("%s failed", program, exc_info=True)
        print(f"{program}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
