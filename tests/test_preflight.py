"""The preflight: every missing source, weight, tool, GPU and disk problem found at once, before any stage runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import write_config
from voxemoset.config import load_config, parse_config
from voxemoset.preflight import PreflightError, Report, require_ready, run_preflight
from voxemoset.preflight.items import problem, ready
from voxemoset.preflight.weights import plan_downloads

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "configs" / "example.yaml"


def _cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voxemoset.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    """The demo's inputs (miniature corpora, tiny models) and its config as data."""
    from voxemoset.demo import write_demo_inputs

    path = write_demo_inputs(tmp_path_factory.mktemp("demo"))
    return yaml.safe_load(path.read_text())


@pytest.fixture
def broken(demo, tmp_path) -> Path:
    """The demo config with two models and one corpus pointed at folders that do not exist."""
    data = yaml.safe_load(yaml.safe_dump(demo))
    data["out"] = str(tmp_path / "out")
    data["speech"]["vocoder"] = str(tmp_path / "no-vocos")
    data["gates"]["emotion_model"] = str(tmp_path / "no-emotion2vec")
    data["sources"]["cremad"] = str(tmp_path / "no-CREMA-D")
    return write_config(tmp_path / "broken.yaml", data)


def test_demo_config_passes_the_preflight(demo):
    report = run_preflight(parse_config(demo))
    assert report.problems == [], [i.line() for i in report.problems]
    kinds = {i.kind for i in report.ready}
    assert {"source", "model", "tool", "disk"} <= kinds
    assert require_ready(report) is report


def test_check_lists_every_problem_at_once(broken, tmp_path):
    proc = _cli("check", "-c", str(broken))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    text = proc.stdout
    problems = text[text.index("problems (3):") :]
    assert str(tmp_path / "no-vocos") in problems and "hf download charactr/vocos-mel-24khz" in problems
    assert str(tmp_path / "no-emotion2vec") in problems and "hf download emotion2vec/emotion2vec_plus_large" in problems
    assert "sources.cremad" in problems and str(tmp_path / "no-CREMA-D") in problems
    # What is ready is listed too: the other corpora and models.
    assert "ready (" in text and "sources.emoset" in text.split("problems (3):")[0]


def test_build_stops_before_any_stage_runs(broken, tmp_path):
    proc = _cli("build", "-c", str(broken))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: 3 problems found before any stage ran")
    listed = "\n".join(lines[:-1])
    for needle in ("no-vocos", "no-emotion2vec", "no-CREMA-D"):
        assert needle in listed
    assert not (tmp_path / "out" / "stages").exists()


def test_a_stage_checks_only_what_it_needs(broken):
    cfg = load_config(broken)
    assert run_preflight(cfg, ("images",)).problems == []
    assert [i.name for i in run_preflight(cfg, ("speech",)).problems] == ["Vocos mel 24 kHz (speech.vocoder)"]
    assert [i.name for i in run_preflight(cfg, ("references",)).problems] == ["sources.cremad"]
    # The gates regenerate speech, so they need the vocoder as well as their own emotion model.
    gates = {i.name for i in run_preflight(cfg, ("gates",)).problems}
    assert gates == {"Vocos mel 24 kHz (speech.vocoder)", "emotion2vec_plus (gates.emotion_model)"}


def test_a_lone_problem_is_the_error_line_itself(broken):
    proc = _cli("stage", "speech", "-c", str(broken))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: Vocos mel 24 kHz (speech.vocoder): no weights at") and "hf download" in lines[0]


def test_a_gpu_device_needs_that_gpu(demo):
    data = yaml.safe_load(yaml.safe_dump(demo))
    data["speech"]["device"] = "cuda:99"
    items = run_preflight(parse_config(data), ("speech",)).problems
    assert [(i.kind, i.name) for i in items] == [("gpu", "speech.device")]
    assert "cuda:99 asked for" in items[0].detail
    data["speech"]["device"] = "auto"  # auto falls back to the CPU by itself
    assert run_preflight(parse_config(data), ("speech",)).problems == []


