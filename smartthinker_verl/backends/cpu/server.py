"""The ``hf`` rollout server: a Ray actor that samples with transformers on CPU, behind verl's rollout server API.

verl's agent loop calls ``generate(prompt_ids=, sampling_params=, request_id=)`` once per response, concurrently;
the server gathers the requests that arrive together into batches (same sampling settings), runs them through
:func:`smartthinker_verl.backends.cpu.sampling.generate_batch` in a worker thread, and answers each with a
:class:`verl.workers.rollout.replica.TokenOutput`. The trainer pushes its weights after every update
(:meth:`HFRolloutServer.update_weights`). The sleep / wake-up / KV-cache calls verl makes around weight syncs are
accepted and do nothing: on CPU the model stays resident and the KV cache lives only inside one batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from typing import Any

import torch

from smartthinker_verl.backends.cpu.sampling import SamplingSettings, generate_batch

logger = logging.getLogger(__name__)

#: Seconds a batch waits for more requests after the first one arrives (verl submits a step's requests together).
BATCH_WINDOW_S = float(os.environ.get("SMARTTHINKER_CPU_BATCH_WINDOW_S", "0.05"))
#: Upper bound on one batch; ``rollout.max_num_seqs`` lowers it further.
MAX_BATCH = int(os.environ.get("SMARTTHINKER_CPU_MAX_BATCH", "64"))


@dataclasses.dataclass
class _Request:
    prompt_ids: list[int]
    max_tokens: int
    settings: SamplingSettings
    future: asyncio.Future


class HFRolloutServer:
    """Token-in / token-out generation with a transformers model on CPU (one per rollout replica).

    Args:
        config: verl's rollout config (``RolloutConfig`` or its DictConfig).
        model_config: verl's model config (``actor_rollout_ref.model``).
        replica_rank: rank of the replica this server belongs to (seeds the sampler).
    """

    def __init__(self, config: Any, model_config: Any, replica_rank: int = 0) -> None:
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        self.config = omega_conf_to_dataclass(config)
        self.model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.replica_rank = replica_rank
        self.global_steps: int | None = None
        self.num_weight_updates = 0
        self._queue: list[_Request] = []
        self._wakeup: asyncio.Event | None = None
        self._batcher: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None
        self._in_flight = 0
        threads = int(os.environ.get("SMARTTHINKER_CPU_THREADS", "0")) or (os.cpu_count() or 1)
        torch.set_num_threads(threads)
        self.model, self.eos_token_ids, self.pad_token_id = self._load_model()
        self.generator = torch.Generator().manual_seed(int(getattr(self.config, "seed", 0) or 0) + replica_rank)
        self.max_batch = max(1, min(MAX_BATCH, int(getattr(self.config, "max_num_seqs", MAX_BATCH) or MAX_BATCH)))
        logger.info(
            "hf rollout server %d ready: %s (%d threads, batches of up to %d)",
            replica_rank,
            self.model_config.local_path,
            threads,
            self.max_batch,
        )

    # ------------------------------------------------------------------ model
    def _load_model(self) -> tuple[torch.nn.Module, list[int], int]:
        from transformers import AutoModelForCausalLM

        path = self.model_config.local_path
        try:
            model = AutoModelForCausalLM.from_pretrained(
                path, dtype=torch.float32, trust_remote_code=self.model_config.trust_remote_code
            )
        except OSError as error:
            raise RuntimeError(
                f"hf rollout: cannot load the model at {path!r} ({error}). Check actor_rollout_ref.model.path; for the "
                "demo assets run `python -m smartthinker_verl.assets prepare`."
            ) from error
        model.eval()
        tokenizer = self.model_config.tokenizer
        eos: set[int] = set()
        generation_config = self.model_config.generation_config
        for source in (getattr(generation_config, "eos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(int(token) for token in source)
        if not eos:
            raise RuntimeError(
                f"hf rollout: the model at {path!r} defines no eos token; set eos_token in its tokenizer"
            )
        pad = getattr(tokenizer, "pad_token_id", None)
        pad = int(pad) if pad is not None else min(eos)
        return model, sorted(eos), pad

    # ------------------------------------------------------------- generation
    def _max_tokens(self, prompt_len: int, sampling_params: dict[str, Any]) -> int:
        """Same budget rule as verl's vLLM server: the response length, capped by the model's context."""
        budget = self.config.prompt_length + self.config.response_length
        max_model_len = getattr(self.config, "max_model_len", None) or budget
        room = int(max_model_len) - prompt_len
        if room < 1:
            raise ValueError(
                f"prompt of {prompt_len} tokens leaves no room to generate within max_model_len={max_model_len}; "
                "raise data.max_prompt_length / rollout.max_model_len or shorten the prompts"
            )
        requested = sampling_params.pop("max_tokens", None) or sampling_params.pop("max_new_tokens", None)
        if requested is None:
            requested = min(self.config.response_length, budget - prompt_len)
        return max(1, min(int(requested), room))

    #: Sampling options verl may send that this backend does not implement, with their neutral values.
    UNSUPPORTED: dict[str, Any] = {
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop": None,
        "stop_token_ids": None,
        "ignore_eos": False,
    }

    def _settings(self, sampling_params: dict[str, Any]) -> SamplingSettings:
        for key, neutral in self.UNSUPPORTED.items():
            value = sampling_params.get(key, neutral)
            if value not in (neutral, [], ()):
                raise NotImplementedError(
                    f"the hf CPU rollout does not implement {key}={value!r}; leave it at {neutral!r} or use vllm"
                )
        top_k = sampling_params.get("top_k", -1)
        return SamplingSettings(
            temperature=float(sampling_params.get("temperature", 1.0)),
            top_p=float(sampling_params.get("top_p", 1.0)),
            top_k=int(top_k) if top_k is not None else -1,
            logprobs_mode=str(getattr(self.config, "logprobs_mode", "processed_logprobs") or "processed_logprobs"),
        )

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Any = None,
        video_data: Any = None,
        **kwargs: Any,
    ):
        """Sample one response for ``prompt_ids``; returns verl's ``TokenOutput`` (ids, log-probs, stop reason)."""
        from verl.workers.rollout.replica import TokenOutput

        if image_data is not None or video_data is not None:
            raise NotImplementedError("the hf CPU rollout is text-only; use vllm or sglang for multi-modal models")
        sampling_params = dict(sampling_params)
        prompt_ids = [int(token) for token in prompt_ids]
        want_logprobs = bool(sampling_params.pop("logprobs", False))
        request = _Request(
            prompt_ids=prompt_ids,
            max_tokens=self._max_tokens(len(prompt_ids), sampling_params),
            settings=self._settings(sampling_params),
            future=asyncio.get_running_loop().create_future(),
        )
        self._ensure_batcher()
        self._queue.append(request)
        self._wakeup.set()
        generation = await request.future
        return TokenOutput(
            token_ids=generation.token_ids,
            log_probs=generation.log_probs if want_logprobs else None,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps, "finish_reason": generation.finish_reason},
        )

    def _ensure_batcher(self) -> None:
        if self._batcher is None or self._batcher.done():
            self._wakeup = asyncio.Event()
            self._lock = self._lock or asyncio.Lock()
            self._batcher = asyncio.get_running_loop().create_task(self._run_batches())

    async def _run_batches(self) -> None:
        while True:
            await self._wakeup.wait()
            await asyncio.sleep(BATCH_WINDOW_S)
            while self._queue:
                settings = self._queue[0].settings
                batch = [request for request in self._queue if request.settings == settings][: self.max_batch]
                chosen = {id(request) for request in batch}
                self._queue = [request for request in self._queue if id(request) not in chosen]
                await self._run_one_batch(batch)
            self._wakeup.clear()

    async def _run_one_batch(self, batch: list[_Request]) -> None:
        start = time.perf_counter()
        self._in_flight += len(batch)
        try:
            async with self._lock:
                results = await asyncio.to_thread(
                    generate_batch,
                    self.model,
                    [request.prompt_ids for request in batch],
                    [request.max_tokens for request in batch],
                    batch[0].settings,
                    self.eos_token_ids,
                    self.pad_token_id,
                    self.generator,
                )
        except Exception as error:  # hand the failure to every waiting request, keep serving
            logger.exception("hf rollout: generation of a batch of %d failed", len(batch))
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        finally:
            self._in_flight -= len(batch)
        for request, result in zip(batch, results, strict=True):
            if not request.future.done():
                request.future.set_result(result)
        logger.debug(
            "hf rollout: %d responses, %d tokens in %.2fs",
            len(batch),
            sum(len(r.token_ids) for r in results),
            time.perf_counter() - start,
        )

    # ---------------------------------------------------------------- weights
    async def update_weights(self, named_tensors: dict[str, torch.Tensor], global_steps: int | None = None) -> int:
        """Copy the trainer's weights (HF parameter names) into the model; returns how many tensors were loaded.

        Raises if none of the names match (a sign the trainer and the rollout load different models).
        """
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            loaded = await asyncio.to_thread(self._load_state, named_tensors)
        if global_steps is not None:
            self.global_steps = global_steps
        self.num_weight_updates += 1
        return loaded

    @torch.no_grad()
    def _load_state(self, named_tensors: dict[str, torch.Tensor]) -> int:
        state = self.model.state_dict()
        unknown = [name for name in named_tensors if name not in state]
        loaded = 0
        for name, tensor in named_tensors.items():
            if name in state:
                state[name].copy_(tensor.to(state[name].dtype))
                loaded += 1
        if loaded == 0:
            raise RuntimeError(
                f"hf rollout: none of the {len(named_tensors)} pushed weights match the rollout model "
                f"(e.g. {unknown[:3]}); the actor and the rollout must load the same model path"
            )
        if unknown:
            logger.warning("hf rollout: ignored %d unknown weights, e.g. %s", len(unknown), unknown[:3])
        return loaded

    # ---------------------------------------------- calls verl makes around syncs
    async def ping(self) -> dict[str, Any]:
        """Liveness and state, for the replica's start-up check and for tests."""
        return {
            "replica_rank": self.replica_rank,
            "global_steps": self.global_steps,
            "num_weight_updates": self.num_weight_updates,
            "eos_token_ids": self.eos_token_ids,
        }

    async def wake_up(self, tags: list[str] | None = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    async def wait_for_requests_to_drain(self) -> None:
        while self._queue or self._in_flight:
            await asyncio.sleep(0.05)

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        """Nothing is partially generated on CPU: batches run to the end. Reports that nothing was aborted."""
        return {"aborted_count": 0, "request_ids": []}

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict:
        return {"aborted": False, "request_id": request_id}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None
