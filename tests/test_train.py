"""Training: SIB shapes and masks, overfitting, exact resume, LoRA reload into diffusers, generate, evaluate errors.

Everything is tiny and random (diffusers' test-sized UNet/VAE, a 2-layer Whisper), on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import write_config
from voxemoset.errors import MissingWeightsError, UserError
from voxemoset.train.config import TrainConfig
from voxemoset.train.sib import SIB, SIBSpec

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Tiny models on the CPU: see conftest's `one_torch_thread`."""


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tiny_models) -> dict[str, Path]:
    """Published-layout shards, a tiny SD-1.5-layout folder and a tiny Whisper, shared by the module."""
    from voxemoset.train.tiny import write_tiny_dataset, write_tiny_sd

    root = tmp_path_factory.mktemp("train")
    return {
        "root": root,
        "dataset": write_tiny_dataset(root / "out" / "dataset", n_train=4, n_test=3),
        "sd": write_tiny_sd(root / "sd", cross_attention_dim=32),
        "whisper": tiny_models["whisper"],
    }


def _cfg(assets: dict, out: Path, **kw) -> TrainConfig:
    base = {
        "dataset": assets["dataset"],
        "output_dir": out,
        "cache_dir": assets["root"] / "cache",  # shared: the latents and Arrow copy are built once
        "pretrained": str(assets["sd"]),
        "encoder": {"model": str(assets["whisper"])},
        "sib": {"heads": 2, "width": 16},
        "lr": 1e-3,
        "batch_size": 2,
        "max_steps": 6,
        "resolution": 32,
        "num_workers": 0,
        "checkpoint_every": 3,
        "keep_last": 1,
        "cond_dropout": 0.3,
        "log_every": 1,
    }
    return TrainConfig.model_validate(base | kw)


