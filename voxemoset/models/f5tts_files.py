"""Where an F5-TTS checkpoint and a Vocos vocoder live on disk, checked before anything loads them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.models.vocos import VOCOS_DOWNLOAD, VOCOS_MODEL

F5_DOWNLOAD = "hf download SWivid/F5-TTS F5TTS_v1_Base/model_1250000.safetensors F5TTS_v1_Base/vocab.txt"
F5_MODEL = "F5-TTS v1 Base"


@dataclass(frozen=True)
class F5Files:
    """Where an F5-TTS checkpoint, its vocab and its architecture come from."""

    checkpoint: Path
    vocab: Path
    arch: dict
    spec: Path | None = None  # the YAML the arch came from


def check_arch(f5: F5Files) -> None:
    """The arch must hold only arguments DiT takes: the class is ours to pick, never one named in the YAML."""
    import inspect

    from f5_tts.model import DiT

    allowed = set(inspect.signature(DiT.__init__).parameters) - {"self", "text_num_embeds", "mel_dim"}
    unknown = sorted(map(str, set(f5.arch) - allowed))
    if unknown:
        raise UserError(f"{f5.spec}: model.arch has keys DiT does not take: {', '.join(unknown)}")


def locate_f5(checkpoint: Path, vocab_file: Path | None = None) -> F5Files:
    """Checkpoint file (given, or the newest model*.safetensors|pt in the folder or its F5TTS_v1_Base/), vocab, arch."""
    import yaml

    checkpoint = Path(checkpoint).expanduser()
    missing = MissingWeightsError(F5_MODEL, str(checkpoint), f"{F5_DOWNLOAD} --local-dir {checkpoint}")
    if checkpoint.is_file():
        ckpt = checkpoint
    else:
        found = [p for d in (checkpoint, checkpoint / "F5TTS_v1_Base") for p in sorted(d.glob("model*.safetensors"))]
        found = found or [p for d in (checkpoint, checkpoint / "F5TTS_v1_Base") for p in sorted(d.glob("model*.pt"))]
        if not found:
            raise missing
        # model_1250000 beats model_500000: compare step numbers, not strings.
        ckpt = max(found, key=lambda p: (int("".join(filter(str.isdigit, p.stem)) or 0), p.name))
    vocab = Path(vocab_file).expanduser() if vocab_file else ckpt.parent / "vocab.txt"
    if not vocab.is_file():
        raise missing
    spec = ckpt.parent / "model.yaml"
    if not spec.is_file():
        from importlib.resources import files

        spec = Path(str(files("f5_tts").joinpath("configs/F5TTS_v1_Base.yaml")))
    try:
        model = yaml.safe_load(spec.read_text())["model"]
        supported = model.get("backbone") == "DiT" and model["mel_spec"].get("mel_spec_type") == "vocos"
        arch = dict(model["arch"])
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError):
        raise UserError(f"{spec}: not an F5-TTS model config (model: backbone, arch, mel_spec)") from None
    if not supported:
        raise UserError(f"{spec}: only DiT checkpoints with Vocos mels are supported")
    return F5Files(ckpt, vocab, arch, spec)


def locate_vocos(folder: Path) -> Path:
    """A Vocos folder holding config.yaml and pytorch_model.bin, or a clear error with the download command."""
    folder = Path(folder).expanduser()
    if not ((folder / "config.yaml").is_file() and (folder / "pytorch_model.bin").is_file()):
        raise MissingWeightsError(VOCOS_MODEL, str(folder), VOCOS_DOWNLOAD.format(path=folder))
    return folder


def synthesis_identity(checkpoint: Path, vocab_file: Path | None, vocoder: Path) -> dict:
    """Identity of checkpoint, vocab, architecture and vocoder by content (missing weights fail here, in one line):
    what keys every clip F5 speaks, in the speech stage and in the gates' retries alike."""
    from voxemoset.store.keys import model_identity

    f5 = locate_f5(checkpoint, vocab_file)
    return {"f5": model_identity(f5.checkpoint), "vocab": model_identity(f5.vocab), "arch": f5.arch,
            "vocoder": model_identity(locate_vocos(vocoder))}  # fmt: skip
