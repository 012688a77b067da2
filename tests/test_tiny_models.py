"""The tiny random checkpoints reload through each library's real loading path and run one inference, offline."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

REF_TEXT = "The river was quiet this morning."
EXPECTED_FILES = {
    "llava_onevision": {"config.json", "generation_config.json", "model.safetensors", "processor_config.json",
                        "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"},
    "f5tts": {"model.safetensors", "vocab.txt", "model.yaml"},
    "vocos": {"config.yaml", "pytorch_model.bin"},
    "whisper": {"config.json", "generation_config.json", "model.safetensors", "processor_config.json",
                "tokenizer.json", "tokenizer_config.json"},
    "emotion2vec": {"config.yaml", "model.pt", "tokens.txt", "configuration.json"},
    "clip": {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "tokenizer_config.json"},
}  # fmt: skip


def _deny_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any TCP/UDP connection attempt fail loudly (the loaders must never reach for the Hub)."""
    connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every test in this module runs with the network forbidden."""
    _deny_network(monkeypatch)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """All tiny models, written once for the module."""
    from voxemoset.models.tiny import write_all

    with pytest.MonkeyPatch.context() as mp:
        _deny_network(mp)
        return write_all(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> tuple[np.ndarray, int]:
    """A short spoken sentence (espeak-ng; a harmonic tone where espeak-ng is missing) as float32 mono."""
    import soundfile as sf

    if shutil.which("espeak-ng"):
        path = tmp_path_factory.mktemp("speech") / "ref.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(path), REF_TEXT], check=True)
        wav, sr = sf.read(path, dtype="float32")
        return wav, sr
    sr = 22050
    t = np.arange(int(1.5 * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32), sr


def _resample(speech: tuple[np.ndarray, int], rate: int) -> np.ndarray:
    import soxr

    wav, sr = speech
    return soxr.resample(wav, sr, rate).astype(np.float32)


def test_every_model_has_its_files_and_is_small(tiny):
    assert set(tiny) == set(EXPECTED_FILES)
    for name, files in EXPECTED_FILES.items():
        present = {p.name for p in tiny[name].iterdir()}
        assert files <= present, (name, files - present)
        assert sum(p.stat().st_size for p in tiny[name].iterdir()) < 5_000_000, name


def test_builders_are_deterministic(tiny, tmp_path):
    from voxemoset.models.tiny import write_emotion2vec, write_vocos

    for name, build in (("emotion2vec", write_emotion2vec), ("vocos", write_vocos)):
        again = build(tmp_path / name)
        for path in tiny[name].iterdir():
            assert (again / path.name).read_bytes() == path.read_bytes(), path


def test_llava_checkpoint_uses_the_hub_key_layout(tiny):
    from safetensors import safe_open

    with safe_open(tiny["llava_onevision"] / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    vision = [k for k in keys if k.startswith("vision_tower.")]
    assert vision and all(k.startswith("vision_tower.vision_model.") for k in vision)
    prefixes = (
        "vision_tower.vision_model.",
        "language_model.model.",
        "language_model.lm_head.",
        "multi_modal_projector.",
    )
    assert all(k.startswith(prefixes) or k == "image_newline" for k in keys)


def test_llava_reloads_and_generates(tiny):
    import torch
    from PIL import Image
    from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

    path = tiny["llava_onevision"]
    model, info = LlavaOnevisionForConditionalGeneration.from_pretrained(
        path, local_files_only=True, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe it."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\n<image>\nDescribe it.<|im_end|>\n<|im_start|>assistant\n"
    inputs = processor(images=Image.new("RGB", (500, 375), (200, 40, 30)), text=prompt, return_tensors="pt")
    assert (inputs["input_ids"] == model.config.image_token_index).sum() < 200  # anyres kept small
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert len(text) == 1 and isinstance(text[0], str)


def test_f5tts_and_vocos_synthesise_24k(tiny, speech, tmp_path):
    import soundfile as sf
    from f5_tts.infer.utils_infer import infer_process, load_model, load_vocoder
    from f5_tts.model import DiT
    from omegaconf import OmegaConf

    ref = tmp_path / "ref24.wav"
    sf.write(ref, _resample(speech, 24000), 24000)
    f5 = tiny["f5tts"]
    cfg = OmegaConf.load(f5 / "model.yaml").model
    arch = OmegaConf.to_container(cfg.arch)
    model = load_model(DiT, arch, str(f5 / "model.safetensors"), "vocos", str(f5 / "vocab.txt"), device="cpu")
    vocoder = load_vocoder("vocos", is_local=True, local_path=str(tiny["vocos"]), device="cpu")
    wav, sr, _ = infer_process(
        str(ref), REF_TEXT, "A happy child.", model, vocoder, mel_spec_type="vocos", nfe_step=4, device="cpu"
    )
    assert sr == cfg.mel_spec.target_sample_rate == 24000
    assert wav.ndim == 1 and wav.size > 0 and np.isfinite(wav).all()


def test_whisper_generates_and_runs_in_the_asr_pipeline(tiny, speech):
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor, pipeline

    path = tiny["whisper"]
    wav = _resample(speech, 16000)
    processor = WhisperProcessor.from_pretrained(path, local_files_only=True)
    model = WhisperForConditionalGeneration.from_pretrained(path, local_files_only=True)
    features = processor(wav, sampling_rate=16000, return_tensors="pt").input_features
    assert features.shape[-1] == 2 * model.config.max_source_positions
    with torch.inference_mode():
        ids = model.generate(features, language="en", task="transcribe", max_new_tokens=8)
    assert isinstance(processor.batch_decode(ids, skip_special_tokens=True)[0], str)
    asr = pipeline("automatic-speech-recognition", model=str(path), device="cpu")
    out = asr(wav, generate_kwargs={"language": "en", "task": "transcribe", "max_new_tokens": 8})
    assert isinstance(out["text"], str)


def test_emotion2vec_loads_every_weight_and_scores_nine_labels(tiny, speech):
    import torch
    from funasr import AutoModel

    from voxemoset.models.tiny.emotion2vec import LABELS

    path = tiny["emotion2vec"]
    model = AutoModel(model=str(path), device="cpu", disable_update=True, disable_pbar=True, log_level="ERROR")
    # funasr fills missing or mis-shaped weights with random ones and still reports success: compare directly.
    saved = torch.load(path / "model.pt", map_location="cpu")
    live = model.model.state_dict()
    assert set(saved) == set(live)
    assert all(torch.equal(saved[k], live[k]) for k in live)
    res = model.generate(_resample(speech, 16000), fs=16000, granularity="utterance", extract_embedding=False)
    assert res[0]["labels"] == list(LABELS)
    assert len(res[0]["scores"]) == 9 and sum(res[0]["scores"]) == pytest.approx(1.0, abs=1e-4)
