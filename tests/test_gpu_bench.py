"""benchmarks/gpu.py --tiny: the GPU benchmark's code runs on the CPU and writes every key its docstring documents."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu.py"
SECTIONS = ("f5", "train", "llava", "speech_gpus")


def documented_keys() -> list[str]:
    """The dotted key paths of the docstring's "JSON schema" block (`sections.<name>.rows[].status`, ...)."""
    doc = ast.get_docstring(ast.parse(SCRIPT.read_text()))
    block = doc.split("JSON schema", 1)[1]
    return [m.group(1) for m in re.finditer(r"^    ([a-z_0-9]+(?:\.[a-z_0-9<>\[\]]+)*)\s", block, re.MULTILINE)]


def values_at(obj, path: list[str]) -> list:
    """Every value at `path`; `<name>` means each section, `rows[]` each row. Raises KeyError when one is missing."""
    if not path:
        return [obj]
    head, rest = path[0], path[1:]
    if head == "<name>":
        return [v for name in SECTIONS for v in values_at(obj[name], rest)]
    if head.endswith("[]"):
        return [v for item in obj[head[:-2]] for v in values_at(item, rest)]
    return values_at(obj[head], rest)


def test_the_schema_block_is_read():
    keys = documented_keys()
    assert {"schema", "env.gpu", "sections.<name>.rows[].status", "sections.train.rows[].peak_share"} <= set(keys)
    assert len(keys) > 40


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=420)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(out.read_text())


def test_tiny_run_writes_every_documented_key(tiny_result):
    for key in documented_keys():
        try:
            values_at(tiny_result, key.split("."))
        except KeyError as exc:
            pytest.fail(f"{key}: missing {exc}")


def test_tiny_run_measures_every_row(tiny_result):
    assert tiny_result["schema"] == "voxemoset-gpu-bench/1" and tiny_result["tiny"] is True
    assert tiny_result["device"] == "cpu" and tiny_result["peak_bf16_tflops"] is None
    rows = {name: tiny_result["sections"][name]["rows"] for name in SECTIONS}
    for name in SECTIONS:
        assert tiny_result["sections"][name]["status"] == "ok", tiny_result["sections"][name]["error"]
        assert rows[name] and all(r["status"] == "ok" for r in rows[name]), rows[name]
    assert {r["batch_size"] for r in rows["f5"]} == {1, 2} and "eager" in {r["path"] for r in rows["f5"]}
    assert all(r["utt_per_s"] > 0 for r in rows["f5"])
    assert [r["mode"] for r in rows["train"]] == ["frozen", "lora", "full"]
    assert all(r["images_per_s"] > 0 and r["tflop_per_step"] > 0 for r in rows["train"])
    assert all(r["images_per_s"] > 0 and r["new_tokens"] > 0 for r in rows["llava"])
    assert tiny_result["sections"]["f5"]["config"]["generated_s"] == pytest.approx(4.25, abs=0.2)
    # One speech worker per declared GPU, each holding a GPU of its own; rows for 1 and 2 GPUs.
    scale = tiny_result["sections"]["speech_gpus"]
    assert scale["config"]["workers"] == 2 and sorted(map(len, scale["config"]["worker_gpus"])) == [1, 1]
    assert len({g for ids in scale["config"]["worker_gpus"] for g in ids}) == 2
    assert [r["gpus"] for r in rows["speech_gpus"]] == [1, 2] and rows["speech_gpus"][0]["speedup"] == 1.0
    assert all(r["utt_per_s"] > 0 and r["utterances"] == 2 * r["gpus"] for r in rows["speech_gpus"])


@pytest.fixture
def bench(monkeypatch):
    """benchmarks/gpu.py imported in-process (its helpers live beside it)."""
    import importlib

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("gpu")


def test_a_failing_row_is_recorded_and_rows_past_the_budget_are_skipped(bench):
    import time

    import torch

    sections = bench.gpu_sections
    cpu, later = torch.device("cpu"), time.monotonic() + 60

    def oom() -> dict:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80 GiB")

    failed = sections.guarded(sections.LLAVA_ROW, {"batch_size": 32}, oom, cpu, later)
    assert failed["status"] == "error" and failed["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert failed["batch_size"] == 32 and failed["images_per_s"] is None and failed["peak_memory_gb"] is None
    spent = sections.guarded(sections.LLAVA_ROW, {"batch_size": 1}, lambda: {"images": 1}, cpu, time.monotonic() - 1)
    assert spent["status"] == "skipped" and spent["images"] is None
    ok = sections.guarded(sections.LLAVA_ROW, {"batch_size": 1}, lambda: {"images": 3}, cpu, later)
    assert ok["status"] == "ok" and ok["error"] is None and ok["images"] == 3


def test_a_failing_section_is_recorded_and_the_others_are_skipped(bench, monkeypatch, tmp_path):
    def broken(*args):
        raise RuntimeError("no LLaVA today")

    monkeypatch.setattr(bench.gpu_sections, "measure_llava", broken)
    out = tmp_path / "gpu.json"
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--tiny", "--sections", "llava", "--out", str(out)])
    bench.main()
    result = json.loads(out.read_text())
    assert [result["sections"][n]["status"] for n in SECTIONS] == ["skipped", "skipped", "error", "skipped"]
    assert result["sections"]["llava"]["error"] == "RuntimeError: no LLaVA today"
    assert result["sections"]["f5"] == {"status": "skipped", "error": None, "wall_s": None, "budget_s": 180,
                                        "config": {}, "rows": []}  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["gpu.py", "--tiny", "--sections", "f5,tts"])
    with pytest.raises(SystemExit) as exc:
        bench.main()
    assert exc.value.code == 2


def test_peak_table_knows_the_h100_sxm_by_its_device_name(bench):
    assert bench.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_tflops("NVIDIA H200") == 989.0
    assert bench.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.peak_tflops("NVIDIA L4") is None and bench.peak_tflops(None) is None
