"""The `smartthinker` reward-loop manager on real verl DataProto items decoded with the real Qwen tokenizer."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (plugin loaded through the entry point)
from omegaconf import OmegaConf
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls

from smartthinker_verl.errors import ConfigError, SmartThinkerError

PROMPT = "What is 2 + 2? Please reason step by step, and put your final answer within \\boxed{}."
RESPONSE_WIDTH = 64

#: Keys of reward_extra_info for every response (a custom function's own keys come on top).
EXTRA_KEYS = ("score", "acc", "think_closed", "grading_timed_out", "grading_errors", "response_length", "truncated")


def trainer_config(require_think_close=None, response_length=RESPONSE_WIDTH, reward_kwargs=None):
    """verl's config as the manager sees it: its own options under reward.smartthinker (the recipes' route)."""
    reward = {"custom_reward_function": {"path": None, "name": "compute_score"}}
    if require_think_close is not None:
        reward["smartthinker"] = {"require_think_close": require_think_close}
    if reward_kwargs is not None:
        reward["custom_reward_function"]["reward_kwargs"] = reward_kwargs
    return OmegaConf.create({"reward": reward, "actor_rollout_ref": {"rollout": {"response_length": response_length}}})


def make_item(tokenizer, response_text: str, ground_truth="4", truncate_to=None) -> DataProto:
    """One trajectory laid out as verl's agent loop hands it to the reward loop (left-padded prompt, right-padded
    response, one attention mask over both)."""
    prompt_ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    prompt_ids = torch.tensor(prompt_ids)[None]
    response_ids = tokenizer(response_text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    response_ids = response_ids[:, : truncate_to or RESPONSE_WIDTH]
    valid = response_ids.shape[1]
    pad = tokenizer.pad_token_id
    responses = torch.full((1, RESPONSE_WIDTH), pad)
    responses[0, :valid] = response_ids[0]
    attention = torch.cat([torch.ones_like(prompt_ids), (torch.arange(RESPONSE_WIDTH) < valid)[None].long()], dim=1)
    return DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": responses,
            "input_ids": torch.cat([prompt_ids, responses], dim=1),
            "attention_mask": attention,
        },
        non_tensors={
            "data_source": np.array(["openai/gsm8k"], dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": ground_truth}], dtype=object),
            "extra_info": np.array([{"split": "test", "index": 0}], dtype=object),
        },
    )


def run_manager(config, tokenizer, items):
    async def score_all():
        cls = get_reward_manager_cls("smartthinker")
        manager = cls(config=config, tokenizer=tokenizer, compute_score=None)
        return await asyncio.gather(*(manager.run_single(item) for item in items))

    return asyncio.run(score_all())


def test_scores_and_extras_for_every_response(qwen_tokenizer):
    texts = [
        "<think>2 plus 2 is 4.</think>\nThe answer is \\boxed{4}.",  # Qwen3 shape: tags in the response
        "2 plus 2 is 4.\n</think>\n\n\\boxed{4}",  # R1-Distill shape: <think> was in the prompt
        "<think>2 plus 2 is 5.</think> \\boxed{5}",
        "<think>2 plus 2 is 4, so \\boxed{4}",  # never closes its thinking
        "",  # empty response
    ]
    results = run_manager(trainer_config(), qwen_tokenizer, [make_item(qwen_tokenizer, t) for t in texts])
    assert [r["reward_score"] for r in results] == [1.0, 1.0, 0.0, 0.0, 0.0]
    for result in results:
        assert tuple(sorted(result["reward_extra_info"])) == tuple(sorted(EXTRA_KEYS))
    assert [r["reward_extra_info"]["think_closed"] for r in results] == [True, True, True, False, False]
    assert results[0]["reward_extra_info"]["acc"] == 1.0
    assert results[4]["reward_extra_info"]["response_length"] == 0
    assert results[0]["reward_extra_info"]["response_length"] == len(
        qwen_tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    )


def test_truncated_response_is_flagged_and_scores_zero(qwen_tokenizer):
    long_text = "<think>" + "let me think again. " * 40 + "</think> \\boxed{4}"
    (result,) = run_manager(trainer_config(), qwen_tokenizer, [make_item(qwen_tokenizer, long_text)])
    assert result["reward_extra_info"]["truncated"] is True
    assert result["reward_extra_info"]["response_length"] == RESPONSE_WIDTH
    assert result["reward_score"] == 0.0  # the length limit cut the thinking before </think>


@pytest.mark.parametrize("gate", [False, "false"])
def test_think_gate_can_be_turned_off_from_verls_config(qwen_tokenizer, gate):
    items = [make_item(qwen_tokenizer, "2 plus 2 is 4, so \\boxed{4}")]
    (result,) = run_manager(trainer_config(require_think_close=gate), qwen_tokenizer, items)
    assert result["reward_score"] == 1.0 and result["reward_extra_info"]["think_closed"] is False


@pytest.mark.parametrize("is_async", [False, True])
def test_custom_scorer_still_gets_the_extras(qwen_tokenizer, is_async):
    calls = []

    def half_credit(data_source, solution_str, ground_truth, extra_info):
        calls.append((data_source, ground_truth))
        return 0.5

    async def half_credit_async(**kwargs):
        return half_credit(**kwargs)

    async def score():
        cls = get_reward_manager_cls("smartthinker")
        function = half_credit_async if is_async else half_credit
        manager = cls(config=trainer_config(), tokenizer=qwen_tokenizer, compute_score=function)
        return await manager.run_single(make_item(qwen_tokenizer, "</think>\\boxed{4}"))

    result = asyncio.run(score())
    assert result["reward_score"] == 0.5 and calls == [("openai/gsm8k", "4")]
    assert tuple(sorted(result["reward_extra_info"])) == tuple(sorted(EXTRA_KEYS))


@pytest.mark.parametrize("reward_model", [{"style": "rule"}, {"style": "rule", "ground_truth": None}, {}, None])
def test_missing_ground_truth_scores_zero_and_is_counted(qwen_tokenizer, reward_model):
    item = make_item(qwen_tokenizer, "</think>\\boxed{4}")
    item.non_tensor_batch["reward_model"] = np.array([reward_model], dtype=object)
    (result,) = run_manager(trainer_config(), qwen_tokenizer, [item])
    assert result["reward_score"] == 0.0 and result["reward_extra_info"]["grading_errors"] == 1
    assert tuple(sorted(result["reward_extra_info"])) == tuple(sorted(EXTRA_KEYS))


def test_options_the_chosen_route_would_ignore_are_refused_with_the_fix(qwen_tokenizer):
    cls = get_reward_manager_cls("smartthinker")
    # the gate as a custom function's keyword, but no custom function: the manager's own scorer would ignore it
    stray = trainer_config(reward_kwargs={"require_think_close": False})
    with pytest.raises(ConfigError, match="reward.smartthinker.require_think_close=false"):
        cls(config=stray, tokenizer=qwen_tokenizer, compute_score=None)
    # the manager's option, but a custom function scores: it would never see it
    with pytest.raises(ConfigError, match="reward_kwargs"):
        cls(config=trainer_config(require_think_close=False), tokenizer=qwen_tokenizer, compute_score=lambda **_: 1.0)
    typo = OmegaConf.create({"reward": {"smartthinker": {"require_think_closed": False}}})
    with pytest.raises(ConfigError, match="unknown key"):
        cls(config=typo, tokenizer=qwen_tokenizer, compute_score=None)


@pytest.mark.parametrize("manager", ["smartthinker", "naive"])
def test_scorer_loaded_by_verl_as_custom_reward_function(qwen_tokenizer, manager):
    """Our scorer as any manager's custom_reward_function: verl loads pkg://smartthinker_verl.scoring and binds its
    reward_kwargs (the gate)."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    config = trainer_config(reward_kwargs={"require_think_close": False})
    config.reward.custom_reward_function.path = "pkg://smartthinker_verl.scoring"
    compute_score = get_custom_reward_fn(config)
    items = [make_item(qwen_tokenizer, t) for t in ["so \\boxed{4}", "so \\boxed{5}"]]

    async def score_all():
        cls = get_reward_manager_cls(manager)
        instance = cls(config=config, tokenizer=qwen_tokenizer, compute_score=compute_score)
        return await asyncio.gather(*(instance.run_single(item) for item in items))

    results = asyncio.run(score_all())
    assert [r["reward_score"] for r in results] == [1.0, 0.0]
    assert all(r["reward_extra_info"]["think_closed"] is False for r in results)


