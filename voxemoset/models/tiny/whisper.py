"""Tiny random multilingual Whisper with a locally built tokenizer and generation config, for offline tests."""

from __future__ import annotations

from pathlib import Path

SAMPLING_RATE = 16000
CHUNK_LENGTH_S = 30  # as the real model: 3000 mel frames -> 1500 encoder positions
HOP_LENGTH = 160
TIME_PRECISION = 0.02
TASKS = ("<|translate|>", "<|transcribe|>")
# Whisper-large-v3's special tokens after the languages, in id order; `<|notimestamps|>` must come last
# because the tokenizer puts the first timestamp right after the last special id.
AFTER_TASKS = ("<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>")


def build_tokenizer(vocab_size: int = 384):
    """A Whisper byte-level BPE tokenizer with all of Whisper's special, language and timestamp tokens."""
    from tokenizers import pre_tokenizers
    from transformers import WhisperTokenizer
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    from voxemoset.models.tiny._bpe import train_byte_bpe

    vocab, merges = train_byte_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), vocab_size)
    vocab["<|endoftext|>"] = len(vocab)
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{code}|>" for code in LANGUAGES)]
    specials += [*TASKS, *AFTER_TASKS]
    tokenizer = WhisperTokenizer(
        vocab=vocab,
        merges=merges,
        additional_special_tokens=specials,
        model_max_length=448,
        errors="replace",
    )
    # Timestamps are ordinary added tokens after the specials, <|0.00|> ... <|30.00|> as in the real vocab.
    stamps = [f"<|{i * TIME_PRECISION:.2f}|>" for i in range(int(CHUNK_LENGTH_S / TIME_PRECISION) + 1)]
    tokenizer.add_tokens(stamps)
    return tokenizer


def _generation_config(tokenizer, n_layers: int):
    """Whisper's generation config (large-v3's fields) with ids from the tiny tokenizer."""
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ids = tokenizer.convert_tokens_to_ids
    eot = ids("<|endoftext|>")
    # Built directly, not with from_model_config: a config marked `_from_model_config` drops
    # Whisper's own fields (lang_to_id, task_to_id, ...) when it is read back.
    return GenerationConfig(
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=ids("<|startoftranscript|>"),
        lang_to_id={f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES},
        task_to_id={"translate": ids("<|translate|>"), "transcribe": ids("<|transcribe|>")},
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        is_multilingual=True,
        max_initial_timestamp_index=50,
        return_timestamps=False,
        # The real default is 448 (max_target_positions, kept below); random weights rarely pick <|endoftext|>,
        # so a low default cap keeps un-capped generate calls in chain tests around a second.
        max_length=64,
        suppress_tokens=[],
        begin_suppress_tokens=[ids("Ġ"), eot],
        alignment_heads=[[n_layers - 1, 0]],
    )


def write_whisper(out_dir: Path, seed: int = 0, num_mel_bins: int = 80) -> Path:
    """Write a tiny random Whisper model + WhisperProcessor to `out_dir`; return it."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    n_layers = 2
    config = WhisperConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=num_mel_bins,
        d_model=32,
        encoder_layers=n_layers,
        decoder_layers=n_layers,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=CHUNK_LENGTH_S * SAMPLING_RATE // HOP_LENGTH // 2,
        max_target_positions=448,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        # Suppression lives in the generation config only; set here too, generate warns on every call.
        suppress_tokens=None,
        begin_suppress_tokens=None,
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    # Zero the timestamp rows of the (tied) output embedding: random weights otherwise emit timestamps
    # without being asked, and each one opens a new segment, so generate ignores max_new_tokens and runs
    # for seconds. With logit 0 they still win when return_timestamps=True forces them.
    with torch.no_grad():
        model.get_output_embeddings().weight[tokenizer.convert_tokens_to_ids("<|0.00|>") :] = 0.0
    model.generation_config = _generation_config(tokenizer, n_layers)
    model.save_pretrained(out_dir)

    feature_extractor = WhisperFeatureExtractor(
        feature_size=num_mel_bins,
        sampling_rate=SAMPLING_RATE,
        hop_length=HOP_LENGTH,
        chunk_length=CHUNK_LENGTH_S,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=False,
    )
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(out_dir)
    return out_dir
