"""One device rule for every model: `auto` is the first GPU when there is one, else the CPU; or name one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


def pick_device(device: str) -> torch.device:
    """The torch device `device` (auto | cpu | cuda | cuda:N) names here."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_name(device: str) -> str:
    """`pick_device` as a string, for libraries that take one (funasr, F5-TTS)."""
    return str(pick_device(device)) if device == "auto" else device


def onnx_providers(device: str) -> tuple[str, ...]:
    """onnxruntime providers for `device` (auto | cpu | cuda): CUDA first where asked for, or where `auto` finds
    it in this onnxruntime build; the CPU always (ORT runs there what CUDA cannot)."""
    if device == "cpu":
        return (CPU_PROVIDER,)
    if device == "auto":
        import onnxruntime as ort

        if CUDA_PROVIDER not in ort.get_available_providers():
            return (CPU_PROVIDER,)
    return (CUDA_PROVIDER, CPU_PROVIDER)
