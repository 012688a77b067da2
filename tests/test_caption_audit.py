"""The caption validator audited on a table of factual and faulty captions (tests/data/caption_audit.tsv).

Each caption is checked alone (the per-caption rules) under the default captions config, where visible
expressions of emotion are banned, and again with `visible_expressions: allowed`, where only those change verdict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voxemoset.config import CaptionsConfig
from voxemoset.stages.captions import default_lexicon, rules_of
from voxemoset.stages.captions.validate import check_caption, load_lexicon

TABLE = Path(__file__).parent / "data" / "caption_audit.tsv"


def _cases() -> list[tuple[str, str, str]]:
    rows = [line.split("\t") for line in TABLE.read_text().splitlines() if line and not line.startswith("#")]
    return [(group, verdict, caption) for group, verdict, caption in rows]


CASES = _cases()
LEXICON = load_lexicon(default_lexicon())


def _verdict(caption: str, cfg: CaptionsConfig) -> str:
    failure = check_caption(caption, LEXICON, rules_of(cfg))
    return "ok" if failure is None else failure[0].removeprefix("captions_")


def test_the_table_covers_what_the_audit_asks_for():
    groups = {g: sum(1 for c in CASES if c[0] == g) for g in {c[0] for c in CASES}}
    assert len(CASES) >= 200
    assert groups["frames"] >= 25 and groups["actions"] >= 25 and groups["numbers"] >= 20, groups
    assert len({c[2] for c in CASES}) == len(CASES)  # no caption twice


@pytest.mark.parametrize(("group", "verdict", "caption"), CASES, ids=[f"{g}-{i}" for i, (g, *_) in enumerate(CASES)])
def test_each_caption_gets_its_verdict(group, verdict, caption):
    assert _verdict(caption, CaptionsConfig()) == verdict
    allowed = "ok" if verdict == "visible_expression" else verdict
    assert _verdict(caption, CaptionsConfig(visible_expressions="allowed")) == allowed


def test_the_report_shows_drops_per_emotion_and_flags_the_outlier(emoset_root, tmp_path):
    """Every sadness image answered with a preamble: the report's per-emotion drops match a count made here from
    the images and the rejects, and sadness (the only emotion dropped) is flagged."""
    import json
    from collections import Counter

    from tests.builders import make_config, stage_rows, stage_table
    from voxemoset.report.caption_drops import caption_drops, to_markdown
    from voxemoset.stages.captions import CaptionsStage
    from voxemoset.stages.images import ImagesStage
    from voxemoset.store.runner import run_stage, stage_dir

    out = tmp_path / "out"
    table = tmp_path / "answers.jsonl"
    cfg = make_config(out, emoset_root, captions={"backend": "table", "table": str(table)})
    run_stage(ImagesStage(), cfg, out)
    images = stage_table(stage_dir(out, "images")).select(["image_id", "emotion"]).to_pylist()
    emotion_of = {r["image_id"]: r["emotion"] for r in images}
    lines, rewritten = [], 0
    for line in (emoset_root / "fixture_captions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if emotion_of.get(row["image_id"]) == "sadness" and row["answer"].strip():
            rewritten += 1
            captions = json.loads(row["answer"])["captions"]
            row["answer"] = json.dumps({"captions": ["The image shows " + captions[0][0].lower() + captions[0][1:],
                                                     *captions[1:]]})  # fmt: skip
        lines.append(json.dumps(row))
    table.write_text("\n".join(lines) + "\n")
    run_stage(CaptionsStage(), cfg, out)

    rejects = stage_rows(stage_dir(out, "captions") / "rejects")
    want = Counter((emotion_of[r["source"]], r["reason"]) for r in rejects if r["source"] in emotion_of)
    drops = caption_drops(out)
    per = drops["per_emotion"]
    assert {(e, reason): n for e, v in per.items() for reason, n in v["reasons"].items()} == dict(want)
    assert {e: v["images"] for e, v in per.items()} == dict(Counter(emotion_of.values()))
    assert per["sadness"]["reasons"]["captions_preamble"] == rewritten > 0
    assert per["sadness"]["dropped"] == per["sadness"]["images"]
    assert drops["flagged"] == ["sadness"] and "sadness (flagged)" in to_markdown(drops)