# --- SIB ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strides", [(2, 2, 2), (8,), (4, 2), (2, 4)])
@pytest.mark.parametrize("n", [1, 5, 8, 9, 16, 17, 63, 150])
def test_sib_maps_n_frames_to_ceil_n_over_8_tokens(strides, n):
    torch.manual_seed(0)
    sib = SIB(SIBSpec(in_dim=24, out_dim=32, strides=strides, heads=2, width=16)).eval()
    longest = n + 5
    frames = torch.randn(3, longest, 24)
    mask = torch.zeros(3, longest, dtype=torch.bool)
    mask[0, :n] = True
    mask[1, :] = True
    mask[2, :1] = True
    tokens, token_mask = sib(frames, mask)
    assert tokens.shape == (3, -(-longest // 8), 32)
    assert token_mask.sum(1).tolist() == [-(-n // 8), -(-longest // 8), 1]
    # valid tokens come first, padded ones are zero
    assert token_mask[0, : -(-n // 8)].all() and not token_mask[0, -(-n // 8) :].any()
    assert (tokens[~token_mask] == 0).all()
    assert sib.spec.tokens(n) == -(-n // 8)


def test_sib_output_ignores_padding():
    torch.manual_seed(0)
    sib = SIB(SIBSpec(in_dim=24, out_dim=32, strides=(2, 2, 2), heads=2)).eval()
    frames = torch.randn(1, 13, 24)
    alone, _ = sib(frames)
    padded = torch.cat([frames, 100 * torch.randn(1, 11, 24)], dim=1)
    mask = torch.arange(24)[None] < 13
    batched, _ = sib(padded, mask)
    assert torch.allclose(alone[0], batched[0, : alone.shape[1]], atol=1e-5)


def test_sib_rejects_bad_layouts():
    with pytest.raises(UserError, match="divisible"):
        SIB(SIBSpec(in_dim=24, out_dim=32, heads=5))


# --- config ------------------------------------------------------------------------------------------------


def test_train_config_rejects_unknown_keys_and_sonar_on_the_fly(tmp_path):
    from voxemoset.train.config import load_yaml

    bad = write_config(tmp_path / "t.yaml", {"dataset": "d", "learning_rate": 1})
    with pytest.raises(UserError, match="learning_rate"):
        load_yaml(bad, TrainConfig)
    sonar = write_config(tmp_path / "s.yaml", {"dataset": "d", "encoder": {"kind": "sonar", "precomputed": False}})
    with pytest.raises(UserError, match="(?i)sonar encoder runs in its own environment"):
        load_yaml(sonar, TrainConfig)
    ok = load_yaml(REPO / "configs" / "train_example.yaml", TrainConfig)
    assert ok.lr == 1e-6 and ok.sib.strides == (2, 2, 2)


# --- training ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(assets):
    """4 rows, batch 4: every step sees the same batch; full fine-tuning of the tiny UNet + SIB, 40 steps."""
    from voxemoset.train.loop import train

    cfg = _cfg(assets, assets["root"] / "full", mode="full", batch_size=4, lr=3e-3, max_steps=40, cond_dropout=0.0)
    return train(cfg.model_copy(update={"checkpoint_every": 1000}))


def test_fixed_batch_loss_falls_when_overfitting(full_run):
    losses = full_run.losses
    assert len(losses) == 40
    first, last = np.mean(losses[:8]), np.mean(losses[-8:])
    assert last < 0.8 * first, (first, last)
    assert full_run.checkpoint.name == "checkpoint-40" and (full_run.checkpoint / "unet").is_dir()


def _logged_losses(out: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_resumed_run_continues_the_same_loss_curve(assets, tmp_path):
    from voxemoset.train.loop import checkpoints, train

    straight = train(_cfg(assets, tmp_path / "straight", mode="lora", lr=1e-2)).losses
    # The same run stopped at step 3 and resumed from its checkpoint through the CLI.
    from typer.testing import CliRunner

    from voxemoset.cli import app

    out = tmp_path / "resumed"
    data = json.loads(_cfg(assets, out, mode="lora", lr=1e-2).model_dump_json())
    first = CliRunner().invoke(app, ["train", "-c", str(write_config(tmp_path / "a.yaml", data | {"max_steps": 3}))])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(
        app, ["train", "-c", str(write_config(tmp_path / "b.yaml", data)), "--resume", "latest"]
    )
    assert second.exit_code == 0, second.output
    resumed = _logged_losses(out)
    assert len(straight) == len(resumed) == 6
    assert np.allclose(straight, resumed, rtol=1e-5, atol=1e-6), (straight, resumed)
    assert [p.name for p in checkpoints(out)] == ["checkpoint-6"]  # keep_last 1
    ckpt = out / "checkpoint-6"
    assert {"sib", "pytorch_lora_weights.safetensors", "train_config.json", "training_state.pt", "rng-0.pt"} <= {
        p.name for p in ckpt.iterdir()
    }


@pytest.fixture(scope="module")
def lora_checkpoint(assets) -> Path:
    """A LoRA run with lora_alpha != rank, so the reload must honour the saved alpha."""
    from voxemoset.train.loop import train

    cfg = _cfg(assets, assets["root"] / "lora", mode="lora", lr=2e-2, lora_rank=4, lora_alpha=8, max_steps=3)
    return train(cfg).checkpoint


def test_lora_weights_reload_into_a_diffusers_pipeline(assets, lora_checkpoint):
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    from voxemoset.train.loop import _load_lora
    from voxemoset.train.model import add_lora

    sd = assets["sd"]
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL.from_pretrained(sd, subfolder="vae"),
        text_encoder=None,
        tokenizer=None,
        unet=UNet2DConditionModel.from_pretrained(sd, subfolder="unet"),
        scheduler=DDIMScheduler.from_pretrained(sd, subfolder="scheduler"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    torch.manual_seed(0)
    x, t, emb = torch.randn(1, 4, 16, 16), torch.tensor([500]), torch.randn(1, 3, 32)
    with torch.no_grad():
        base = pipe.unet(x, t, encoder_hidden_states=emb).sample
        pipe.load_lora_weights(lora_checkpoint, weight_name="pytorch_lora_weights.safetensors")
        loaded = pipe.unet(x, t, encoder_hidden_states=emb).sample
        # The trained adapter as the trainer holds it (peft, alpha 8 / rank 4).
        trained = UNet2DConditionModel.from_pretrained(sd, subfolder="unet")
        add_lora(trained, rank=4, alpha=8)
        _load_lora(trained, lora_checkpoint)
        reference = trained(x, t, encoder_hidden_states=emb).sample
    assert not torch.allclose(base, loaded, atol=1e-6)
    assert torch.allclose(loaded, reference, atol=1e-5)
    image = pipe(
        prompt_embeds=emb, negative_prompt_embeds=torch.zeros_like(emb), num_inference_steps=2, height=32, width=32
    ).images[0]
    assert image.size == (32, 32)


def test_on_the_fly_whisper_with_pixels_and_grad_accum(assets, tmp_path):
    from voxemoset.audio import OUT_RATE, decode_at_rate
    from voxemoset.train.encode import embeddings_dir
    from voxemoset.train.encoders import TensorStore, WhisperFrames
    from voxemoset.train.loop import train

    cfg = _cfg(
        assets, tmp_path / "fly", encoder={"model": str(assets["whisper"]), "precomputed": False}, cache_latents=False
    )
    result = train(cfg.model_copy(update={"max_steps": 2, "grad_accum": 2}))
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    # The precomputed store holds the in-process encoder's frames (fp16).
    import pyarrow.parquet as pq

    row = pq.read_table(next((assets["dataset"] / "data").glob("train-*.parquet"))).slice(0, 1).to_pylist()[0]
    frames, mask = WhisperFrames(str(assets["whisper"]))([decode_at_rate(row["audio"]["bytes"], OUT_RATE)])
    stored = TensorStore(embeddings_dir(assets["dataset"], cfg.encoder)).get(row["id"])
    assert stored.shape == (int(mask.sum()), 32)
    assert torch.allclose(stored, frames[0, : stored.shape[0]], atol=2e-2)


def test_accumulation_windows_across_epochs_resume_exactly(assets, tmp_path):
    """grad_accum 3 over epochs of 2 micro-batches (4 rows, batch 2): accelerate's count of micro-batches starts
    each window where ours does, also after a resume mid-epoch."""
    from voxemoset.train.loop import train

    def run(out: Path, **kw):
        cfg = _cfg(assets, out, mode="lora", lr=1e-2, grad_accum=3, max_steps=4, trace_rows=True, checkpoint_every=2)
        return train(cfg.model_copy(update=kw), resume="latest")

    straight = run(tmp_path / "straight").losses
    run(tmp_path / "resumed", max_steps=2)
    run(tmp_path / "resumed")
    assert np.allclose(straight, _logged_losses(tmp_path / "resumed"), rtol=1e-5, atol=1e-6)
    traces = {}
    for name in ("straight", "resumed"):
        lines = (tmp_path / name / "rows-0.jsonl").read_text().splitlines()
        traces[name] = [(e["step"], e["micro"], e["ids"]) for e in map(json.loads, lines)]
    assert traces["resumed"] == traces["straight"]
    assert [s for s, _, _ in traces["straight"]] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert [m for _, m, _ in traces["straight"]] == list(range(12))


def test_speech_front_ends(assets, tmp_path):
    """Precomputed frames pass through (one width for a mixture); Whisper in the loop turns audio into fp32 frames
    and a mask; text conditioning has no frames."""
    from voxemoset.train.encoders import TensorStore, WhisperFrames, write_meta, write_shard
    from voxemoset.train.frontend import NoSpeech, PrecomputedFrames, WhisperInLoop
    from voxemoset.train.tiny import tone

    stores = []
    for dim in (8, 12):
        write_shard(tmp_path / str(dim) / "s.safetensors", {"a": torch.zeros(3, dim, dtype=torch.float16)}, {})
        write_meta(tmp_path / str(dim), {"dim": dim})
        stores.append(TensorStore(tmp_path / str(dim)))
    precomputed = PrecomputedFrames(stores[:1])
    assert precomputed.width == 8 and precomputed.store(0) is stores[0]
    batch = {"frames": torch.zeros(1, 3, 8), "frame_mask": torch.ones(1, 3, dtype=torch.bool)}
    assert precomputed.frames(batch) is batch
    with pytest.raises(UserError, match="differ in width"):
        PrecomputedFrames(stores)
    whisper = WhisperInLoop(WhisperFrames(str(assets["whisper"])))
    batch = whisper.frames({"id": ["a", "b"], "audio": [tone(0, 0.5), tone(1, 0.3)]})
    assert whisper.store(0) is None and "audio" not in batch and batch["id"] == ["a", "b"]
    assert batch["frames"].dtype == torch.float32 and batch["frames"].shape[-1] == whisper.width
    assert batch["frame_mask"].sum(1).tolist() == [25, 15]  # 50 frames a second
    text = NoSpeech()
    assert text.width is None and text.store(0) is None and text.frames({"caption": ["x"]}) == {"caption": ["x"]}


# --- generate ----------------------------------------------------------------------------------------------


def test_generate_writes_a_png_via_the_cli(assets, lora_checkpoint, full_run, tmp_path):
    import soundfile as sf
    from PIL import Image
    from typer.testing import CliRunner

    from voxemoset.cli import app
    from voxemoset.train.generate import generate
    from voxemoset.train.tiny import tone

    wav = tmp_path / "speech.wav"
    sf.write(wav, tone(1, 0.8), 16000)
    png = tmp_path / "out" / "image.png"
    args = ["generate", "--checkpoint", str(lora_checkpoint), "--speech", str(wav), "--out", str(png)]
    result = CliRunner().invoke(app, [*args, "--steps", "3", "--seed", "1", "--guidance-scale", "3"])
    assert result.exit_code == 0, result.output
    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (32, 32)
    # A fully fine-tuned UNet checkpoint, through the API; same seed -> same image.
    first = generate(full_run.checkpoint, wav, tmp_path / "a.png", steps=2, seed=3)
    again = generate(full_run.checkpoint, wav, tmp_path / "b.png", steps=2, seed=3)
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))


def test_generate_missing_checkpoint_is_one_clear_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["generate", "--checkpoint", str(tmp_path / "nope"), "--speech", str(tmp_path / "a.wav"), "--out", "x.png"]
    proc = subprocess.run([sys.executable, "-m", "voxemoset.cli", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("error:") and "Traceback" not in proc.stderr


# --- weights errors ----------------------------------------------------------------------------------------


def test_missing_sd_weights_name_the_download(assets, tmp_path):
    from voxemoset.train.loop import train

    with pytest.raises(MissingWeightsError, match="hf download stable-diffusion-v1-5/stable-diffusion-v1-5"):
        train(_cfg(assets, tmp_path / "x", pretrained=str(tmp_path / "no-sd")))


# --- SONAR -------------------------------------------------------------------------------------------------


def test_sonar_needs_precomputed_embeddings(assets, tmp_path):
    from voxemoset.train.config import EncoderConfig
    from voxemoset.train.encode import encode_split

    enc = EncoderConfig(kind="sonar", model=str(tmp_path / "sonar.pt"), embeddings=tmp_path / "emb")
    with pytest.raises(UserError, match="scripts/encode_sonar.py --dataset"):
        encode_split(assets["dataset"], "train", enc)


def test_sonar_script_reports_missing_weights_then_missing_env(assets, tmp_path):
    script = REPO / "scripts" / "encode_sonar.py"
    base = [sys.executable, str(script), "--dataset", str(assets["dataset"]), "--out", str(tmp_path / "emb")]
    proc = subprocess.run([*base, "--model", str(tmp_path / "missing.pt")], capture_output=True, text=True)
    assert proc.returncode == 1 and "no weights at" in proc.stderr and "Download them with" in proc.stderr
    weights = tmp_path / "sonar.pt"
    weights.write_bytes(b"not really")
    proc = subprocess.run([*base, "--model", str(weights)], capture_output=True, text=True)
    assert proc.returncode == 1 and "setup_sonar_env.sh" in proc.stderr
