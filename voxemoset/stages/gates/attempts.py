"""Attempts of a shard: each a typed record, scored once, each round persisted as it finishes, and the final table.

A round's rows hold each attempt's clip and scores; verdicts are derived from them under the thresholds in force,
on every load, so stored rounds serve any thresholds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from voxemoset.audio import OUT_RATE, audio_cell
from voxemoset.config import GatesConfig
from voxemoset.models.synthesis import SynthesisFailure
from voxemoset.rows import CAPTION_COLUMNS, GATE_FIELDS, REFERENCE_COLUMNS
from voxemoset.stages.gates.judge import SCORE_ATTRS, GateModels, Scores, score, verdict
from voxemoset.store.stage import ShardOutput
from voxemoset.store.work import WorkDir

CARRY = ("id", *CAPTION_COLUMNS, "speed")
ATTEMPT_FIELDS = ("attempt", "tts_seed", *REFERENCE_COLUMNS)
# A stored round's columns, in this order (rounds written before the record existed read back the same).
_ROUND_SCORES = tuple(f for f in SCORE_ATTRS if f != "synthesis_error")
ROUND_FIELDS = (*CARRY, *ATTEMPT_FIELDS, *_ROUND_SCORES[1:], _ROUND_SCORES[0], "fail_reason", "passed",
                "synthesis_error", "audio", "duration_s")  # fmt: skip
LOG_FIELDS = ("attempt", "tts_seed", "reference_id", "fail_reason", "emo_pred", "emo_conf", "dnsmos_ovrl", "wer")
GATE_COLUMNS = pa.schema(GATE_FIELDS)


@dataclass(frozen=True)
class Attempt:
    """Attempt `attempt` of the utterance `utt` (its CARRY fields), spoken with `tts_seed` in the voice of
    `reference`; once scored, its clip and `Scores`, and its verdict under the thresholds it was last judged by."""

    utt: dict[str, Any]
    attempt: int
    tts_seed: int
    reference: dict[str, Any]
    scores: Scores | None = None
    audio: dict | None = None
    duration_s: float | None = None
    fail_reason: str | None = None
    passed: bool = False

    @property
    def id(self) -> str:
        return self.utt["id"]

    def judged(self, cfg: GatesConfig) -> Attempt:
        """This attempt judged anew under `cfg`'s thresholds."""
        assert self.scores is not None, "only a scored attempt is judged"
        reason = verdict(self.scores, self.utt["emotion"], cfg)
        return replace(self, fail_reason=reason, passed=reason is None)

    def fields(self) -> dict[str, Any]:
        """Its own columns (how it was made, scores, verdict, clip), without the utterance's."""
        scores = asdict(self.scores) if self.scores is not None else dict.fromkeys(SCORE_ATTRS)
        return {"attempt": self.attempt, "tts_seed": self.tts_seed, **self.reference, **scores,
                "fail_reason": self.fail_reason, "passed": self.passed, "audio": self.audio,
                "duration_s": self.duration_s}  # fmt: skip

    def row(self) -> dict[str, Any]:
        """The stored round row."""
        every = {**self.utt, **self.fields()}
        return {k: every[k] for k in ROUND_FIELDS}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Attempt:
        return cls(
            utt={k: row[k] for k in CARRY}, attempt=row["attempt"], tts_seed=row["tts_seed"],
            reference={k: row[k] for k in REFERENCE_COLUMNS}, scores=Scores(**{k: row[k] for k in SCORE_ATTRS}),
            audio=row["audio"], duration_s=row["duration_s"], fail_reason=row["fail_reason"], passed=row["passed"],
        )  # fmt: skip

    def rank(self) -> tuple:
        """Larger is a more convincing failure: a usable clip, then the intended emotion's probability, then
        quality, then the earlier attempt."""
        s = self.scores or Scores(signal="unscored")
        return (s.signal is None, s.emo_target_conf or 0.0, s.dnsmos_ovrl or 0.0, -self.attempt)


