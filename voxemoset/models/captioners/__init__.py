"""Captioner adapters, one per backend (transformers, vLLM, OpenAI-compatible server, answer table).

Each adapts its backend to `voxemoset.models.protocols.Captioner`; heavy libraries load inside the adapters.
"""
