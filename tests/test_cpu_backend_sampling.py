"""The hf rollout's sampling core: filters, greedy/sampled tokens, log-probs, EOS and length stops, left padding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from smartthinker_verl.backends.cpu.sampling import SamplingSettings, generate_batch, process_logits, sample_next


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A real (random, not warmed up) tiny Qwen2 and its tokenizer, built by the project's asset code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from smartthinker_verl.assets import build_tiny

    path = tmp_path_factory.mktemp("tiny")
    build_tiny(path, warm_up_steps=0)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_top_k_keeps_only_the_k_largest_logits():
    logits = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    out = process_logits(logits, SamplingSettings(temperature=1.0, top_k=2))
    assert torch.isfinite(out).tolist() == [[False, True, True, False]]


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = process_logits(probs.log(), SamplingSettings(temperature=1.0, top_p=0.7))
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]


def test_temperature_scales_logits():
    out = process_logits(torch.tensor([[2.0, 4.0]]), SamplingSettings(temperature=0.5))
    assert out.tolist() == [[4.0, 8.0]]


def test_greedy_picks_argmax_and_reports_its_log_prob():
    logits = torch.tensor([[0.0, 3.0, 1.0]])
    tokens, log_probs = sample_next(logits, SamplingSettings(temperature=0.0))
    assert tokens.tolist() == [1]
    assert log_probs.item() == pytest.approx(torch.log_softmax(logits, -1)[0, 1].item())


def test_sampling_never_picks_a_filtered_token():
    logits = torch.tensor([[5.0, 4.9, -1.0, -2.0]]).repeat(200, 1)
    tokens, _ = sample_next(logits, SamplingSettings(temperature=1.0, top_k=2), torch.Generator().manual_seed(0))
    assert set(tokens.tolist()) <= {0, 1}
    assert set(tokens.tolist()) == {0, 1}


def test_processed_and_raw_log_prob_modes_differ_under_temperature():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    gen = torch.Generator().manual_seed(0)
    _, raw = sample_next(logits, SamplingSettings(temperature=0.5, logprobs_mode="raw_logprobs"), gen)
    gen = torch.Generator().manual_seed(0)
    _, processed = sample_next(logits, SamplingSettings(temperature=0.5, logprobs_mode="processed_logprobs"), gen)
    assert raw.item() != pytest.approx(processed.item())


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -1.0}, {"top_p": 0.0}, {"top_p": 1.5}, {"logprobs_mode": "probabilities"}]
)
def test_bad_settings_are_rejected_with_the_field_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SamplingSettings(**kwargs)


def test_greedy_log_probs_match_a_full_forward_pass_with_left_padding(tiny_model):
    model, tokenizer = tiny_model
    prompts = [tokenizer("What is 1 + 2?")["input_ids"], tokenizer("7")["input_ids"]]
    outputs = generate_batch(
        model, prompts, [6, 6], SamplingSettings(temperature=0.0), [tokenizer.eos_token_id], tokenizer.pad_token_id
    )
    for prompt, out in zip(prompts, outputs, strict=True):
        full = torch.tensor([prompt + out.token_ids])
        with torch.no_grad():
            log_probs = model(full).logits.log_softmax(-1)[0, len(prompt) - 1 : -1]
        expected = log_probs.gather(-1, torch.tensor(out.token_ids)[:, None]).squeeze(-1)
        assert torch.allclose(expected, torch.tensor(out.log_probs), atol=1e-4)
        # greedy: each token is the argmax of the full-pass distribution
        assert log_probs.argmax(-1).tolist() == out.token_ids


def test_row_limits_are_respected_and_reported_as_length(tiny_model):
    model, tokenizer = tiny_model
    prompt = tokenizer("1 + 1")["input_ids"]
    outputs = generate_batch(
        model,
        [prompt, prompt],
        [3, 5],
        SamplingSettings(temperature=1.0),
        eos_token_ids=[10**6],  # never produced
        pad_token_id=tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(0),
    )
    assert [len(o.token_ids) for o in outputs] == [3, 5]
    assert [o.finish_reason for o in outputs] == ["length", "length"]


class _ScriptedModel(torch.nn.Module):
    """Test double (the EOS step must be forced, which a real random model cannot promise): row r emits token 1
    until step ``stop_at[r]``, where it emits EOS (id 0). Same call signature as a transformers causal LM."""

    def __init__(self, stop_at: list[int], vocab: int = 4) -> None:
        super().__init__()
        self.stop_at = stop_at
        self.vocab = vocab

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=True):
        step = 0 if past_key_values is None else past_key_values + 1
        logits = torch.full((input_ids.shape[0], input_ids.shape[1], self.vocab), -10.0)
        for row, stop in enumerate(self.stop_at):
            logits[row, -1, 0 if step == stop else 1] = 10.0
        return SimpleNamespace(logits=logits, past_key_values=step)


def test_generation_stops_at_eos_per_row_and_keeps_the_stop_token():
    outputs = generate_batch(
        _ScriptedModel(stop_at=[1, 3]), [[2, 2], [2]], [8, 8], SamplingSettings(temperature=0.0), [0], pad_token_id=3
    )
    assert outputs[0].token_ids == [1, 0]
    assert outputs[1].token_ids == [1, 1, 1, 0]
    assert [o.finish_reason for o in outputs] == ["stop", "stop"]


def test_invalid_batches_are_rejected():
    model = _ScriptedModel(stop_at=[0])
    with pytest.raises(ValueError, match="token limits"):
        generate_batch(model, [[1]], [0], SamplingSettings(), [0], 3)
    with pytest.raises(ValueError, match="at least one token"):
        generate_batch(model, [[]], [2], SamplingSettings(), [0], 3)
    with pytest.raises(ValueError, match="2 prompts but 1"):
        generate_batch(model, [[1], [1]], [2], SamplingSettings(), [0], 3)
    assert generate_batch(model, [], [], SamplingSettings(), [0], 3) == []
