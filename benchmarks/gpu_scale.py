"""The `speech_gpus` section of benchmarks/gpu.py: the speech stage's workers on 1, 2, ... N GPUs, utterances/s.

As a build on Ray runs a model stage: one long-lived Ray actor per GPU (Ray gives each its own device through
CUDA_VISIBLE_DEVICES), each holding F5-TTS v1 Base + Vocos at random weights, built once; every worker then
synthesizes the same number of utterances at once, so the aggregate rate over k workers is the stage's rate on k
GPUs. On the CPU (--tiny) a local Ray instance declares 2 GPUs that its workers use as CPU devices.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

SPEECH_GPUS_ROW = ("gpus", "batch_size", "iters", "warmup_s", "utterances", "seconds", "utt_per_s", "speedup", "load_s")
REAL = {"batch_size": 16, "utterances": 64, "nfe_step": 32}
TINY = {"batch_size": 2, "utterances": 2, "nfe_step": 4}


class SpeechGpuWorker:
    """One GPU's synthesizer, built once (a Ray actor)."""

    def __init__(self, tiny: bool):
        import gpu_models as gm

        from voxemoset.models.f5tts import F5Synthesizer
        from voxemoset.models.protocols import SynthRequest

        t0 = time.perf_counter()
        sizes = TINY if tiny else REAL
        device = torch.device("cuda" if torch.cuda.is_available() and not tiny else "cpu")
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        model, vocoder = gm.build_f5(tiny, device, dtype)
        self.synth = F5Synthesizer(model, vocoder, batch_size=sizes["batch_size"], nfe_step=sizes["nfe_step"])
        caption, ref = gm.caption_for(4.25, 3.0), gm.reference(3.0)
        self.reqs = [SynthRequest(caption, ref, gm.REF_TEXT, seed=2000 + i) for i in range(sizes["utterances"])]
        self.synth.synthesize(self.reqs[: sizes["batch_size"]])  # warm-up: kernels chosen, memory allocated
        self.load_s = round(time.perf_counter() - t0, 2)

    def loaded(self) -> dict:
        import ray

        return {"load_s": self.load_s, "gpus": [str(g) for g in ray.get_gpu_ids()]}

    def synthesize(self) -> int:
        self.synth.synthesize(self.reqs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return len(self.reqs)


def measure_speech_gpus(tiny: bool, device: torch.device, deadline: float, guarded) -> dict:
    """Utterances/s of 1..N speech workers, one per GPU (N: the GPUs visible; 2 declared with --tiny)."""
    import ray

    here = Path(__file__).resolve().parent
    gpus = 2 if tiny else torch.cuda.device_count()
    if tiny:  # declared GPUs: Ray refuses them while CUDA_VISIBLE_DEVICES hides every device (as CI sets it)
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(num_gpus=gpus, num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}})  # fmt: skip
    try:
        actor = ray.remote(num_gpus=1)(SpeechGpuWorker)
        workers = [actor.remote(tiny) for _ in range(gpus)]
        loaded = ray.get([w.loaded.remote() for w in workers])
        rows, one, sizes = [], None, TINY if tiny else REAL
        for k in range(1, gpus + 1):

            def run(k=k) -> dict:
                t0 = time.perf_counter()
                done = sum(ray.get([w.synthesize.remote() for w in workers[:k]]))
                seconds = time.perf_counter() - t0
                return {"utterances": done, "seconds": round(seconds, 3), "utt_per_s": round(done / seconds, 3)}

            # Each worker warmed up once when it was built (a batch), so its load_s holds the warm-up.
            load_s = [w["load_s"] for w in loaded[:k]]
            base = {"gpus": k, "batch_size": sizes["batch_size"], "iters": 1, "warmup_s": max(load_s), "load_s": load_s}
            rows.append(guarded(SPEECH_GPUS_ROW, base, run, device, deadline))
            if rows[-1]["status"] == "ok":
                one = one or rows[-1]["utt_per_s"]
                rows[-1]["speedup"] = round(rows[-1]["utt_per_s"] / one, 2)
    finally:
        ray.shutdown()
    config = {**sizes, "workers": gpus, "worker_gpus": [w["gpus"] for w in loaded], "cfg_strength": 2.0,
              "model": "tiny DiT" if tiny else "F5TTS_v1_Base", "declared_gpus": tiny}  # fmt: skip
    print(f"[gpu.py] speech_gpus on {gpus} GPU(s)", file=sys.stderr)
    return {"config": config, "rows": rows}
