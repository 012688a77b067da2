"""`voxemoset evaluate`: the paper's protocol. Every system (the speech model and the baselines) draws every test
set's seeded sample of prompts; FID against the real test images, CLIPScore against the transcripts, Emo-A on
VoxEmoset; one table (Tab. 2 layout) as `<output_dir>/table.md` and `table.json`.

Generated images are kept as `<output_dir>/images/<system>/<test set>/<id>.png`; a rerun reuses them.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from voxemoset.errors import UserError
from voxemoset.train.eval.config import EvalConfig, System
from voxemoset.train.eval.metrics import MetricModels, check_weights
from voxemoset.train.eval.sample import EvalSample, load_sample


def slug(name: str) -> str:
    """A folder name for a system or test set."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "x"


def _draw(generator, sample: EvalSample, scorer, folder: Path, batch_size: int, progress: bool) -> None:
    """Generate (or reload) the sample's images batch by batch and score them."""
    from PIL import Image

    from voxemoset.train.encoders import TensorStore

    embeddings = sample.test_set.embeddings
    store = TensorStore(embeddings) if embeddings and getattr(generator, "uses_frames", False) else None
    folder.mkdir(parents=True, exist_ok=True)
    columns = tuple(dict.fromkeys((*generator.columns, "id", "caption", "emotion")))
    done = 0
    for rows in sample.batches(batch_size, columns):
        paths = [folder / f"{slug(row['id'])}.png" for row in rows]
        if all(p.is_file() for p in paths):
            images = [Image.open(p).convert("RGB") for p in paths]
        else:
            images = generator(rows, store)
            for image, path in zip(images, paths, strict=True):
                image.save(path)
        for image, row in zip(images, rows, strict=True):
            image.info["row_id"] = row["id"]  # lets a test's oracle classifier know the row (real ones ignore it)
        scorer.update(images, rows)
        done += len(rows)
        if progress:
            print(f"{folder.parent.name} / {folder.name}: {done}/{len(sample)}", file=sys.stderr)
    transcripts = getattr(generator, "transcripts", None)  # the cascade's: what SD-1.5 was given
    if transcripts:
        ids = set(sample.ids)
        kept = {k: v for k, v in transcripts.items() if k in ids}
        (folder / "transcripts.json").write_text(json.dumps(kept, indent=1, ensure_ascii=False))


def evaluate(cfg: EvalConfig, progress: bool = False, models: MetricModels | None = None) -> dict:
    """Run every system on every test set and write the table; `models` replaces metric models (tests)."""
    from voxemoset.train.eval.score import SetScorer, make_clip
    from voxemoset.train.eval.systems import build_system, check_systems, eval_device
    from voxemoset.train.eval.table import build_table, write_table

    device = eval_device(cfg)
    check_systems(cfg)  # every model located before anything is generated
    metric_models = check_weights(cfg, models, device)
    samples = [load_sample(t, cfg.output_dir / "samples") for t in cfg.test_sets]
    if "fid" in cfg.metrics and min(len(s) for s in samples) < 2:
        raise UserError("FID needs at least 2 prompts per test set")
    clip = make_clip(metric_models, device)
    scorers = [SetScorer(s, metric_models, cfg.resolution, clip, device) for s in samples]
    results: dict[str, dict] = {}
    for system in cfg.systems:
        generator = build_system(system, cfg)
        results[system.label] = {}
        for sample, scorer in zip(samples, scorers, strict=True):
            scorer.start()
            folder = cfg.output_dir / "images" / slug(system.label) / slug(sample.test_set.name)
            _draw(generator, sample, scorer, folder, cfg.batch_size, progress)
            results[system.label][sample.test_set.name] = scorer.result()
        del generator
    sets = [_set_info(s, sc) for s, sc in zip(samples, scorers, strict=True)]
    table = build_table(sets, [_system_info(s) for s in cfg.systems], results, cfg.metrics)
    write_table(table, cfg.output_dir)
    return table


def _set_info(sample: EvalSample, scorer) -> dict:
    t = sample.test_set
    return {"name": t.name, "kind": t.kind, "split": t.split, "prompts": len(sample), "seed": t.seed,
            "real_images": scorer.real_count}  # fmt: skip


def _system_info(system: System) -> dict:
    return {"name": system.label, "kind": system.kind, "checkpoint": str(system.checkpoint or "")}
