"""Captions per second: the vLLM backend against the transformers backend, same tiny model and images, one run.

    .venv/bin/python benchmarks/bench_captions.py [--model DIR] [--vllm-python .venv-vllm/bin/python]

Images are the fixture EmoSet tree after the images stage (39 images of 64-256 px). Both backends get the
same images, seeds, prompt (rendered by each with the checkpoint's chat template), batch size and token
budget; vLLM runs in its own environment (a subprocess of this script in `--worker` mode) and additionally
constrains its answers to the caption JSON schema. Engine/model load is timed apart from captioning; one
warm-up batch is excluded. Each answer is meant to hold three captions, so captions/s = 3 x answers/s.
Writes benchmarks/results/captions.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT_KEYS = ("hidden_size", "num_attention_heads", "num_key_value_heads", "num_hidden_layers", "vocab_size")
DEFAULT_VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


def write_images(folder: Path) -> Path:
    """The fixture EmoSet tree through the images stage, saved as PNG files."""
    import pyarrow.parquet as pq
    from PIL import Image

    from voxemoset.config import parse_config
    from voxemoset.fixtures.emoset import build_emoset_tree
    from voxemoset.stages.images import ImagesStage
    from voxemoset.store.runner import list_shards, run_stage, stage_dir

    build_emoset_tree(folder / "EmoSet")
    cfg = parse_config({"out": str(folder / "out"), "sources": {"emoset": str(folder / "EmoSet")}})
    run_stage(ImagesStage(), cfg, cfg.out)
    pngs = folder / "pngs"
    pngs.mkdir()
    for shard in list_shards(stage_dir(cfg.out, "images")):
        for row in pq.read_table(shard, columns=["image_id", "image"]).to_pylist():
            Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB").save(pngs / f"{row['image_id']}.png")
    return pngs


def measure(captioner, images: list, batch_size: int, count_tokens) -> dict:
    """Time captioning every image in batches, after one warm-up batch."""
    seeds = list(range(1000, 1000 + len(images)))
    captioner.caption(images[:batch_size], seeds[:batch_size])
    answers = []
    t0 = time.perf_counter()
    for k in range(0, len(images), batch_size):
        answers += captioner.caption(images[k : k + batch_size], seeds[k : k + batch_size])
    seconds = time.perf_counter() - t0
    tokens = sum(count_tokens(a) for a in answers)
    return {
        "images": len(images),
        "seconds": round(seconds, 3),
        "answers_per_s": round(len(images) / seconds, 3),
        "captions_per_s": round(3 * len(images) / seconds, 3),
        "answer_tokens": tokens,
        "answer_tokens_per_s": round(tokens / seconds, 1),
    }


def load_images(folder: Path) -> list:
    from PIL import Image

    return [Image.open(p).convert("RGB") for p in sorted(folder.glob("*.png"))]


def run_worker(args: argparse.Namespace) -> None:
    """vLLM side, inside the vLLM environment: imports only the vLLM captioner (not the whole package)."""
    from transformers import AutoTokenizer

    from voxemoset.models.captioners.llava_vllm import VllmCaptioner

    t0 = time.perf_counter()
    captioner = VllmCaptioner.start(
        args.model, args.prompt.read_text(), name="bench", max_new_tokens=args.max_new_tokens,
        max_model_len=4096, gpu_memory_utilization=args.vllm_memory, seed=0, dtype=args.dtype,
    )  # fmt: skip
    load_s = time.perf_counter() - t0
    tok = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    result = measure(captioner, load_images(args.images), args.batch_size, lambda a: len(tok(a)["input_ids"]))
    import vllm

    args.worker_out.write_text(json.dumps({**result, "load_s": round(load_s, 2), "vllm": vllm.__version__}))


def main() -> None:
    """Build model and images, time both backends, print and write the result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="LLaVA-OneVision folder; default: a fresh tiny random one")
    ap.add_argument(
        "--vllm-python", type=Path, default=Path(os.environ.get("VOXEMOSET_VLLM_PYTHON", DEFAULT_VLLM_PYTHON))
    )
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--dtype", default="float32", help="both backends (vLLM on CPU would pick bf16 by itself)")
    ap.add_argument("--vllm-memory", type=float, default=0.1, help="vLLM memory fraction (host memory on CPU)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "captions.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--images", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--prompt", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return run_worker(args)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from voxemoset.config import CaptionsConfig
    from voxemoset.models.captioners.llava_transformers import TransformersCaptioner
    from voxemoset.resources import default_prompt

    tmp = Path(tempfile.mkdtemp(prefix="voxemoset-bench-captions-"))
    if args.model is None:
        from voxemoset.models.tiny.llava_onevision import write_llava_onevision

        args.model = write_llava_onevision(tmp / "llava-ov-tiny")
    images_dir = write_images(tmp)
    images = load_images(images_dir)
    prompt = default_prompt()

    t0 = time.perf_counter()
    cfg = CaptionsConfig(backend="transformers", device="cpu", dtype=args.dtype, max_new_tokens=args.max_new_tokens,
                         batch_size=args.batch_size)  # fmt: skip
    hf = TransformersCaptioner.load(args.model, prompt.read_text(), cfg, "bench")
    hf_load_s = time.perf_counter() - t0
    tok = hf.processor.tokenizer
    transformers_result = {**measure(hf, images, args.batch_size, lambda a: len(tok(a)["input_ids"]))}
    transformers_result["load_s"] = round(hf_load_s, 2)
    del hf

    worker_out = tmp / "vllm.json"
    cmd = [str(args.vllm_python), __file__, "--worker", "--model", str(args.model), "--images", str(images_dir)]
    cmd += ["--prompt", str(prompt), "--worker-out", str(worker_out), "--batch-size", str(args.batch_size)]
    cmd += ["--max-new-tokens", str(args.max_new_tokens), "--vllm-memory", str(args.vllm_memory), "--dtype", args.dtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if proc.returncode:
        (tmp / "vllm.log").write_text(proc.stdout)
        sys.exit(f"vLLM worker failed (full log: {tmp / 'vllm.log'}):\n{proc.stdout[-3000:]}")
    vllm_result = json.loads(worker_out.read_text())

    text = json.loads((Path(args.model) / "config.json").read_text())["text_config"]
    result = {
        "what": "captioning throughput, vLLM backend vs transformers backend, same model, images, seeds, budget",
        "model": {"path": Path(args.model).name, "text_config": {k: text[k] for k in TEXT_KEYS if k in text}},
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "dtype": args.dtype,
        "transformers": transformers_result,
        "vllm": vllm_result,
        "vllm_over_transformers_captions_per_s": round(
            vllm_result["captions_per_s"] / transformers_result["captions_per_s"], 2
        ),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": "cpu",
            "loadavg": os.getloadavg(),
        },
        "note": "random weights: answers are invalid captions; vLLM's answers are grammar-constrained JSON; "
        "answer tokens are counted by re-tokenizing the answer text (approximate)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
