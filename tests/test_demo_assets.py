"""Offline assets, demo data and the demo report of the CPU runs."""

from __future__ import annotations

import json
import math
import re

import pytest

from smartthinker_verl.data import read_parquet
from smartthinker_verl.demo import assets
from smartthinker_verl.demo import data as demo_data
from smartthinker_verl.demo import report as demo_report
from smartthinker_verl.errors import ConfigError, DataError


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTTHINKER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tiny_asset_is_a_loadable_chat_model_whose_think_tags_survive_decoding(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assets.build_tiny(tmp_path, warm_up_steps=0)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert tokenizer.eos_token == "<|im_end|>"
    assert model.config.vocab_size == len(tokenizer)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tokenizer("<think>x</think> \\boxed{3}", add_special_tokens=False)["input_ids"]
    assert "</think>" in tokenizer.decode(ids, skip_special_tokens=True)


def test_warm_up_lowers_the_response_loss(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assets.build_tiny(tmp_path, warm_up_steps=0)
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    first = assets.warm_up_tiny(model, tokenizer, steps=1)
    later = assets.warm_up_tiny(model, tokenizer, steps=30)
    assert later < first


def test_missing_asset_names_the_command_to_run(cache, capsys):
    assert assets.main(["path", "smollm2"]) == 2
    assert "Run: python -m smartthinker_verl.demo.assets prepare smollm2" in capsys.readouterr().err
    with pytest.raises(assets.SetupError, match="unknown asset"):
        assets.require("gpt5")


def test_prepare_builds_once_and_atomically(cache, monkeypatch):
    calls = []

    def fake_build(out):
        calls.append(out)
        (out / "model.txt").write_text("ok")

    monkeypatch.setitem(assets.BUILDERS, "tiny", fake_build)
    path = assets.prepare("tiny")
    assert assets.prepare("tiny") == path == assets.require("tiny")
    assert len(calls) == 1 and (path / "model.txt").read_text() == "ok"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tiny-")]  # no temp folders left


def test_a_tiny_asset_cached_by_an_older_builder_is_never_reused(cache, monkeypatch):
    stale = cache / "tiny"  # the unversioned folder of the builder before v2 (head size 16: vLLM cannot serve it)
    stale.mkdir(parents=True)
    (stale / ".complete").write_text("ok\n")
    monkeypatch.setitem(assets.BUILDERS, "tiny", lambda out: (out / "model.txt").write_text("new"))
    path = assets.prepare("tiny")
    assert path.name == f"tiny-v{assets.ASSET_VERSIONS['tiny']}" and (path / "model.txt").read_text() == "new"


def test_tiny_model_has_a_head_size_vllms_cpu_attention_supports(tmp_path):
    from transformers import AutoConfig

    assets.build_tiny(tmp_path, warm_up_steps=0)
    config = AutoConfig.from_pretrained(tmp_path)
    assert config.hidden_size // config.num_attention_heads >= 32


def test_tiny_warm_up_data_has_right_and_wrong_answers_with_thinking_of_varying_length():
    import random

    rng = random.Random(0)
    samples = [(a, b, assets._tiny_response(rng, a, b)) for a in range(5) for b in range(5) for _ in range(8)]
    right = [text for a, b, text in samples if text.endswith(f"\\boxed{{{a + b}}}.")]
    assert 0.4 < len(right) / len(samples) < 0.95
    assert len({len(text) for text in right}) >= 4  # correct answers of different lengths: the shaping has work


def test_failed_build_leaves_nothing_behind(cache, monkeypatch):
    def broken(out):
        (out / "half.bin").write_text("x")
        raise RuntimeError("boom")

    monkeypatch.setitem(assets.BUILDERS, "tiny", broken)
    with pytest.raises(RuntimeError, match="boom"):
        assets.prepare("tiny")
    with pytest.raises(assets.SetupError):
        assets.require("tiny")
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("difficulty", demo_data.DIFFICULTIES)
def test_arithmetic_rows_are_reproducible_and_correct(difficulty):
    rows = demo_data.arithmetic_rows(20, split="train", seed=3, difficulty=difficulty)
    assert rows == demo_data.arithmetic_rows(20, split="train", seed=3, difficulty=difficulty)
    for row in rows:
        question = row["extra_info"]["question"]
        expression = re.sub(r"^(What is|Compute) ", "", question).rstrip("?.").replace("times", "*")
        assert str(eval(expression)) == row["reward_model"]["ground_truth"]  # noqa: S307 (generated digits only)
        assert "\\boxed{}" in row["prompt"][0]["content"]


def test_unknown_difficulty_and_empty_sets_are_rejected(tmp_path, capsys):
    with pytest.raises(ConfigError, match="difficulty"):
        demo_data.arithmetic_rows(2, split="train", seed=0, difficulty="olympiad")
    assert demo_data.main(["--out", str(tmp_path), "--train", "0"]) == 2
    assert "no rows" in capsys.readouterr().err


def test_gsm8k_items_become_rows_with_the_final_answer(tmp_path):
    (tmp_path / "0000.toml").write_text(
        'question = "Tom has 1,200 apples and buys 34. How many?"\n'
        'answer = """\nHe has 1,200 + 34 = <<1200+34=1234>>1,234.\n#### 1,234\n"""\nid_orig = 7\n'
    )
    (row,) = demo_data.gsm8k_rows(tmp_path)
    assert row["reward_model"]["ground_truth"] == "1234"
    assert row["data_source"] == "openai/gsm8k" and row["extra_info"]["id_orig"] == 7
    (tmp_path / "0001.toml").write_text('question = "?"\nanswer = "no final line"\n')
    with pytest.raises(DataError, match=r"0001\.toml: GSM8K solution has no '#### answer'"):
        demo_data.gsm8k_rows(tmp_path)


def test_demo_data_cli_writes_verl_parquet(tmp_path):
    assert demo_data.main(["--out", str(tmp_path), "--train", "5", "--val", "3", "--difficulty", "digits"]) == 0
    assert len(read_parquet(tmp_path / "train.parquet")) == 5
    assert [r["extra_info"]["split"] for r in read_parquet(tmp_path / "val.parquet")] == ["test"] * 3


def _write_metrics(path, records):
    path.write_text("".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in records))


def test_report_compares_first_and_last_values(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    _write_metrics(
        metrics,
        [
            (0, {"val-core/a/acc/mean@1": 0.25, "val-aux/a/response_length/mean@1": 90.0}),
            (
                1,
                {
                    "smartthinker/accuracy/mean": 0.5,
                    "response_length/mean": 80.0,
                    "smartthinker/optimal_length/mean": math.nan,
                    "smartthinker/coefficient/mean": math.nan,
                },
            ),
            (
                2,
                {
                    "smartthinker/accuracy/mean": 0.6,
                    "response_length/mean": 70.0,
                    "smartthinker/optimal_length/mean": 60.0,
                    "smartthinker/coefficient/mean": 0.4,
                },
            ),
            (
                3,
                {
                    "smartthinker/accuracy/mean": 0.7,
                    "response_length/mean": 50.0,
                    "smartthinker/optimal_length/mean": 45.0,
                    "smartthinker/coefficient/mean": 0.2,
                    "val-core/a/acc/mean@1": 0.5,
                    "val-aux/a/response_length/mean@1": 55.0,
                },
            ),
        ],
    )
    rows = {r["metric"]: r for r in demo_report.summarize(demo_report.read_metrics(metrics))}
    assert (rows["validation accuracy"]["before"], rows["validation accuracy"]["after"]) == (0.25, 0.5)
    assert (rows["validation mean response tokens"]["before"], rows["validation mean response tokens"]["after"]) == (
        90,
        55,
    )
    assert rows["optimal length (mixed groups)"]["before_step"] == 2  # NaN steps (no mixed group) are skipped
    assert rows["length coefficient (mixed groups)"]["after"] == 0.2
    assert demo_report.main([str(metrics), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "metrics.png").stat().st_size > 1000
    assert "| validation accuracy | 0.250 (step 0) | 0.500 (step 3) |" in (tmp_path / "report.md").read_text()


def test_report_errors_name_the_problem(tmp_path):
    assert demo_report.main([str(tmp_path / "none.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        demo_report.read_metrics(bad)


def test_report_gives_each_level_and_their_mean(tmp_path):
    """The demo validates one data source per reasoning-gym level: a row per level, the headline row is the mean."""
    levels = {
        "reasoning_gym/chain_sum/terms2": (0.5, 20.0, 0.75, 18.0),
        "reasoning_gym/chain_sum/terms4": (0.1, 60.0, 0.25, 50.0),
    }
    records = []
    for step, offset in ((0, 0), (4, 2)):
        data = {}
        for source, values in levels.items():
            data[f"val-core/{source}/acc/mean@1"] = values[offset]
            data[f"val-aux/{source}/response_length/mean@1"] = values[offset + 1]
        records.append((step, data))
    metrics = tmp_path / "metrics.jsonl"
    _write_metrics(metrics, records)
    rows = {r["metric"]: r for r in demo_report.summarize(demo_report.read_metrics(metrics))}
    assert (rows["validation accuracy"]["before"], rows["validation accuracy"]["after"]) == (0.3, 0.5)
    assert rows["validation mean response tokens"]["after"] == 34.0
    assert (rows["validation accuracy, terms4"]["before"], rows["validation accuracy, terms4"]["after"]) == (0.1, 0.25)
    assert rows["validation mean response tokens, terms2"]["after_step"] == 4
