"""`gates` stage: judge each utterance, regenerate failures (new seed, then new reference) up to a budget."""

from voxemoset.stages.gates.attempts import Attempt, best_attempt, candidate, judge, output_schema
from voxemoset.stages.gates.judge import GateModels, Scores
from voxemoset.stages.gates.regenerate import retry_reference, retry_seed
from voxemoset.stages.gates.stage import GatesStage

__all__ = ["Attempt", "GateModels", "GatesStage", "Scores", "best_attempt", "candidate", "judge", "output_schema",
           "retry_reference", "retry_seed"]  # fmt: skip
