"""Images the captions stage dropped, by emotion and reason, with the emotions dropped far more often than the rest.

A caption rule that bites one emotion harder than the others (a lexicon word that names what sad or joyful images
show) skews the dataset's emotion balance before any speech is made; this is where a build shows it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from voxemoset.emotions import EMOTIONS
from voxemoset.markdown import md_table
from voxemoset.store.reading import stage_rejects, stage_shards

FLAG_FACTOR = 2.0  # an emotion is flagged when its drop rate exceeds this times the mean over emotions


def caption_drops(out: Path) -> dict | None:
    """Per emotion: images captioned or dropped, drop rate and drops by reason; the mean rate and flagged emotions.

    None when the build has no images or captions stage to read.
    """
    images = stage_shards(out, "images")
    if not images or not (stage_shards(out, "captions") or stage_rejects(out, "captions")):
        return None
    emotion_of = {}
    for path in images:
        table = pq.read_table(path, columns=["image_id", "emotion"])
        emotion_of.update(zip(table.column("image_id").to_pylist(), table.column("emotion").to_pylist(), strict=True))
    reasons: dict[str, Counter] = {e: Counter() for e in EMOTIONS}
    for path in stage_rejects(out, "captions"):
        for row in pq.read_table(path, columns=["source", "reason"]).to_pylist():
            if row["source"] in emotion_of:  # a reject of the table's own lines names no image
                reasons[emotion_of[row["source"]]][row["reason"]] += 1
    totals = Counter(emotion_of.values())
    per = {}
    for e in EMOTIONS:
        dropped = sum(reasons[e].values())
        per[e] = {"images": totals[e], "dropped": dropped, "drop_rate": round(dropped / totals[e], 4) if totals[e] else None,
                  "reasons": dict(reasons[e].most_common())}  # fmt: skip
    rates = [v["drop_rate"] for v in per.values() if v["drop_rate"] is not None]
    mean_rate = round(sum(rates) / len(rates), 4) if rates else 0.0
    flagged = [e for e, v in per.items() if v["drop_rate"] and v["drop_rate"] > FLAG_FACTOR * mean_rate]
    return {"per_emotion": per, "mean_drop_rate": mean_rate, "flag_factor": FLAG_FACTOR, "flagged": flagged}


def to_markdown(drops: dict | None) -> str:
    """The report's section: one row per emotion, its top reasons, and the flagged emotions named."""
    if drops is None:
        return "no images or captions stage in this build"
    rows = []
    for e, v in drops["per_emotion"].items():
        top = ", ".join(f"{r.removeprefix('captions_')} {n}" for r, n in list(v["reasons"].items())[:4]) or "-"
        rate = "-" if v["drop_rate"] is None else f"{100 * v['drop_rate']:.1f}%"
        rows.append([e + (" (flagged)" if e in drops["flagged"] else ""), v["images"], v["dropped"], rate, top])
    flagged = ", ".join(drops["flagged"]) or "none"
    note = (f"\nMean drop rate {100 * drops['mean_drop_rate']:.1f}%; flagged (over {drops['flag_factor']:g}x the mean): "
            f"{flagged}.\n")  # fmt: skip
    return md_table(["emotion", "images", "dropped", "drop rate", "top reasons"], rows) + note
