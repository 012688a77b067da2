"""Settings of the `gates` stage (a section of the main config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from voxemoset.gates.signal import SignalConfig


class GatesConfig(BaseModel):
    """Thresholds, the regeneration budget and the scoring models of the `gates` stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    emotion_model: str = Field("models/emotion2vec_plus_large", description="local emotion2vec_plus folder")
    emotion_device: str = "cpu"
    emotion_batch_size: int = Field(16, ge=1)
    require_emotion: bool = Field(True, description="regenerate clips not heard as intended; False records only")
    min_emotion_conf: float = Field(0.5, ge=0, le=1, description="the intended emotion's probability must reach this")
    max_attempts: int = Field(4, ge=1, description="synthesis attempts per utterance, the first included")
    reseed_attempts: int = Field(1, ge=0, description="retries with a new seed before trying another reference")
    seed: int = 0
    signal: SignalConfig = SignalConfig()
    dnsmos_device: str = Field("cpu", description="cpu or cuda (onnxruntime provider)")
    min_dnsmos_ovrl: float | None = Field(None, description="regenerate below this DNSMOS OVRL; None records only")
    asr: bool = Field(True, description="transcribe each kept clip with Whisper and record its WER")
    asr_model: str = Field("openai/whisper-large-v3-turbo", description="local dir or Hub id in the HF cache")
    asr_device: str = "cpu"
    asr_batch_size: int = Field(8, ge=1)
    asr_max_new_tokens: int = Field(96, ge=1)
    max_wer: float | None = Field(None, ge=0, description="regenerate above this WER; None records only")
