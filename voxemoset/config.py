"""One YAML config, validated with pydantic: unknown keys are errors, paths are checked when used."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt

from voxemoset.config_captions import CAPTION_CHECKS, CaptionsConfig, CaptionsOpenAIConfig, CaptionsVllmConfig
from voxemoset.errors import UserError

# Generic machinery (voxemoset.settings), re-exported so that `voxemoset.config` is the one door.
from voxemoset.settings import (
    DEVICE,
    SPEED_ONLY,
    Strict,
    is_speed_only,
    output_settings,
    read_yaml,
    speed_only,
    validate,
)

__all__ = [
    "CAPTION_CHECKS",
    "SPEED_ONLY",
    "CaptionsConfig",
    "CaptionsOpenAIConfig",
    "CaptionsVllmConfig",
    "Strict",
    "is_speed_only",
    "output_settings",
    "read_yaml",
    "speed_only",
    "validate",
]


class SourcesConfig(Strict):
    """Where the source corpora live, each in its native layout."""

    emoset: Path | None = None
    cremad: Path | None = None
    ravdess: Path | None = None
    mead: Path | None = None
    spokencoco: Path | None = Field(None, description="holds SpokenCOCO_train.json, SpokenCOCO_val.json, wavs/")
    coco: Path | None = Field(None, description="COCO-2014: train2014/, val2014/ and Karpathy's dataset_coco.json")
    flickr8k: Path | None = Field(
        None, description="holds Flicker8k_Dataset/, Flickr8k.token.txt, Flickr_8k.*Images.txt, flickr_audio/"
    )


class ImagesConfig(Strict):
    """The `images` stage: validation limits and shard size."""

    shard_size: int = Field(1000, ge=1, description="images per output shard")
    max_pixels: int = Field(64_000_000, ge=1, description="larger images are rejected (decompression bombs)")
    max_file_bytes: int = Field(64 * 2**20, ge=1, description="larger files are rejected unread")
    min_side: int = Field(32, ge=1, description="images with a smaller side are rejected")
    limit_per_split: int | None = Field(None, ge=1, description="keep only the first N images per split (trials)")


class CorporaConfig(Strict):
    """`voxemoset corpus`: the human-read corpora (SpokenCOCO, Flickr8kAudio) as published-layout shards."""

    shard_size: int = Field(500, ge=1, description="utterances per output shard (~110 MB of SpokenCOCO)")
    limit_per_split: int | None = Field(None, ge=1, description="keep only the first N utterances per split (trials)")


class OrchestrationConfig(Strict):
    """How Prefect runs shard tasks: threads in this process, or a Ray cluster (prefect-ray)."""

    task_runner: Literal["threads", "ray"] = speed_only("threads")
    max_workers: int = speed_only(2, ge=1, description="parallel shard tasks for CPU stages (threads runner)")
    ray_address: str | None = speed_only(None, description="a cluster: HEAD:6379, ray://HEAD:10001, auto; None: local")
    ray_num_cpus: int | None = speed_only(None, ge=1, description="CPUs of a local Ray cluster")
    gpus_per_task: float = speed_only(1.0, ge=0, description="GPUs each model-stage worker asks Ray for")
    task_retries: int = speed_only(2, ge=0, description="retries of a shard task after a transient error")
    parallel_stages: bool = speed_only(True, description="stages needing none of each other's output at once")
    cpu_threads: int | None = speed_only(
        None,
        ge=1,
        description="torch threads of a shard task, the same under every runner so outputs match bit for bit "
        "(None: all cores); on Ray, model-stage tasks without a GPU ask for this many CPUs",
    )


class PrepConfig(Strict):
    """Limits and targets of reference preparation."""

    # The literal is audio.TTS_RATE: this leaf module imports no domain package (a test checks they agree).
    sample_rate: int = Field(24000, description="F5-TTS's mel rate")
    min_s: float = Field(1.0, gt=0, description="shorter (after trimming) is rejected")
    max_s: float = Field(12.0, gt=0, description="longer is rejected: F5 clips references past ~12 s")
    trim_top_db: float = Field(35.0, gt=0, description="edges quieter than peak - this are trimmed")
    trim_pad_s: float = Field(0.05, ge=0, description="silence kept on each side after trimming")
    silence_dbfs: float = Field(-50.0, description="quieter RMS is rejected as silent")
    clip_level: float = Field(0.999, gt=0, le=1, description="|sample| at or above counts as clipped")
    max_clipped_fraction: float = Field(0.001, ge=0, description="more clipped samples is rejected")
    target_rms_dbfs: float = Field(-20.0, description="loudness after normalisation")
    peak_limit: float = Field(0.95, gt=0, le=1, description="peak after normalisation")


class WhisperConfig(Strict):
    """One Whisper (transformers), the same type wherever one runs: MEAD's transcripts, each clip's WER."""

    model: str = Field("openai/whisper-large-v3-turbo", description="local dir or Hub id in the HF cache")
    device: str = speed_only("auto", description=DEVICE)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    batch_size: int = speed_only(8, ge=1)
    max_new_tokens: int = Field(96, ge=1)


class ReferencesConfig(Strict):
    """The `references` stage: which corpora, how clips are prepared, which Whisper transcribes MEAD."""

    corpora: tuple[Literal["cremad", "mead", "ravdess"], ...] = ("cremad", "mead", "ravdess")
    shard_size: int = Field(500, ge=1, description="clips per output shard")
    prep: PrepConfig = PrepConfig()
    whisper: WhisperConfig = WhisperConfig()


class SpeechConfig(Strict):
    """The `speech` stage: F5-TTS v1 + Vocos from local files, batched sampling, reference assignment."""

    checkpoint: Path = Field(
        Path("models/F5TTS_v1_Base"),
        description="F5-TTS checkpoint file, or a folder holding model_*.safetensors (also in F5TTS_v1_Base/)",
    )
    vocab_file: Path | None = Field(None, description="default: vocab.txt beside the checkpoint file")
    vocoder: Path = Field(Path("models/vocos-mel-24khz"), description="Vocos folder: config.yaml, pytorch_model.bin")
    device: str = speed_only("auto", description=DEVICE)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto", description="auto: fp16 on GPU")
    batch_size: int = speed_only(16, ge=1, description="captions per sampling pass (length-bucketed)")
    nfe_step: int = Field(32, ge=1, description="flow-matching steps")
    epss: bool = Field(
        True, description="F5's EPSS step table at nfe_step 5, 6, 7, 10, 12, 16 (F5's default); False: uniform steps"
    )
    cfg_strength: float = Field(2.0, ge=0)
    sway_sampling_coef: float = -1.0
    # Fast path (models/f5tts_fast.py): same audio as eager within float rounding, so speed-only.
    compile: bool = speed_only(False, description="torch.compile the DiT step (inductor; a C compiler on CPU)")
    length_buckets: tuple[PositiveInt, ...] = speed_only(
        (), description="mel frames (256 samples each) a batch is padded up to, so compiled graphs are reused"
    )
    cuda_graphs: bool = speed_only(False, description="with compile, on CUDA: CUDA graphs; ignored on CPU")
    speed: float = Field(1.0, gt=0, description="F5's speed; texts under 10 bytes use 0.3 as in F5")
    seed: int = Field(0, ge=0, description="base seed; each caption derives its own tts_seed")
    prefer_intensity: Literal["any", "strong"] = Field("any", description="strong: strongest clips of a speaker first")
    exclude_intensities: tuple[str, ...] = Field((), description="reference intensities never used, e.g. low")


class SignalConfig(Strict):
    """Bounds a synthesised clip must meet."""

    min_dbfs: float = Field(-45.0, description="quieter RMS fails as silent / too quiet")
    clip_level: float = Field(0.999, gt=0, le=1)
    max_clipped_fraction: float = Field(0.001, ge=0)
    min_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)


class GatesConfig(Strict):
    """Thresholds, the regeneration budget and the scoring models of the `gates` stage."""

    emotion_model: str = Field("models/emotion2vec_plus_large", description="local emotion2vec_plus folder")
    emotion_device: str = speed_only("auto", description=DEVICE)
    emotion_batch_size: int = speed_only(16, ge=1)
    require_emotion: bool = Field(True, description="regenerate clips not heard as intended; False records only")
    min_emotion_conf: float = Field(0.5, ge=0, le=1, description="the intended emotion's probability must reach this")
    max_attempts: int = Field(4, ge=1, description="synthesis attempts per utterance, the first included")
    reseed_attempts: int = Field(1, ge=0, description="retries with a new seed before trying another reference")
    seed: int = 0
    signal: SignalConfig = SignalConfig()
    dnsmos_device: str = speed_only("auto", description="auto | cpu | cuda (onnxruntime provider)")
    min_dnsmos_ovrl: float | None = Field(None, description="regenerate below this DNSMOS OVRL; None records only")
    asr: bool = Field(True, description="transcribe each kept clip with Whisper and record its WER")
    whisper: WhisperConfig = WhisperConfig()
    # 0.05 < 1/15: one skipped, repeated or wrong word fails any 8-15-word caption (README: Gates).
    max_wer: float | None = Field(0.05, ge=0, description="regenerate above this WER; None records only")


class DatasetConfig(Strict):
    """The `dataset` stage: Hub-ready Parquet shards (sized for the dataset viewer) and the dataset card."""

    shard_bytes: int = Field(500_000_000, ge=1, description="target size of one Parquet file (the Hub's ~500 MB)")
    row_group_bytes: int = Field(100_000_000, ge=1, description="most uncompressed bytes in one row group")
    pretty_name: str = "VoxEmoset"
    license: str = Field("other", description="the card's `license`: the sources' terms differ, so `other`")
    license_name: str | None = "voxemoset-source-terms"
    license_link: str | None = Field(None, description="URL of the licence text, if any")
    license_notes: str = Field("", description="extra text for the card's licence section")


SPEECH_MODEL_FILES = ("checkpoint", "vocab_file", "vocoder")  # keyed by content (model_id), not by path


def speech_settings(cfg: SpeechConfig) -> dict:
    """The speech settings that key an utterance, the same for the speech stage and the gates that regenerate it."""
    return {k: v for k, v in output_settings(cfg).items() if k not in SPEECH_MODEL_FILES}


class PublishConfig(Strict):
    """Where `voxemoset stage publish` uploads the built dataset."""

    repo_id: str | None = Field(None, description="ORG/NAME on the Hugging Face Hub; unset: stage publish refuses")
    private: bool = Field(False, description="create the repo private")


class ReportConfig(Strict):
    """`voxemoset report`: Table 1 computed the paper's way (read after the build; keys no stage)."""

    clip_model: str = Field("openai/clip-vit-large-patch14", description="CLIPScore's CLIP: local dir or HF id")
    nmos_sample: int = Field(10_000, ge=1, description="NMOS: mean DNSMOS OVRL of a seeded random sample per split")
    seed: int = Field(0, ge=0, description="seed of the NMOS sample")
    other_corpora: bool = Field(
        True,
        description="Table 1 also gets rows made the same way for SpokenCOCO and Flickr8kAudio (from `voxemoset corpus`"
        " outputs under <out>/corpora/) and CREMA-D (from sources.cremad, heard by gates.emotion_model)",
    )
    clip_device: str = speed_only("auto", description=DEVICE)
    clip_batch_size: int = speed_only(32, ge=1, description="images or captions per CLIP forward pass")


