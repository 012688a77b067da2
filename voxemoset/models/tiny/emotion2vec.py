"""Tiny random emotion2vec_plus in the ModelScope layout funasr's AutoModel loads from a local folder."""

from __future__ import annotations

import json
from pathlib import Path

# emotion2vec_plus_{seed,base,large} tokens.txt: the 9 classes in the released order.
LABELS = (
    "生气/angry",
    "厌恶/disgusted",
    "恐惧/fearful",
    "开心/happy",
    "中立/neutral",
    "其他/other",
    "难过/sad",
    "吃惊/surprised",
    "<unk>",
)
EMBED_DIM = 32
DEPTH = 2
HEADS = 2
# The released model_conf (data2vec 2.0 audio) with sizes shrunk; every key the funasr model reads is here.
MODEL_CONF = {
    "loss_beta": 0.0,
    "loss_scale": None,
    "depth": DEPTH,
    "start_drop_path_rate": 0.0,
    "end_drop_path_rate": 0.0,
    "num_heads": HEADS,
    "norm_eps": 1e-05,
    "norm_affine": True,
    "encoder_dropout": 0.1,
    "post_mlp_drop": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "dropout_input": 0.0,
    "layerdrop": 0.05,
    "embed_dim": EMBED_DIM,
    "mlp_ratio": 4.0,
    "layer_norm_first": False,
    "average_top_k_layers": DEPTH,
    "end_of_block_targets": False,
    "clone_batch": 8,
    "layer_norm_target_layer": False,
    "batch_norm_target_layer": False,
    "instance_norm_target_layer": True,
    "instance_norm_targets": False,
    "layer_norm_targets": False,
    "ema_decay": 0.999,
    "ema_same_dtype": True,
    "log_norms": True,
    "ema_end_decay": 0.99999,
    "ema_anneal_end_step": 20000,
    "ema_encoder_only": False,
    "max_update": 100000,
    "extractor_mode": "layer_norm",
    "shared_decoder": None,
    "min_target_var": 0.1,
    "min_pred_var": 0.01,
    "supported_modality": "AUDIO",
    "mae_init": False,
    "seed": 1,
    "skip_ema": False,
    "cls_loss": 1.0,
    "recon_loss": 0.0,
    "d2v_loss": 1.0,
    "decoder_group": False,
    "normalize": True,  # inference layer-normalises the waveform first, as the released models do
    "modalities": {
        "audio": {
            "type": "AUDIO",
            "prenet_depth": 1,
            "prenet_layerdrop": 0.05,
            "prenet_dropout": 0.1,
            "start_drop_path_rate": 0.0,
            "end_drop_path_rate": 0.0,
            "num_extra_tokens": 10,
            "init_extra_token_zero": True,
            "mask_noise_std": 0.01,
            "mask_prob_min": None,
            "mask_prob": 0.5,
            "inverse_mask": False,
            "mask_prob_adjust": 0.05,
            "keep_masked_pct": 0.0,
            "mask_length": 5,
            "add_masks": False,
            "remove_masks": False,
            "mask_dropout": 0.0,
            "encoder_zero_mask": True,
            "mask_channel_prob": 0.0,
            "mask_channel_length": 64,
            "ema_local_encoder": False,
            "local_grad_mult": 1.0,
            "use_alibi_encoder": True,
            "alibi_scale": 1.0,
            "learned_alibi": False,
            "alibi_max_pos": None,
            "learned_alibi_scale": True,
            "learned_alibi_scale_per_head": True,
            "learned_alibi_scale_per_layer": False,
            "num_alibi_heads": HEADS,
            "model_depth": DEPTH,
            "decoder": {
                "decoder_dim": 16,
                "decoder_groups": 4,
                "decoder_kernel": 7,
                "decoder_layers": 1,
                "input_dropout": 0.1,
                "add_positions_masked": False,
                "add_positions_all": False,
                "decoder_residual": True,
                "projection_layers": 1,
                "projection_ratio": 2.0,
            },
            "extractor_mode": "layer_norm",
            # Same kernels and strides as the real wav2vec-style encoder (320 samples a frame, 50 Hz), 32 channels.
            "feature_encoder_spec": "[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32,2,2)] + [(32,2,2)]",
            "conv_pos_width": 95,
            "conv_pos_groups": 16,
            "conv_pos_depth": 5,
            "conv_pos_pre_ln": False,
        }
    },
}
CONFIG = {
    "model": "Emotion2vec",
    "model_conf": MODEL_CONF,
    "tokenizer": "CharTokenizer",
    "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
}
# configuration.json as ModelScope serves it; funasr reads `file_path_metas` to find the other files.
CONFIGURATION = {
    "framework": "pytorch",
    "task": "emotion-recognition",
    "model": {"type": "funasr"},
    "pipeline": {"type": "funasr-pipeline"},
    "model_name_in_hub": {"ms": "iic/emotion2vec_plus_base", "hf": "emotion2vec/emotion2vec_plus_base"},
    "file_path_metas": {
        "init_param": "model.pt",
        "config": "config.yaml",
        "tokenizer_conf": {"token_list": "tokens.txt"},
    },
}


def write_emotion2vec(out_dir: Path, seed: int = 0) -> Path:
    """Write config.yaml, model.pt, tokens.txt and configuration.json of a tiny emotion2vec_plus to `out_dir`."""
    import torch
    import yaml
    from funasr.models.emotion2vec.model import Emotion2vec

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False, allow_unicode=True))
    (out_dir / "tokens.txt").write_text("".join(f"{label}\n" for label in LABELS), encoding="utf-8")
    (out_dir / "configuration.json").write_text(json.dumps(CONFIGURATION, indent=4))
    torch.manual_seed(seed)
    # Built the way AutoModel builds it (model_conf plus vocab_size from tokens.txt), so the keys match exactly.
    model = Emotion2vec(model_conf=MODEL_CONF, vocab_size=len(LABELS))
    torch.save(model.state_dict(), out_dir / "model.pt")
    return out_dir
