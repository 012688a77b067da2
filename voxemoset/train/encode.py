"""The precompute step: frozen encoders' outputs written once as shards (Whisper frames per utterance, VAE moments
per image), so training reads them instead of re-running the encoders every epoch.

    voxemoset encode -c TRAIN_CONFIG [--split test]

SONAR runs in its own environment: `scripts/encode_sonar.py` writes the same shard format.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from voxemoset.audio import OUT_RATE, decode_at_rate
from voxemoset.errors import UserError
from voxemoset.train.config import EncoderConfig
from voxemoset.train.data import dataset_files, image_batches, unique_images
from voxemoset.train.encoders import WhisperFrames, read_meta, write_meta, write_shard

FRAME_DTYPE = torch.float16  # halves the store; frames are layer-normed, well inside fp16's range
LATENT_SHARD_IMAGES = 1000  # images per latent shard: bounded memory while writing


def embeddings_dir(dataset: Path, encoder: EncoderConfig) -> Path:
    """Where the frame embeddings live: `encoder.embeddings`, or `<dataset>/../embeddings/<kind>` for the pipeline's
    `dataset` folder and `<dataset>/../embeddings/<name>/<kind>` for any other (corpora side by side share a parent)."""
    if encoder.embeddings:
        return Path(encoder.embeddings)
    dataset = Path(dataset)
    own = () if dataset.name == "dataset" else (dataset.name,)
    return dataset.parent.joinpath("embeddings", *own, encoder.kind)


SONAR_SETUP = "bash scripts/setup_sonar_env.sh"


def sonar_command(dataset: Path, split: str, encoder: EncoderConfig, out: Path) -> str:
    """The command that writes SONAR embeddings for a split (run in the SONAR environment, after SONAR_SETUP)."""
    return (
        f".venv-sonar/bin/python scripts/encode_sonar.py "
        f"--dataset {dataset} --split {split} --model {encoder.model} --out {out}"
    )


class MissingEmbeddingsError(UserError):
    """SONAR frame embeddings of a split are not written yet; `command` writes them (after SONAR_SETUP)."""

    def __init__(self, split: str, out: Path, shards: int, command: str):
        super().__init__(
            f"SONAR embeddings of the {split} split are missing in {out} ({shards} shards); "
            f"write them with: {SONAR_SETUP} && {command}"
        )
        self.command = command


def _check_producer(out: Path, kind: str, label: str | None) -> None:
    meta = read_meta(out)
    if meta and (meta.get("encoder") != kind or (label and meta.get("model") != label)):
        raise UserError(
            f"{out} holds {meta.get('encoder')} embeddings from {meta.get('model')}, not {kind} {label or ''}: "
            "delete the folder or set encoder.embeddings to another one"
        )


def _covering(shards: list[Path], rows: int | None) -> list[Path]:
    """The first shards holding at least `rows` rows (all of them for None): a trial run encodes only those."""
    if rows is None:
        return shards
    import pyarrow.parquet as pq

    kept, total = [], 0
    for shard in shards:
        if total >= rows:
            break
        kept.append(shard)
        total += pq.ParquetFile(shard).metadata.num_rows
    return kept


def encode_split(
    dataset: Path,
    split: str,
    encoder: EncoderConfig,
    device: str | None = None,
    progress: bool = False,
    limit: int | None = None,
) -> Path:
    """Write missing frame-embedding shards of a split (one per dataset shard, enough for `limit` rows)."""
    if dataset is None:  # a mixture config's `dataset` (cli `encode` before it learnt mixtures)
        raise UserError("this config trains on a mixture (`datasets`): training encodes each dataset on first use")
    out = embeddings_dir(dataset, encoder)
    shards = _covering(dataset_files(dataset, split), limit)
    pending = [s for s in shards if not (out / f"{s.stem}.safetensors").is_file()]
    if encoder.kind == "sonar":
        _check_producer(out, "sonar", None)
        if pending:
            raise MissingEmbeddingsError(split, out, len(pending), sonar_command(dataset, split, encoder, out))
        return out
    if not pending:
        _check_producer(out, "whisper", None)
        return out
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # By type: several CPU processes name their device "cpu:0", and half precision on a CPU is slow and inexact.
    dtype = getattr(torch, encoder.dtype) if torch.device(device).type != "cpu" else torch.float32
    whisper = WhisperFrames(encoder.model, device, dtype)
    _check_producer(out, "whisper", whisper.label)
    meta = {"encoder": "whisper", "model": whisper.label, "dim": whisper.dim, "frame_rate_hz": 50}
    write_meta(out, meta)
    import pyarrow.parquet as pq

    for n, shard in enumerate(pending, 1):
        table = pq.read_table(shard, columns=["id", "audio"])
        ids, audio = table.column("id").to_pylist(), table.column("audio")
        tensors: dict[str, torch.Tensor] = {}
        for start in range(0, len(ids), encoder.batch_size):
            stop = min(start + encoder.batch_size, len(ids))
            clips = [decode_at_rate(audio[i]["bytes"].as_py(), OUT_RATE) for i in range(start, stop)]
            frames, mask = whisper(clips)
            for j, length in enumerate(mask.sum(1).tolist()):
                tensors[ids[start + j]] = frames[j, :length].to(FRAME_DTYPE).cpu()
        write_shard(out / f"{shard.stem}.safetensors", tensors, {k: str(v) for k, v in meta.items()})
        if progress:
            print(f"encoded {shard.name} ({len(ids)} clips) [{n}/{len(pending)}]", file=sys.stderr)
    return out


@torch.no_grad()
def cache_latents(rows, vae, folder: Path, resolution: int, batch_size: int, label: str) -> Path:
    """Write each image's VAE posterior moments (mean, logvar) once; training samples from them every step."""
    folder = Path(folder)
    image_ids, first_rows = unique_images(rows)
    meta = {"vae": label, "resolution": resolution, "images": len(image_ids)}
    if read_meta(folder) != meta:  # a cache of other images or another VAE: it is ours to rebuild
        for stale in folder.glob("latents-*.safetensors"):
            stale.unlink()
    write_meta(folder, meta)
    device, dtype = vae.device, vae.dtype
    for shard_no, start in enumerate(range(0, len(image_ids), LATENT_SHARD_IMAGES)):
        path = folder / f"latents-{shard_no:05d}.safetensors"
        if path.is_file():
            continue
        keys = image_ids[start : start + LATENT_SHARD_IMAGES]
        moments = []
        for pixels in image_batches(rows, first_rows[start : start + len(keys)], resolution, batch_size):
            moments.append(vae.encode(pixels.to(device, dtype)).latent_dist.parameters.float().cpu())
        stacked = torch.cat(moments)
        write_shard(path, {k: stacked[i] for i, k in enumerate(keys)}, {k: str(v) for k, v in meta.items()})
    return folder