def same_reference(u: dict) -> dict:
    """The reference fields of a speech row, for an attempt that keeps its reference."""
    return {k: u[k] for k in REFERENCE_COLUMNS}


def candidate(u: dict, attempt: int, seed: int, ref: dict) -> Attempt:
    """Attempt `attempt` of utterance `u`, spoken with `seed` in the voice of `ref`, before scoring."""
    return Attempt({k: u[k] for k in CARRY}, attempt, seed, {k: ref[k] for k in REFERENCE_COLUMNS})


def best_attempt(attempts: list[Attempt]) -> Attempt:
    """The passing attempt if any, else the most convincing failure."""
    passed = [a for a in attempts if a.passed]
    return passed[0] if passed else max(attempts, key=Attempt.rank)


def judge(
    cands: list[Attempt], clips: list[np.ndarray | SynthesisFailure], models: GateModels, cfg: GatesConfig
) -> tuple[list[Attempt], int]:
    """Score candidates' clips and judge them; how many clips the models scored."""
    scores, scored = score([(c.utt["emotion"], c.utt["caption"]) for c in cands], clips, models, cfg)
    done = []
    for c, s, x in zip(cands, scores, clips, strict=True):
        made = not isinstance(x, SynthesisFailure)
        clip = {"audio": audio_cell(c.id, x), "duration_s": round(len(x) / OUT_RATE, 4)} if made else {}
        done.append(replace(c, scores=s, **clip).judged(cfg))
    return done, scored


def record_round(
    work: WorkDir,
    history: dict[str, list[Attempt]],
    cands: list[Attempt],
    clips: list[np.ndarray | SynthesisFailure],
    models: GateModels,
    cfg: GatesConfig,
) -> int:
    """Score and judge one round and persist it before anything else happens (the resume point); how many clips
    the models scored."""
    done, scored = judge(cands, clips, models, cfg)
    work.save_round(pa.Table.from_pylist([a.row() for a in done]))
    for a in done:
        history.setdefault(a.id, []).append(a)
    return scored


def load_history(work: WorkDir, cfg: GatesConfig) -> dict[str, list[Attempt]]:
    """Utterance id -> its attempts saved so far, in attempt order, each judged anew under `cfg`'s thresholds."""
    history: dict[str, list[Attempt]] = {}
    for table in work.rounds():
        for row in table.to_pylist():
            history.setdefault(row["id"], []).append(Attempt.from_row(row).judged(cfg))
    return history


def output_schema(speech: pa.Schema) -> pa.Schema:
    """The speech stage's columns, then the gates' figures: one schema for every gates shard."""
    return pa.schema([f for f in speech if f.name not in GATE_COLUMNS.names] + list(GATE_COLUMNS))


def _log_entry(a: Attempt) -> dict:
    f = a.fields()
    entry = {k: f[k] for k in LOG_FIELDS}
    if f["synthesis_error"]:  # only attempts that made no clip carry one
        entry["synthesis_error"] = f["synthesis_error"]
    return entry


def finish(utts: list[dict], history: dict[str, list[Attempt]], schema: pa.Schema) -> ShardOutput:
    """Each utterance's passing attempt as a kept row, or its best failure as a reject with its scores."""
    rows, rejects = [], []
    for u in utts:
        attempts = sorted(history[u["id"]], key=lambda a: a.attempt)
        best = best_attempt(attempts)
        log = [_log_entry(a) for a in attempts]
        row = {**u, **best.fields(), "attempts": len(attempts), "gate_log": json.dumps(log)}
        if best.passed:
            rows.append({k: row.get(k) for k in schema.names})
        else:
            rejects.append({"source": u["id"], "reason": f"gates_{best.fail_reason}", "detail": row["gate_log"],
                            **{k: row[k] for k in ("emo_pred", "emo_conf", "dnsmos_ovrl", "wer")}})  # fmt: skip
    return ShardOutput(pa.Table.from_pylist(rows, schema=schema), rejects)
