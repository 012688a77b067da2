"""Vocos built from its config.yaml as data: only the known vocos classes, never `Vocos.from_hparams`.

`from_hparams` imports and calls whatever `class_path` the YAML names (`class_path: os.system` runs a
command), so a downloaded folder could run code; here each part's class comes from a fixed table.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxemoset.errors import UserError
from voxemoset.models.safe_load import read_state_dict, short_reason

if TYPE_CHECKING:
    import torch

VOCOS_MODEL = "Vocos mel 24 kHz"
VOCOS_DOWNLOAD = "hf download charactr/vocos-mel-24khz --local-dir {path}"
# The classes a mel Vocos is made of (vocos/feature_extractors.py, models.py, heads.py), by config section.
# EncodecFeatures is left out: it downloads Encodec weights while being built.
CLASSES = {
    "feature_extractor": ("vocos.feature_extractors.MelSpectrogramFeatures",),
    "backbone": ("vocos.models.VocosBackbone", "vocos.models.VocosResNetBackbone"),
    "head": ("vocos.heads.ISTFTHead", "vocos.heads.IMDCTSymExpHead", "vocos.heads.IMDCTCosHead"),
}


def _part(config: dict, section: str, where: Path) -> Any:
    """One Vocos part from `{class_path, init_args}`, its class looked up in CLASSES, never imported by name."""
    import vocos.feature_extractors
    import vocos.heads
    import vocos.models

    spec = config.get(section)
    if not isinstance(spec, dict):
        raise UserError(f"{where}: no `{section}` section with class_path and init_args")
    class_path, init_args = spec.get("class_path"), spec.get("init_args", {})
    if class_path not in CLASSES[section]:
        raise UserError(
            f"{where}: {section}.class_path {class_path!r} is not one of {', '.join(CLASSES[section])}; "
            "a model folder may not name other code to run"
        )
    if not isinstance(init_args, dict):
        raise UserError(f"{where}: {section}.init_args must be a mapping")
    module, name = class_path.rsplit(".", 1)
    cls = getattr({"vocos.feature_extractors": vocos.feature_extractors, "vocos.models": vocos.models,
                   "vocos.heads": vocos.heads}[module], name)  # fmt: skip
    try:
        return cls(**init_args)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {section}.init_args do not fit {class_path} ({short_reason(exc)})") from None


def build_vocos(config: dict, where: Path) -> torch.nn.Module:
    """An untrained Vocos from a parsed config.yaml; parts built in from_hparams' order, so seeded weights match."""
    from vocos import Vocos

    if not isinstance(config, dict):
        raise UserError(f"{where}: not a YAML mapping")
    feature_extractor, backbone, head = (_part(config, s, where) for s in ("feature_extractor", "backbone", "head"))
    return Vocos(feature_extractor=feature_extractor, backbone=backbone, head=head)


def read_config(path: Path) -> dict:
    """config.yaml parsed as plain data (safe_load: no Python tags)."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid YAML ({short_reason(exc)})") from None


def load_vocos(folder: Path, device: str = "cpu") -> torch.nn.Module:
    """Vocos from a local folder (config.yaml + pytorch_model.bin), as F5's load_vocoder, without running its config."""
    folder = Path(folder)
    model = build_vocos(read_config(folder / "config.yaml"), folder / "config.yaml")
    weights = folder / "pytorch_model.bin"
    state = read_state_dict(weights, VOCOS_MODEL, VOCOS_DOWNLOAD.format(path=folder))
    own = model.state_dict()
    if not isinstance(state, dict) or any(not hasattr(v, "shape") for v in state.values()):
        raise UserError(f"{VOCOS_MODEL}: {weights} is not a state dict of tensors")
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    shapes = sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        raise UserError(
            f"{VOCOS_MODEL}: {weights} does not match {folder / 'config.yaml'}: missing {missing[:2]}, "
            f"unexpected {unexpected[:2]}, other shapes {shapes[:2]}"
        )
    model.load_state_dict(state)
    return model.eval().to(device)
