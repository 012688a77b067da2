"""`gates` stage: judge each utterance, regenerate failures (new seed, then new reference) up to a budget."""

from voxemoset.stages.gates.attempts import output_schema
from voxemoset.stages.gates.judge import GateModels, best_attempt, judge
from voxemoset.stages.gates.regenerate import retry_reference, retry_seed
from voxemoset.stages.gates.stage import GatesStage

__all__ = ["GateModels", "GatesStage", "best_attempt", "judge", "output_schema", "retry_reference", "retry_seed"]
