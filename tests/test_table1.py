"""Table 1 recomputed independently from the published Parquet of the demo build (pyarrow, numpy and transformers'
CLIP called directly, not the report's code) and compared with report.json; a missing CLIP still writes the rest."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

# The shared demo build (tests/conftest.py `demo_build`) runs in the first test that asks for it: a few minutes.
pytestmark = pytest.mark.timeout(1200)
ROWS = ("images", "utterances", "avg_duration_s", "avg_words", "nmos", "emo_c", "clip_score")


@pytest.fixture(scope="module")
def demo(demo_build) -> tuple[Path, str]:
    """The demo build (tests/conftest.py: once per session; it writes its own report) and what it printed."""
    out, proc = demo_build
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def published_rows(out: Path) -> list[dict]:
    """Every published row, read with pyarrow only."""
    return [r for p in sorted((out / "dataset" / "data").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def clip_scores(rows: list[dict], clip_dir: Path) -> dict[str, float]:
    """id -> 100 * max(cos, 0) of the row's image and caption, one pair at a time through CLIPModel's forward."""
    import torch
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(clip_dir).eval()
    processor = CLIPProcessor.from_pretrained(clip_dir)
    scores = {}
    for r in rows:
        image = Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB")
        with torch.no_grad():
            o = model(**processor(text=[r["caption"]], images=[image], return_tensors="pt", padding=True))
        scores[r["id"]] = 100 * max(float((o.image_embeds * o.text_embeds).sum()), 0.0)
    return scores


def expected_table1(rows: list[dict], clip: dict[str, float] | None, sample: int, seed: int) -> dict:
    """Table 1 per split and all, each figure from its definition."""
    groups = {s: [r for r in rows if r["split"] == s] for s in sorted({r["split"] for r in rows})} | {"all": rows}
    table = {}
    for name, group in groups.items():
        ordered = sorted(group, key=lambda r: r["id"])
        picked = np.random.default_rng(seed).choice(len(ordered), size=min(sample, len(ordered)), replace=False)
        table[name] = {
            "images": len({r["image_id"] for r in group}),
            "utterances": len(group),
            "avg_duration_s": float(np.mean([r["duration_s"] for r in group])),
            "avg_words": float(np.mean([r["n_words"] for r in group])),
            "nmos": float(np.mean([ordered[i]["dnsmos_ovrl"] for i in picked])),
            "emo_c": float(np.mean([r["emo_target_conf"] for r in group])),
            "clip_score": float(np.mean([clip[r["id"]] for r in group])) if clip else None,
        }
    return table


def assert_same(report: dict, expected: dict) -> None:
    assert set(report) == set(expected)
    for split, figures in expected.items():
        for key in ROWS:
            want, got = figures[key], report[split][key]
            assert (got is None) if want is None else got == pytest.approx(want, abs=2e-4), (split, key, got, want)


def test_demo_writes_the_report_and_says_where(demo):
    out, printed = demo
    assert f"report: {out / 'report' / 'index.html'}" in printed
    for name in ("report.json", "report.md", "index.html"):
        assert (out / "report" / name).is_file(), name


def test_table1_recomputed_from_the_published_parquet(demo):
    out, _ = demo
    report = json.loads((out / "report" / "report.json").read_text())
    rows = published_rows(out)
    assert rows and {r["split"] for r in rows} == {"train", "test"}
    expected = expected_table1(rows, clip_scores(rows, out / "models" / "clip"), 10_000, 0)
    assert_same(report["table1"], expected)
    method = report["table1_method"]
    assert method["nmos"]["sample"] == 10_000 and method["nmos"]["seed"] == 0
    assert method["nmos"]["sampled"] == {s: t["utterances"] for s, t in expected.items()}  # all: fewer than 10k
    assert method["clip_score"] == {"model": "clip", "status": "ok", "pairs": len(rows)}
    assert 0 < expected["all"]["clip_score"] < 100
    table = (out / "report" / "report.md").read_text().split("## Table 1\n", 1)[1]
    assert f"| CLIPScore | {report['table1']['train']['clip_score']} |" in table and "Emo-C" in table


def test_nmos_is_a_seeded_sample(demo):
    """With fewer rows than the sample size every clip counts; a smaller sample is the seeded choice, per split."""
    from voxemoset.config import ReportConfig
    from voxemoset.report.figures import compute

    out, _ = demo
    rows = published_rows(out)
    settings = ReportConfig(clip_model=str(out / "models" / "clip"), nmos_sample=7, seed=3)
    report = compute(out, settings)
    expected = expected_table1(rows, None, 7, 3)
    for split, figures in expected.items():
        assert report["table1"][split]["nmos"] == pytest.approx(figures["nmos"], abs=2e-4), split
    assert report["table1_method"]["nmos"]["sampled"] == {s: 7 for s in expected}
    assert report["table1"]["all"]["nmos"] != pytest.approx(expected_table1(rows, None, 7, 4)["all"]["nmos"])


def test_missing_clip_writes_the_rest_then_fails_naming_the_download(demo, tmp_path):
    import shutil
    import subprocess
    import sys

    out, _ = demo
    copy = tmp_path / "build"
    shutil.copytree(out / "dataset", copy / "dataset")
    shutil.copytree(out / "stages", copy / "stages")
    shutil.copy(out / "manifest.json", copy / "manifest.json")
    absent = tmp_path / "no-clip"
    voxemoset = str(Path(sys.executable).with_name("voxemoset"))
    proc = subprocess.run([voxemoset, "report", str(copy), "--sample", "2", "--clip-model", str(absent)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CLIPScore missing") and len(proc.stderr.strip().splitlines()) == 1
    assert f"hf download openai/clip-vit-large-patch14 --local-dir {absent}" in last
    report = json.loads((copy / "report" / "report.json").read_text())
    expected = expected_table1(published_rows(copy), None, 10_000, 0)
    assert_same(report["table1"], expected)  # every other figure written; CLIPScore None
    assert report["table1_method"]["clip_score"]["status"] == "missing"
    assert "CLIPScore missing" in (copy / "report" / "report.md").read_text()
    assert (copy / "report" / "index.html").is_file()