def test_built_by_verl_without_a_custom_function_the_manager_grades_with_its_own_scorer(qwen_tokenizer):
    """verl's load_reward_manager hands every manager its generic default_compute_score when no
    custom_reward_function is configured (which raises NotImplementedError for DeepScaleR's data source). The
    smartthinker manager must grade with its own scorer then, and read its gate from reward.smartthinker."""
    from verl.trainer.ppo.reward import load_reward_manager

    config = OmegaConf.merge(
        trainer_config(require_think_close=False),
        {"reward": {"reward_manager": {"source": "register", "name": "smartthinker"}, "sandbox_fusion": None}},
    )
    item = make_item(qwen_tokenizer, "2 plus 2 is 4, so \\boxed{4}")
    item.non_tensor_batch["data_source"] = np.array(["agentica-org/DeepScaleR-Preview-Dataset"], dtype=object)

    async def score():
        manager = load_reward_manager(config, qwen_tokenizer)
        return await manager.run_single(item)

    result = asyncio.run(score())
    assert result["reward_score"] == 1.0 and result["reward_extra_info"]["think_closed"] is False


def agent_loop_item(tokenizer, response_text: str) -> DataProto:
    """An item carrying what verl's agent loop adds for tool-using, multi-turn rollouts."""
    item = make_item(tokenizer, response_text)
    item.non_tensor_batch["tool_extra_fields"] = np.array([{"tool_calls": 2}], dtype=object)
    item.non_tensor_batch["__num_turns__"] = np.array([3], dtype=object)
    item.non_tensor_batch["reward_scores"] = np.array([{"format": 0.5}], dtype=object)
    return item