def test_check_says_when_the_threads_runner_leaves_gpus_idle(demo, tmp_path):
    """A stand-in `nvidia-smi` (no GPU here) lists what a 4-GPU node's driver lists; CUDA_VISIBLE_DEVICES narrows it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n" + "".join(f"echo 'GPU {k}: NVIDIA H100 80GB HBM3 (UUID: GPU-{k})'\n" for k in range(4))
    )
    smi.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    threads = write_config(tmp_path / "threads.yaml", {**demo, "out": str(tmp_path / "out")})
    proc = _cli("check", "-c", str(threads), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 GPUs visible, but the threads runner runs the model stages on one of them" in proc.stdout
    assert "orchestration.task_runner: ray" in proc.stdout
    narrowed = _cli("check", "-c", str(threads), env={**env, "CUDA_VISIBLE_DEVICES": "2"})
    assert "GPUs visible" not in narrowed.stdout
    on_ray = write_config(tmp_path / "ray.yaml", {**demo, "out": str(tmp_path / "out"),
                                                  "orchestration": {"task_runner": "ray"}})  # fmt: skip
    assert "GPUs visible" not in _cli("check", "-c", str(on_ray), env=env).stdout


def test_too_little_disk_is_a_problem(demo, monkeypatch):
    import shutil

    from voxemoset.preflight import disk

    monkeypatch.setattr(disk.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 0))
    items = [i for i in run_preflight(parse_config(demo)).problems if i.kind == "disk"]
    assert len(items) == 1 and "0.0 GB free" in items[0].detail
    assert disk.estimate_bytes(118_102) > 100e9  # the full build: images repeated per utterance in the dataset


def test_require_ready_lists_every_problem_one_per_line():
    report = Report([ready("source", "a", "ok"), problem("model", "b", "gone"), problem("tool", "c", "missing")])
    report.items.append(problem("model", "d", "not needed", blocking=False))
    with pytest.raises(PreflightError) as e:
        require_ready(report)
    assert str(e.value).splitlines() == ["preflight found 2 problems:", "  b: gone", "  c: missing"]


def test_example_config_configures_the_whole_chain():
    cfg = load_config(EXAMPLE)
    assert cfg.captions.backend == "vllm" and cfg.references.corpora == ("cremad", "mead", "ravdess")
    raw = yaml.safe_load(EXAMPLE.read_text())
    for section in ("sources", "images", "captions", "references", "speech", "gates", "dataset", "orchestration"):
        assert section in raw, section


def test_check_on_the_example_names_every_missing_weight(tmp_path):
    proc = _cli("check", "-c", str(EXAMPLE), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    for role in ("LLaVA-OneVision", "Whisper", "F5-TTS", "Vocos", "emotion2vec", "CLIP"):
        line = next(ln for ln in proc.stdout.splitlines() if role in ln)
        assert "no weights at" in line and "hf download" in line, line
    for corpus in ("emoset", "cremad", "mead", "ravdess"):
        if not Path(getattr(load_config(EXAMPLE).sources, corpus)).exists():
            assert f"sources.{corpus}: folder not found" in proc.stdout


def test_weights_prints_the_commands_and_writes_a_config(tmp_path):
    target = tmp_path / "weights"
    proc = _cli("weights", str(target), "-c", str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    commands = [ln for ln in proc.stdout.splitlines() if ln.startswith("hf download")]
    assert len(commands) == 6 and all(f"--local-dir {target}/" in c for c in commands)
    cfg = load_config(target / "config.yaml")
    assert cfg.sources.emoset == load_config(EXAMPLE).sources.emoset  # the rest of the config is kept
    for where in (cfg.captions.model, cfg.references.whisper.model, cfg.gates.whisper.model, cfg.speech.checkpoint,
                  cfg.speech.vocoder, cfg.gates.emotion_model, cfg.report.clip_model):  # fmt: skip
        assert Path(where).parent == target
    # The written config's missing models are looked for where the commands put them.
    models = [i for i in run_preflight(cfg).items if i.kind == "model"]
    assert all(str(target) in i.detail for i in models)


def test_weights_skips_what_is_there(demo, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "vocos-mel-24khz").symlink_to(demo["speech"]["vocoder"])
    plan = {d.need.role: d for d in plan_downloads({}, tmp_path / "w")}
    assert plan["Vocos mel 24 kHz"].command is None and plan["emotion2vec_plus"].command is not None


def test_weights_run_runs_each_command_and_stops_at_a_failure(tmp_path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    fake = bin_dir / "hf"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit "${{FAKE_HF_EXIT:-0}}"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = _cli("weights", str(tmp_path / "w"), "--run", env=env)
    assert proc.returncode == 0, proc.stderr
    assert len(calls.read_text().splitlines()) == len(plan_downloads({}, tmp_path / "w"))
    failing = _cli("weights", str(tmp_path / "w2"), "--run", env={**env, "FAKE_HF_EXIT": "3"})
    lines = [ln for ln in failing.stderr.splitlines() if ln.strip()]
    assert failing.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: download failed (exit 3): hf")


def test_demo_runs_the_preflight_first(demo, tmp_path):
    import shutil

    out = tmp_path / "demo"
    shutil.copytree(demo["out"], out, symlinks=True)
    shutil.rmtree(out / "models" / "vocos")  # the models' marker stays: the demo does not rebuild them
    proc = _cli("demo", "--out", str(out))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Vocos mel 24 kHz (speech.vocoder)" in lines[0], proc.stderr
    assert not (out / "stages").exists()
