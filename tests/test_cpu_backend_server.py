"""The hf rollout server (the Ray actor's class, called directly: same code, no Ray needed) and the adapter."""

from __future__ import annotations

import asyncio

import pytest
import torch

from smartthinker_verl.backends.cpu.server import HFRolloutServer


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    from smartthinker_verl.assets import build_tiny

    path = tmp_path_factory.mktemp("tiny-server")
    build_tiny(path, warm_up_steps=0)
    return str(path)


@pytest.fixture()
def server(tiny_path):
    from omegaconf import OmegaConf
    from verl.workers.config import RolloutConfig

    config = RolloutConfig(name="hf", prompt_length=32, response_length=6, tensor_model_parallel_size=1)
    model_config = OmegaConf.create({"path": tiny_path})
    return HFRolloutServer(config=config, model_config=model_config, replica_rank=0)


def _prompt(server, text="What is 1 + 1?"):
    return server.model_config.tokenizer(text)["input_ids"]


def test_concurrent_requests_are_answered_in_one_batch_with_log_probs(server, monkeypatch):
    import smartthinker_verl.backends.cpu.server as server_module

    sizes = []
    real = server_module.generate_batch

    def recording(model, prompts, *args, **kwargs):
        sizes.append(len(prompts))
        return real(model, prompts, *args, **kwargs)

    monkeypatch.setattr(server_module, "generate_batch", recording)

    async def main():
        params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}
        return await asyncio.gather(
            *[
                server.generate(prompt_ids=_prompt(server), sampling_params=dict(params), request_id=str(i))
                for i in range(5)
            ]
        )

    outputs = asyncio.run(main())
    assert sizes == [5]
    for out in outputs:
        assert 1 <= len(out.token_ids) <= 6
        assert len(out.log_probs) == len(out.token_ids)
        assert all(lp <= 0 for lp in out.log_probs)
        assert out.stop_reason == "completed"


def test_log_probs_are_omitted_unless_requested_and_max_tokens_is_honoured(server):
    out = asyncio.run(
        server.generate(prompt_ids=_prompt(server), sampling_params={"temperature": 0, "max_tokens": 2}, request_id="a")
    )
    assert out.log_probs is None
    assert len(out.token_ids) <= 2


def test_prompt_without_room_is_rejected_with_the_fix(server):
    with pytest.raises(ValueError, match="max_model_len"):
        asyncio.run(server.generate(prompt_ids=[1] * 64, sampling_params={}, request_id="long"))


def test_pushed_weights_change_what_the_server_generates(server):
    async def greedy():
        out = await server.generate(prompt_ids=_prompt(server), sampling_params={"temperature": 0}, request_id="g")
        return out.token_ids

    before = asyncio.run(greedy())
    state = {name: torch.zeros_like(t) for name, t in server.model.state_dict().items()}
    # all-zero weights make every logit equal: greedy then picks token 0
    loaded = asyncio.run(server.update_weights(state, global_steps=3))
    after = asyncio.run(greedy())
    assert loaded == len(state)
    assert after != before and set(after) == {0}
    info = asyncio.run(server.ping())
    assert info["global_steps"] == 3 and info["num_weight_updates"] == 1


def test_weights_of_another_model_are_refused(server):
    with pytest.raises(RuntimeError, match="same model path"):
        asyncio.run(server.update_weights({"other.weight": torch.zeros(2)}))


def test_sleep_wake_and_cache_calls_are_accepted(server):
    async def calls():
        await server.sleep()
        await server.wake_up(tags=["weights"])
        await server.clear_kv_cache()
        await server.release_kv_cache()
        await server.resume_kv_cache()
        await server.wait_for_requests_to_drain()
        await server.resume_generation()
        return await server.abort_all_requests()

    assert asyncio.run(calls()) == {"aborted_count": 0, "request_ids": []}


def test_adapter_gathers_weights_and_rejects_unsupported_formats():
    from smartthinker_verl.backends.cpu.replica import HFServerAdapter, server_actor_name

    adapter = HFServerAdapter.__new__(HFServerAdapter)  # no verl worker here: only the methods under test
    adapter._has_server = False
    adapter.server_handle = None
    adapter.replica_rank = 0
    with pytest.raises(NotImplementedError, match="named_tensors"):
        asyncio.run(adapter.update_weights(iter([]), wire_format="delta_flush"))
    consumed = []

    def weights():
        for i in range(3):
            consumed.append(i)
            yield f"w{i}", torch.ones(2)

    assert asyncio.run(adapter.update_weights(weights())) is None
    assert consumed == [0, 1, 2]  # every rank iterates (FSDP gathers are collective)
    assert server_actor_name(2) == "hf_server_2_0"


def test_unsupported_sampling_options_are_refused_not_ignored(server):
    with pytest.raises(NotImplementedError, match="repetition_penalty=1.2"):
        asyncio.run(
            server.generate(prompt_ids=_prompt(server), sampling_params={"repetition_penalty": 1.2}, request_id="r")
        )
    # verl's neutral values pass
    out = asyncio.run(
        server.generate(
            prompt_ids=_prompt(server), sampling_params={"repetition_penalty": 1.0, "temperature": 0}, request_id="n"
        )
    )
    assert out.token_ids