class Config(Strict):
    """The whole build."""

    out: Path = Path("runs/voxemoset")
    sources: SourcesConfig = SourcesConfig()
    images: ImagesConfig = ImagesConfig()
    captions: CaptionsConfig = CaptionsConfig()
    references: ReferencesConfig = ReferencesConfig()
    gates: GatesConfig = GatesConfig()
    speech: SpeechConfig = SpeechConfig()
    dataset: DatasetConfig = DatasetConfig()
    corpora: CorporaConfig = CorporaConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    publish: PublishConfig = PublishConfig()
    report: ReportConfig = ReportConfig()


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override {dotted}: {part} is not a section")
    node[leaf] = value


def parse_config(data: dict, overrides: dict[str, Any] | None = None, origin: str = "config") -> Config:
    """Validate config data, after applying dotted-key overrides such as {"images.shard_size": 10}."""
    data = copy.deepcopy(data or {})  # an override must not reach into the caller's nested sections
    for k, v in (overrides or {}).items():
        _set_dotted(data, k, v)
    return validate(Config, data, origin)


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a YAML config; every mistake becomes one clear UserError line."""
    return parse_config(read_yaml(path), overrides, origin=str(path))


def require_dir(path: Path | None, key: str) -> Path:
    """A configured folder that must exist, or one clear error naming the config key."""
    if path is None:
        raise UserError(f"{key} is not set in the config")
    if Path(path).exists() and not Path(path).is_dir():
        raise UserError(f"{key}: {path} is a file, not a folder")
    if not Path(path).is_dir():
        raise UserError(f"{key}: folder not found: {path}")
    return Path(path)
