"""Tiny random LLaVA-OneVision (SigLIP + Qwen2) saved in the Hub's llava-hf layout, for offline tests."""

from __future__ import annotations

from pathlib import Path

IMAGE_SIZE = 32  # one anyres tile; SigLIP patch 8 gives 4 x 4 = 16 tokens a tile
PATCH_SIZE = 8
GRID = 3  # pinpoints up to 3 x 3 tiles (the real model goes to 6 x 6 at 384 px)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>")
# The chat template of llava-hf/llava-onevision-qwen2-*-hf (chat_template.json / processor_config.json).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\\n' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>\\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{% endif %}"
    "{{'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tokenizer(vocab_size: int = 384):
    """A Qwen2 byte-level BPE tokenizer: 256 byte symbols, merges from a fixed text, Qwen2's special tokens."""
    from transformers import Qwen2Tokenizer

    from voxemoset.models.tiny._bpe import bytes_to_unicode, train_byte_bpe

    # An empty Qwen2Tokenizer lends its pre-tokenizer (regex split + byte level) to the BPE trainer.
    probe = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(sorted(bytes_to_unicode().values()))}, merges=[])
    vocab, merges = train_byte_bpe(probe.backend_tokenizer.pre_tokenizer, vocab_size)
    for token in SPECIAL_TOKENS:  # specials after the BPE vocabulary, as in Qwen2 (151643 onwards)
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>", "<image>", "<video>"],
        model_max_length=32768,
    )


def _rewrite_to_hub_layout(model_dir: Path) -> None:
    """Rename the saved SigLIP keys `vision_tower.*` to `vision_tower.vision_model.*` as on the Hub and in vLLM.

    transformers 5 drops the `vision_model.` level of SigLIP and does not restore it on save; its loader maps
    both spellings, vLLM only the Hub's.
    """
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    state = load_file(path)
    renamed = {
        ("vision_tower.vision_model." + k.removeprefix("vision_tower.") if k.startswith("vision_tower.") else k): v
        for k, v in state.items()
    }
    save_file(renamed, path, metadata={"format": "pt"})


def write_llava_onevision(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random LLaVA-OneVision model + processor to `out_dir`; return it."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    pinpoints = [[IMAGE_SIZE * i, IMAGE_SIZE * j] for i in range(1, GRID + 1) for j in range(1, GRID + 1)]
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        vision_use_head=False,  # the llava-hf checkpoints carry no SigLIP pooling head
    )
    # Head size 32 (2 heads of 64 dims, one KV head as Qwen2's GQA): vLLM's CPU attention kernels take
    # only head sizes 32, 64, 80, ... (vllm/v1/attention/backends/cpu_attn.py).
    text = dict(
        model_type="qwen2",
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
    )
    config = LlavaOnevisionConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        vision_aspect_ratio="anyres_max_9",
        image_grid_pinpoints=pinpoints,
        projector_hidden_act="gelu",
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    model.generation_config.bos_token_id = text["bos_token_id"]
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    _rewrite_to_hub_layout(out_dir)

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    image_processor = LlavaOnevisionImageProcessor(
        size=size, image_grid_pinpoints=pinpoints, image_mean=[0.5] * 3, image_std=[0.5] * 3, do_pad=True
    )
    video_processor = LlavaOnevisionVideoProcessor(size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        num_image_tokens=(IMAGE_SIZE // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out_dir)
    return out_dir
