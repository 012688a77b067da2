"""Before anything is generated: does every speech system have what it needs for every test set?

A SONAR checkpoint cannot encode speech in evaluate's environment (SONAR runs in its own), so each test set must hold
precomputed SONAR frames of its split; every missing one is named with the command that writes it, all in one error.
"""

from __future__ import annotations

from pathlib import Path

from voxemoset.errors import UserError
from voxemoset.train.eval.config import EvalConfig


def check_speech_inputs(cfg: EvalConfig) -> None:
    """One UserError listing every (speech system, test set) pair whose precomputed frames are missing."""
    from voxemoset.train.config import TrainConfig
    from voxemoset.train.data import dataset_files
    from voxemoset.train.encode import SONAR_SETUP, embeddings_dir, sonar_command

    problems, commands = [], []
    for system in cfg.systems:
        config = Path(system.checkpoint or "") / "train_config.json"
        if system.kind != "speech" or not config.is_file():
            continue
        encoder = TrainConfig.model_validate_json(config.read_text()).encoder
        if encoder.kind != "sonar":
            continue  # Whisper encodes in the loop
        for test in cfg.test_sets:
            where = Path(test.embeddings) if test.embeddings else embeddings_dir(test.path, encoder)
            shards = dataset_files(test.path, test.split)
            missing = [s for s in shards if not (where / f"{s.stem}.safetensors").is_file()]
            if test.embeddings is None:
                problems.append(f"{test.name}: set its `embeddings` to its SONAR frames (written to {where})")
            if missing:
                problems.append(f"{test.name}: {len(missing)} of {len(shards)} shards lack SONAR frames in {where}")
                commands.append(sonar_command(test.path, test.split, encoder, where))
        if problems:
            # One line to paste: the setup once, then every missing split's command.
            fix = f"; write them with: {' && '.join([SONAR_SETUP, *commands])}" if commands else ""
            raise UserError(f"system {system.label} reads SONAR frames: " + "; ".join(problems) + fix)
