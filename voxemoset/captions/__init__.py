"""Captioning: the `Captioner` backends (transformers, vLLM, OpenAI-compatible) and answer validation."""
