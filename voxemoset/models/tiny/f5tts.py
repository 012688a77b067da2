"""Tiny random F5-TTS v1 DiT checkpoint and tiny Vocos vocoder in the layouts f5_tts's loaders read."""

from __future__ import annotations

import shutil
from pathlib import Path

# F5TTS_v1_Base's arch (f5_tts/configs/F5TTS_v1_Base.yaml) at toy sizes; dim_head is set because the
# DiT default (64) would make attention wider than the model.
ARCH = {
    "dim": 64,
    "depth": 2,
    "heads": 2,
    "dim_head": 32,
    "ff_mult": 2,
    "text_dim": 32,
    "text_mask_padding": True,
    "qk_norm": None,
    "conv_layers": 1,
    "pe_attn_head": None,
    "attn_backend": "torch",
    "attn_mask_enabled": False,
    "checkpoint_activations": False,
}
# The mel settings every F5-TTS v1 checkpoint and charactr/vocos-mel-24khz share.
MEL_SPEC = {
    "target_sample_rate": 24000,
    "n_mel_channels": 100,
    "hop_length": 256,
    "win_length": 1024,
    "n_fft": 1024,
    "mel_spec_type": "vocos",
}
CKPT_NAME = "model.safetensors"


def vocos_config(dim: int = 32, intermediate_dim: int = 64, num_layers: int = 2) -> dict:
    """Vocos's config.yaml for the 24 kHz mel vocoder; the defaults are tiny, (512, 1536, 8) is charactr's real one."""
    return {
        "feature_extractor": {
            "class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
            "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100, "padding": "center"},
        },
        "backbone": {
            "class_path": "vocos.models.VocosBackbone",
            "init_args": {
                "input_channels": 100,
                "dim": dim,
                "intermediate_dim": intermediate_dim,
                "num_layers": num_layers,
            },
        },  # fmt: skip
        "head": {
            "class_path": "vocos.heads.ISTFTHead",
            "init_args": {"dim": dim, "n_fft": 1024, "hop_length": 256, "padding": "center"},
        },
    }


VOCOS_CONFIG = vocos_config()


def write_f5tts(out_dir: Path, seed: int = 0, fill_zero_init: bool = True) -> Path:
    """Write `model.safetensors` (EMA layout), `vocab.txt` and `model.yaml` (F5 config schema) to `out_dir`.

    fill_zero_init: F5 zero-initialises its output projections (adaLN-zero), so an untrained DiT returns
    its input noise unchanged; filling them with small noise makes the DiT shape the audio, as trained
    weights do, so batching and masking bugs show in the output.
    """
    from importlib.resources import files

    import torch
    import yaml
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # F5's own vocab (pinyin + characters), so text is tokenised exactly as for the real checkpoint.
    vocab_path = out_dir / "vocab.txt"
    shutil.copyfile(str(files("f5_tts").joinpath("infer/examples/vocab.txt")), vocab_path)
    vocab_char_map, vocab_size = get_tokenizer(str(vocab_path), "custom")

    torch.manual_seed(seed)
    mel = {k: v for k, v in MEL_SPEC.items() if k != "mel_spec_type"}
    model = CFM(
        transformer=DiT(**ARCH, text_num_embeds=vocab_size, mel_dim=MEL_SPEC["n_mel_channels"]),
        mel_spec_kwargs={**mel, "mel_spec_type": MEL_SPEC["mel_spec_type"]},
        vocab_char_map=vocab_char_map,
    )
    # The released F5TTS_v1_Base/model_1250000.safetensors holds the EMA weights under `ema_model.`;
    # load_checkpoint(use_ema=True), the default, strips that prefix.
    state = {f"ema_model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    if fill_zero_init:
        g = torch.Generator().manual_seed(seed + 1)
        state = {k: (torch.randn(v.shape, generator=g) * 0.02 if v.is_floating_point() and not v.any() else v)
                 for k, v in state.items()}  # fmt: skip
    save_file(state, out_dir / CKPT_NAME, metadata={"format": "pt"})

    config = {
        "model": {
            "name": "F5TTS_v1_tiny",
            "tokenizer": "custom",
            "tokenizer_path": "vocab.txt",
            "backbone": "DiT",
            "arch": ARCH,
            "mel_spec": MEL_SPEC,
        }
    }
    (out_dir / "model.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return out_dir


def write_vocos(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny Vocos (`config.yaml` + `pytorch_model.bin`) like charactr/vocos-mel-24khz to `out_dir`."""
    import torch
    import yaml

    from voxemoset.models.vocos import build_vocos

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "config.yaml"
    config_path.write_text(yaml.safe_dump(VOCOS_CONFIG, sort_keys=False))
    torch.manual_seed(seed)
    vocoder = build_vocos(VOCOS_CONFIG, config_path)  # what Vocos.from_hparams builds, without importing by name
    torch.save(vocoder.state_dict(), out_dir / "pytorch_model.bin")
    return out_dir