def test_custom_function_sees_exactly_the_extra_info_of_verls_naive_manager(qwen_tokenizer):
    import copy

    seen: dict[str, dict] = {}
    results = {}
    for name in ("naive", "smartthinker"):

        def record(data_source, solution_str, ground_truth, extra_info, _name=name):
            seen[_name] = copy.deepcopy(extra_info)
            return {"score": 1.0, "format_ok": True}

        async def score(_name=name, _fn=record):
            manager = get_reward_manager_cls(_name)(
                config=trainer_config(), tokenizer=qwen_tokenizer, compute_score=_fn
            )
            return await manager.run_single(agent_loop_item(qwen_tokenizer, "</think>\\boxed{4}"))

        results[name] = asyncio.run(score())
    assert seen["smartthinker"] == seen["naive"]
    assert {"num_turns", "rollout_reward_scores", "tool_calls", "split", "index"} <= set(seen["naive"])
    # naive's extras (the function's own keys) plus ours
    assert set(results["smartthinker"]["reward_extra_info"]) == set(results["naive"]["reward_extra_info"]) | set(
        EXTRA_KEYS
    )


def test_grading_pool_options_come_from_the_config(qwen_tokenizer, monkeypatch):
    cls = get_reward_manager_cls("smartthinker")
    config = trainer_config()
    config.reward.smartthinker = {"grade_timeout_s": 7, "grader_processes": 1}
    monkeypatch.setenv("SMARTTHINKER_GRADER_PROCESSES", "many")  # set options win over a malformed default
    manager = cls(config=config, tokenizer=qwen_tokenizer, compute_score=None)
    assert manager.pool_settings == (1, 7.0)
    (result,) = run_manager(config, qwen_tokenizer, [make_item(qwen_tokenizer, "</think>\\boxed{4}")])
    assert result["reward_score"] == 1.0
    # left null, the environment's default is used, and a malformed one fails when the worker starts
    with pytest.raises(SmartThinkerError, match="SMARTTHINKER_GRADER_PROCESSES='many'"):
        cls(config=trainer_config(), tokenizer=qwen_tokenizer, compute_score=None)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("grade_timeout_s", 0, "reward.smartthinker.grade_timeout_s=0 must be > 0. Fix: a number, or null"),
        ("grade_timeout_s", "soon", "reward.smartthinker.grade_timeout_s='soon'"),
        ("grader_processes", 1.5, "reward.smartthinker.grader_processes=1.5 must be a whole number"),
        ("grader_processes", True, "reward.smartthinker.grader_processes=True"),
    ],
)
def test_bad_grading_pool_options_name_the_fix(qwen_tokenizer, key, value, message):
    config = trainer_config()
    config.reward.smartthinker = {key: value}
    with pytest.raises(ConfigError, match=message):
        get_reward_manager_cls("smartthinker")(config=config, tokenizer=qwen_tokenizer, compute_score=None)


def test_grading_pool_options_are_refused_when_a_custom_function_scores(qwen_tokenizer):
    config = trainer_config()
    config.reward.smartthinker = {"grade_timeout_s": 30}
    with pytest.raises(ConfigError, match="reward_kwargs"):
        get_reward_manager_cls("smartthinker")(config=config, tokenizer=qwen_tokenizer, compute_score=lambda **_: 1.0)
