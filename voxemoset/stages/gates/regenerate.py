"""Retries of failed utterances: a new seed first, then another reference of the same emotion and split."""

from __future__ import annotations

import numpy as np

from voxemoset.audio import TTS_RATE, decode_at_rate
from voxemoset.config import GatesConfig
from voxemoset.models.protocols import Synthesizer, SynthRequest
from voxemoset.models.synthesis import SynthesisFailure, synthesize_16k
from voxemoset.seeds import derive_seed
from voxemoset.stages.gates.attempts import Attempt, candidate
from voxemoset.stages.gates.references import ReferencePool


def retry_seed(base: int, utt_id: str, attempt: int) -> int:
    """The TTS seed of a retry, fixed by the utterance and attempt number."""
    return derive_seed(base, utt_id, attempt)


def retry_reference(utt: dict, attempt: int, pool: list[dict], cfg: GatesConfig) -> dict | None:
    """The reference for `attempt` (>= 2): the original while reseeding, then others of its emotion and split."""
    if attempt <= 1 + cfg.reseed_attempts:
        return None  # keep the original reference
    others = [r for r in pool if r["reference_id"] != utt["reference_id"]]
    if not others:
        return None
    # A seeded order of the others, the same on every attempt (ties between 31-bit keys broken by id).
    others.sort(key=lambda r: (derive_seed(cfg.seed, utt["id"], r["reference_id"]), r["reference_id"]))
    return others[(attempt - 2 - cfg.reseed_attempts) % len(others)]


def regenerate(
    todo: list[dict], history: dict[str, list[Attempt]], refs: ReferencePool, synth: Synthesizer, cfg: GatesConfig
) -> tuple[list[Attempt], list[np.ndarray | SynthesisFailure]]:
    """The next attempt of each utterance in `todo`: its candidate and its 16 kHz clip (or why there is none).

    `refs` holds every reference (audio read for the ones chosen); `history` holds each utterance's attempts so far.
    """
    cands, chosen = [], []
    for u in todo:
        attempt = len(history[u["id"]]) + 1
        alt = retry_reference(u, attempt, refs.groups.get((u["split"], u["emotion"]), []), cfg)
        ref = refs.by_id[u["reference_id"]] if alt is None else alt
        ref_fields = {"reference_id": ref["reference_id"], "reference_corpus": ref["corpus"],
                      "reference_speaker": ref["speaker"], "reference_text": ref["transcript"]}  # fmt: skip
        cands.append(candidate(u, attempt, retry_seed(cfg.seed, u["id"], attempt), ref_fields))
        chosen.append(ref)
    audio = refs.audio(r["reference_id"] for r in chosen)
    requests = [
        # decoded as the speech stage hands F5 its references
        SynthRequest(u["caption"], decode_at_rate(audio[r["reference_id"]], TTS_RATE), r["transcript"],
                     c.tts_seed, u["speed"])
        for u, r, c in zip(todo, chosen, cands, strict=True)
    ]  # fmt: skip
    return cands, synthesize_16k(synth, requests)
