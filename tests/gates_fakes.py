"""Scripted emotion scores for the gates tests: a fake on purpose, since no real model can be told to fail.

`SCRIPT` maps an utterance's image id to the emotion heard at each attempt; anything else hears the intent.
"""

from __future__ import annotations

from voxemoset.emotions import EMOTIONS
from voxemoset.gates.loop import GateModels

# image_id -> emotion heard at attempt 1, 2, 3, ... (the last entry repeats). None: hears the intended one.
SCRIPT = {
    "img-a": ["fear", "sadness", None],  # fails twice, then passes
    "img-b": [None],  # passes first time
    "img-c": ["anger"],  # never passes: budget exhausted
}


class ScriptedEmotion:
    """Scores from SCRIPT; confidence rises with the attempt so the best failure is well defined."""

    def __init__(self, intended: dict[str, str]):
        self.intended = intended  # utterance id -> (image_id, intended emotion)

    def score(self, clips, ids=None):
        out = []
        for key in ids:
            utt, attempt = key.rsplit("#", 1)
            image_id, intent = self.intended[utt]
            seq = SCRIPT.get(image_id, [None])
            heard = seq[min(int(attempt), len(seq)) - 1] or intent
            conf = 0.6 + 0.05 * int(attempt)
            out.append({e: (conf if e == heard else (1 - conf) / 4) for e in EMOTIONS})
        return out


def scripted_models(config, speech_rows: list[dict]) -> GateModels:
    """Scripted emotion, real DNSMOS, no ASR."""
    from voxemoset.models.dnsmos import DnsmosScorer

    intended = {r["id"]: (r["image_id"], r["emotion"]) for r in speech_rows}
    return GateModels(emotion=ScriptedEmotion(intended), quality=DnsmosScorer(), asr=None)


def run_gates(config_path: str) -> None:
    """Run the gates stage with the scripted scorer (used in-process and by the kill test's subprocess)."""
    import pyarrow.parquet as pq

    from voxemoset.config import load_config
    from voxemoset.stages.gates import GatesStage
    from voxemoset.store.runner import list_shards, run_stage, stage_dir

    cfg = load_config(config_path)
    rows = [r for p in list_shards(stage_dir(cfg.out, "speech")) for r in pq.read_table(p).to_pylist()]
    run_stage(GatesStage(gate_models=lambda c: scripted_models(c, rows)), cfg, cfg.out)


if __name__ == "__main__":
    import sys

    run_gates(sys.argv[1])
