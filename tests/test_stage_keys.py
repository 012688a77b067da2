"""Stage keys: speed-only settings (batch sizes, devices, server knobs) key no shard; output settings key all."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from tests.builders import stage_rows
from tests.gates_fakes import scripted_stage
from voxemoset.audio import TTS_RATE
from voxemoset.config import Config, PrepConfig, is_speed_only, output_settings, parse_config
from voxemoset.stages.captions import CaptionsStage
from voxemoset.stages.dataset import DatasetStage
from voxemoset.stages.gates import GatesStage
from voxemoset.stages.images import ImagesStage
from voxemoset.stages.references import ReferencesStage
from voxemoset.stages.speech import SpeechStage
from voxemoset.store.runner import StageRunner, list_shards, plan_stage, run_stage, stage_dir

# Every speed-only field, with a valid value other than its default.
SPEED_ONLY_CHANGES = {
    "captions.device": "cuda:1",
    "captions.batch_size": 3,
    "captions.openai.base_url": "http://10.0.0.1:9000/v1",
    "captions.openai.api_key_env": "OTHER_KEY",
    "captions.openai.concurrency": 2,
    "captions.openai.max_retries": 1,
    "captions.openai.backoff_s": 0.5,
    "captions.openai.timeout_s": 30.0,
    "captions.vllm.max_model_len": 4096,
    "captions.vllm.gpu_memory_utilization": 0.5,
    "captions.vllm.max_num_seqs": 4,
    "captions.vllm.enforce_eager": True,
    "references.whisper.device": "cuda",
    "references.whisper.batch_size": 2,
    "speech.device": "cuda:1",
    "speech.batch_size": 3,
    "speech.compile": True,
    "speech.length_buckets": [256, 512],
    "speech.cuda_graphs": True,
    "gates.emotion_device": "cuda",
    "gates.emotion_batch_size": 2,
    "gates.dnsmos_device": "cuda",
    "gates.whisper.device": "cuda",
    "gates.whisper.batch_size": 2,
    "orchestration.task_runner": "ray",
    "orchestration.max_workers": 5,
    "orchestration.ray_address": "ray://head:10001",
    "orchestration.ray_num_cpus": 3,
    "orchestration.gpus_per_task": 0.5,
    "orchestration.task_retries": 0,
    "orchestration.cpu_threads": 1,
    "orchestration.parallel_stages": False,
    "report.clip_device": "cuda",
    "report.clip_batch_size": 2,
}
STAGES = {"images": ImagesStage, "captions": CaptionsStage, "references": ReferencesStage,
          "speech": SpeechStage, "gates": GatesStage, "dataset": DatasetStage}  # fmt: skip


def _speed_only_fields(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        if is_speed_only(field):
            found.add(prefix + name)
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found |= _speed_only_fields(field.annotation, f"{prefix}{name}.")
    return found


def _lookup(data: dict, dotted: str) -> object:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return KeyError
        data = data[part]
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory, emoset_root, tiny_models) -> tuple[dict, Path]:
    """images -> captions (table) -> references (CREMA-D, RAVDESS) -> speech (tiny F5) -> gates, on fixtures."""
    from voxemoset.fixtures.speech import build_speech_corpora

    root = tmp_path_factory.mktemp("keys")
    build_speech_corpora(root / "corpora", per_split=1)
    data = {
        "out": str(root / "out"),
        "sources": {"emoset": str(emoset_root), "cremad": str(root / "corpora" / "CREMA-D"),
                    "ravdess": str(root / "corpora" / "RAVDESS")},
        "images": {"limit_per_split": 2},
        "captions": {"backend": "table", "table": str(emoset_root / "fixture_captions.jsonl")},
        "references": {"corpora": ["cremad", "ravdess"]},
        "speech": {"checkpoint": str(tiny_models["f5tts"]), "vocoder": str(tiny_models["vocos"]),
                   "device": "cpu", "nfe_step": 2, "batch_size": 4},
        "gates": {"max_attempts": 1, "asr": False, "require_emotion": False,
                  "signal": {"min_dbfs": -120, "max_clipped_fraction": 1.0, "min_s": 0.1}},
    }  # fmt: skip
    cfg = parse_config(data)
    for name in ("images", "captions", "references", "speech"):
        run_stage(STAGES[name](), cfg, cfg.out)
    rows = stage_rows(stage_dir(cfg.out, "speech"))
    assert rows, "the fixture made no speech"
    run_stage(scripted_stage(cfg, rows), cfg, cfg.out)
    return data, cfg.out


def _pending(name: str, cfg: Config) -> tuple[int, int]:
    stage = STAGES[name]()
    plan = plan_stage(stage, cfg)
    return len(StageRunner(stage, cfg, cfg.out).pending(plan)), len(plan.jobs)


def test_speed_only_batch_size_recomputes_no_speech_or_gates_shard(built):
    data, _ = built
    cfg = parse_config(data, {"speech.batch_size": 1})
    for name in ("speech", "gates"):
        todo, jobs = _pending(name, cfg)
        assert jobs and todo == 0, name


def test_output_setting_recomputes_every_speech_and_gates_shard(built):
    data, _ = built
    cfg = parse_config(data, {"speech.nfe_step": 3})
    for name in ("speech", "gates"):
        todo, jobs = _pending(name, cfg)
        assert jobs and todo == jobs, name


def test_speed_only_table_covers_every_marked_field():
    assert _speed_only_fields(Config) == set(SPEED_ONLY_CHANGES)


def test_speed_only_fields_are_absent_from_output_settings():
    settings = output_settings(Config())
    for dotted in SPEED_ONLY_CHANGES:
        assert _lookup(settings, dotted) is KeyError, dotted
    assert _lookup(settings, "speech.dtype") == "auto"  # dtype changes outputs: it stays


def test_speed_only_settings_leave_every_plan_key_unchanged(built):
    data, _ = built
    base = parse_config(data)
    keys = {name: [(j.name, j.key) for j in plan_stage(cls(), base).jobs] for name, cls in STAGES.items()}
    assert all(keys.values())
    for dotted, value in SPEED_ONLY_CHANGES.items():
        changed = parse_config(data, {dotted: value})
        assert _lookup(changed.model_dump(mode="json"), dotted) == value, dotted
        for name, cls in STAGES.items():
            assert [(j.name, j.key) for j in plan_stage(cls(), changed).jobs] == keys[name], (dotted, name)


def test_prep_rate_is_the_tts_rate():
    assert PrepConfig().sample_rate == TTS_RATE


def _rewrite(out: Path, stage: str, name: str, table) -> None:
    """Replace a finished shard with `table` and mark it so, as a rerun of that stage computing it anew would."""
    import json

    from voxemoset.store.verify import describe_file, marker_path

    folder = stage_dir(out, stage)
    pq.write_table(table, folder / f"{name}.parquet")
    marker = json.loads(marker_path(folder, name).read_text())
    marker["files"][f"{name}.parquet"] = describe_file(folder / f"{name}.parquet", table.num_rows)
    marker_path(folder, name).write_text(json.dumps(marker))


def test_a_changed_references_shard_recomputes_exactly_the_gates_shards_that_read_it(built):
    """Gates retries speak with references of an utterance's split: a test references shard whose content changed
    recomputes the test gates shards, and no train one."""
    data, out = built
    cfg = parse_config(data)
    refs = stage_dir(out, "references")
    name = next(p.stem for p in list_shards(refs) if "-test-" in p.stem)
    saved = {p: p.read_bytes() for p in (refs / f"{name}.parquet", refs / "_done" / f"{name}.json")}
    try:
        table = pq.read_table(refs / f"{name}.parquet")
        texts = [t + " again" for t in table.column("transcript").to_pylist()]
        _rewrite(out, "references", name, table.set_column(table.schema.get_field_index("transcript"), "transcript",
                                                           __import__("pyarrow").array(texts)))  # fmt: skip
        stage = GatesStage()
        plan = plan_stage(stage, cfg)
        pending = {j.name for j in StageRunner(stage, cfg, out).pending(plan)}
        assert pending == {j.name for j in plan.jobs if j.name.startswith("test-")} and pending, pending
    finally:
        for path, content in saved.items():
            path.write_bytes(content)
    assert _pending("gates", cfg)[0] == 0


def test_asr_weights_replaced_in_place_recompute_gates(built, tmp_path):
    """The ASR model is keyed by its files' content, not its path: other weights in the same folder re-key gates."""
    from voxemoset.models.tiny.whisper import write_whisper

    data, _ = built
    folder = write_whisper(tmp_path / "whisper", seed=0)
    cfg = parse_config(data, {"gates.asr": True, "gates.whisper.model": str(folder)})
    before = [j.key for j in plan_stage(GatesStage(), cfg).jobs]
    assert before == [j.key for j in plan_stage(GatesStage(), cfg).jobs]  # nothing changed: the same keys
    write_whisper(folder, seed=1)  # same architecture, same file sizes, other weights
    after = [j.key for j in plan_stage(GatesStage(), cfg).jobs]
    assert len(after) == len(before) and not set(after) & set(before)
