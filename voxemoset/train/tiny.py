"""Tiny random stand-ins for training tests: an SD-1.5-layout pipeline folder, CLIP, an emotion classifier, shards."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np

from voxemoset.audio import OUT_RATE
from voxemoset.emotions import EMOTIONS


def write_tiny_sd(out_dir: Path, cross_attention_dim: int = 32, seed: int = 0) -> Path:
    """Write a tiny random Stable-Diffusion-layout folder (unet/, vae/, scheduler/, text_encoder/, tokenizer/,
    model_index.json)."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    # The sizes of diffusers' own pipeline tests: 2 levels, so the VAE downsamples by 2 and runs in ms on a CPU.
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=2,
        sample_size=32,
    )
    # SD-1.5's scheduler settings (scaled-linear betas, epsilon prediction).
    scheduler = DDPMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        steps_offset=1,
    )
    _write_tiny_text_encoder(out_dir, cross_attention_dim)
    unet.save_pretrained(out_dir / "unet")
    vae.save_pretrained(out_dir / "vae")
    scheduler.save_pretrained(out_dir / "scheduler")
    index = {
        "_class_name": "StableDiffusionPipeline",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
    }
    (out_dir / "model_index.json").write_text(json.dumps(index, indent=2))
    return out_dir


def _write_tiny_text_encoder(out_dir: Path, width: int) -> None:
    """SD's text_encoder/ (a CLIPTextModel as wide as the UNet's cross-attention) and tokenizer/."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from voxemoset.models.tiny.clip import clip_vocab

    tokenizer = CLIPTokenizer(vocab=clip_vocab(), merges=[], model_max_length=77)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=0,
    )
    CLIPTextModel(config).save_pretrained(out_dir / "text_encoder")
    tokenizer.save_pretrained(out_dir / "tokenizer")


def write_tiny_emotion_classifier(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random ViT image classifier over the five VoxEmoset emotions."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    out_dir = Path(out_dir)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(EMOTIONS),
        id2label=dict(enumerate(EMOTIONS)),
        label2id={e: i for i, e in enumerate(EMOTIONS)},
    )
    torch.manual_seed(seed)
    ViTForImageClassification(config).save_pretrained(out_dir)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out_dir)
    return out_dir


def write_random_inception(path: Path, seed: int = 0) -> Path:
    """Write FID's Inception-v3 (torch-fidelity's architecture, the file layout its released weights have) with
    random weights: FID's real code path, end to end, where the real file cannot be downloaded. Not tiny: the
    architecture is fixed (~95 MB)."""
    from unittest import mock

    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(seed)
    # The class loads its weights in __init__; built here with that one step skipped, then saved as they would be.
    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None), \
            mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", lambda *a, **k: {}):  # fmt: skip
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="random")
    for module in net.modules():  # He init keeps activations alive through 90-odd layers (the default fades them)
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def tone(emotion_index: int, seconds: float, seed: int = 0) -> np.ndarray:
    """A short 16 kHz chirp whose pitch depends on the emotion: speech-like enough for the pipeline."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * OUT_RATE)) / OUT_RATE
    f0 = 150.0 + 60.0 * emotion_index
    wave = 0.3 * np.sin(2 * np.pi * (f0 * t + 20.0 * t**2)) + 0.01 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


def _picture(emotion_index: int, seed: int, size: int = 48) -> bytes:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    colours = [(230, 200, 40), (200, 30, 30), (90, 140, 40), (60, 40, 90), (50, 80, 160)]
    img = Image.new("RGB", (size + 8 * (seed % 3), size), colours[emotion_index])
    draw = ImageDraw.Draw(img)
    x, y = (int(v) for v in rng.integers(0, size // 2, 2))
    draw.ellipse((x, y, x + size // 2, y + size // 2), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _flac(samples: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, OUT_RATE, format="FLAC")
    return buf.getvalue()


def write_tiny_dataset(
    out_dir: Path, n_train: int = 4, n_test: int = 2, captions_per_image: int = 2, emotions: bool = True
) -> Path:
    """Write published-layout shards `<out_dir>/data/<split>-00000-of-00001.parquet` (the `dataset` stage's schema,
    columns a test does not need left null); `emotions=False`: an emotion-free corpus (SpokenCOCO-like)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from voxemoset.hub.features import arrow_schema

    schema = arrow_schema()
    data = Path(out_dir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = []
        for i in range(n):
            emotion = i % len(EMOTIONS)
            image = _picture(emotion, seed=zlib.crc32(f"{split}{i // captions_per_image}".encode()) % 1000)
            seconds = 0.6 + 0.15 * (i % 4)  # different lengths, so batches need padding
            rows.append(
                {
                    "id": f"{split}-{i:04d}" if emotions else f"corpus-{split}-{i:04d}",
                    "split": split,
                    "image": {"bytes": image, "path": None},
                    "image_id": f"{split}-img-{i // captions_per_image:04d}",
                    "emotion": emotion if emotions else None,
                    "caption": f"a picture of {EMOTIONS[emotion] if emotions else 'things'} number {i}",
                    "caption_index": i % captions_per_image,
                    "audio": {"bytes": _flac(tone(emotion, seconds, seed=i)), "path": None},
                    "duration_s": seconds,
                }
            )
        table = pa.Table.from_pylist(rows, schema=schema)
        pq.write_table(table, data / f"{split}-00000-of-00001.parquet")
    return Path(out_dir)
