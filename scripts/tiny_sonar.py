#!/usr/bin/env python
"""Write a tiny random SONAR speech encoder: SONAR's own architecture family, built by its own factory, small.

The English SONAR speech encoder is a w2v-BERT 2.0 Conformer with an attention pooler (about 600M parameters).
This script takes that architecture config (`english`), shrinks its widths and depths, builds the model with
`SonarSpeechEncoderFactory` (the builder `load_custom_model` uses), randomises it, and saves

    <out>/spenc.tiny.pt        the state dict in fairseq2's checkpoint layout ({"model": state_dict})
    <out>/spenc.tiny.arch.json the shrunken fields, as overrides of the `english` architecture

`scripts/encode_sonar.py --model <out>/spenc.tiny.pt --arch english --arch-overrides <out>/spenc.tiny.arch.json`
then loads it exactly as it loads the real checkpoint, through the SONAR hub. Tests use it; nothing downloads.

Runs in the SONAR environment (bash scripts/setup_sonar_env.sh; .venv-sonar/bin/python scripts/tiny_sonar.py OUT).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Widths and depths of the tiny encoder; every other field (Conformer blocks, fbank frontend, relative
# position attention, the pooler's post-norm decoder) is the English model's own.
TINY_ENCODER = {
    "model_dim": 32,
    "num_encoder_layers": 2,
    "num_encoder_attn_heads": 2,
    "ffn_inner_dim": 64,
    "depthwise_conv_kernel_size": 3,
    "max_seq_len": 4096,
}
TINY_SONAR = {"model_dim": 32, "num_decoder_layers": 1, "num_decoder_attn_heads": 2, "ffn_inner_dim": 64}


def main(argv: list[str] | None = None) -> None:
    """Build, randomise and save the tiny encoder; print the checkpoint path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write spenc.tiny.pt and spenc.tiny.arch.json into")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import dataclasses

    import torch
    from fairseq2 import init_fairseq2
    from sonar.models.sonar_speech import SonarSpeechEncoderFactory, get_sonar_speech_encoder_hub

    init_fairseq2()
    english = get_sonar_speech_encoder_hub().get_arch_config("english")
    config = dataclasses.replace(
        english, w2v2_encoder_config=dataclasses.replace(english.w2v2_encoder_config, **TINY_ENCODER), **TINY_SONAR
    )
    torch.manual_seed(args.seed)
    model = SonarSpeechEncoderFactory(config).create_model()
    with torch.no_grad():  # fairseq2 zero-initialises some biases: noise everywhere so outputs depend on input
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "spenc.tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    overrides = {"w2v2_encoder_config": TINY_ENCODER, **TINY_SONAR}
    (args.out / "spenc.tiny.arch.json").write_text(json.dumps(overrides, indent=2, sort_keys=True))
    print(path)


if __name__ == "__main__":
    main()
