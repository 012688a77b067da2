"""The `voxemoset` command line (typer): demo, build, stage, report, publish, deploy, tiny-models, encode, train."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from voxemoset.errors import UserError, describe

app = typer.Typer(
    help="Build VoxEmoset: emotional spoken descriptions paired with emotional images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console(soft_wrap=True)
_options = {"debug": False}


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="show tracebacks (and Prefect's failure logs) on errors")
    ] = False,
) -> None:
    """Build VoxEmoset: emotional spoken descriptions paired with emotional images."""
    _options["debug"] = debug


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config file")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="output directory (overrides the config's `out`)")]


def _overrides(out_dir: Path | None) -> dict | None:
    return {"out": str(out_dir)} if out_dir else None


def _load(config: Path, out_dir: Path | None):
    from voxemoset.config import load_config

    return load_config(config, {"out": str(out_dir)} if out_dir else None)


@app.command()
def demo(out_dir: Annotated[Path, typer.Option("--out", help="output directory")] = Path("runs/demo")) -> None:
    """Run every stage built so far on bundled miniature corpora and tiny models (CPU)."""
    from voxemoset.demo import run_demo

    run_demo(out_dir, console=out)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="images | captions | references | speech | gates | dataset | publish")],
    config: ConfigOpt,
    out_dir: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="recompute every shard, finished or not")] = False,
    direct: Annotated[bool, typer.Option("--direct", help="run in this process without Prefect")] = False,
) -> None:
    """Rebuild one stage from its upstream shards (as a Prefect flow run unless --direct); `publish` uploads the
    built dataset to the config's `publish.repo_id`."""
    from voxemoset.stages import BUILD_CHAIN, PUBLISH, get_stage

    if name == PUBLISH:
        _publish_configured(_load(config, out_dir))
        return
    stage_obj = get_stage(name)
    cfg = _load(config, out_dir)
    if direct:
        from voxemoset.store.runner import run_stage

        summary = run_stage(stage_obj, cfg, cfg.out, force=force, progress=sys.stderr.isatty())
    else:
        if name not in BUILD_CHAIN:
            raise UserError(f"stage {name!r} has no flow yet")
        from flows.session import cli_flow_run
        from flows.stage_flows import STAGE_FLOWS

        stage_obj.plan(cfg)  # a user mistake (missing source, upstream not built) fails here, in one line
        with cli_flow_run(debug=_options["debug"]):
            summary = STAGE_FLOWS[name](str(config), _overrides(out_dir), force)
    out.print(
        f"[bold]{name}[/]: {summary['rows']} rows, {sum(summary['rejects'].values())} rejects, "
        f"{summary['computed']} shards computed, {summary['skipped']} skipped"
    )
    out.print(f"output: {Path(cfg.out) / 'stages' / name}")


@app.command()
def build(
    config: ConfigOpt,
    out_dir: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="recompute every shard of every stage")] = False,
) -> None:
    """Run the whole chain as a Prefect flow run."""
    from flows.session import cli_flow_run
    from flows.stage_flows import build as build_flow
    from voxemoset.stages import BUILD_CHAIN, get_stage

    cfg = _load(config, out_dir)
    get_stage(BUILD_CHAIN[0]).plan(cfg)  # missing sources fail here, in one line, before Prefect starts
    with cli_flow_run(debug=_options["debug"]):
        summaries = build_flow(str(config), _overrides(out_dir), force)
    for name, s in summaries.items():
        out.print(f"[bold]{name}[/]: {s['rows']} rows, {sum(s['rejects'].values())} rejects")
    out.print(f"output: {cfg.out}")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="build output directory")],
    sample: Annotated[int, typer.Option("--sample", min=0, help="rows shown (with media) in index.html")] = 200,
) -> None:
    """Table-1 figures, plots and an HTML browser of samples."""
    from voxemoset.report import write_report

    folder = write_report(directory, sample=sample)
    out.print(f"report: {folder} (report.md, report.json, index.html, PNGs)")


@app.command()
def publish(
    directory: Annotated[Path, typer.Argument(help="build output directory")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="ORG/NAME on the Hugging Face Hub")],
    private: Annotated[bool, typer.Option("--private")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would go where")] = False,
) -> None:
    """Upload the dataset shards and card to the Hugging Face Hub (token: HF_TOKEN or `hf auth login`)."""
    _upload(directory, repo_id, private, dry_run)


def _publish_configured(cfg) -> None:
    """`stage publish`: the built `<out>/dataset` to the config's `publish` section."""
    if not cfg.publish.repo_id:
        raise UserError(
            "stage publish needs publish.repo_id (ORG/NAME on the Hugging Face Hub) in the config, "
            "or run `voxemoset publish DIR --repo-id ORG/NAME`"
        )
    _upload(Path(cfg.out), cfg.publish.repo_id, cfg.publish.private, dry_run=False)


def _upload(directory: Path, repo_id: str, private: bool, dry_run: bool) -> None:
    from voxemoset.publish import check_repo_id, describe, plan_upload
    from voxemoset.publish import publish as publish_dataset

    check_repo_id(repo_id)
    if dry_run:
        for line in describe(plan_upload(directory), repo_id):
            out.print(line, highlight=False, markup=False)
        return
    record = publish_dataset(
        directory, repo_id, private=private, log=lambda m: err.print(m, highlight=False, markup=False, soft_wrap=True)
    )
    out.print(f"published datasets/{repo_id}: {len(record['uploaded'])} uploaded, "
              f"{len(record['unchanged'])} unchanged, {len(record['deleted'])} removed")  # fmt: skip


@app.command()
def deploy(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="default config for the deployments")] = None,
) -> None:
    """Serve the flows so they run from the Prefect UI (needs a server: `prefect server start`)."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        raise UserError(
            "no Prefect server configured: run `prefect server start` and "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api`, then `voxemoset deploy` again"
        )
    if config is not None and not config.is_file():
        raise UserError(f"config file not found: {config}")
    from flows.deploy import serve_all

    serve_all(str(config.resolve()) if config else None)


@app.command("tiny-models")
def tiny_models(directory: Annotated[Path, typer.Argument(help="where to write the checkpoints")]) -> None:
    """Write tiny random checkpoints of every model the chain uses (for tests and the demo)."""
    from voxemoset.models.tiny import write_all

    for name, path in write_all(directory).items():
        out.print(f"{name}: {path}")


@app.command()
def encode(
    config: ConfigOpt,
    split: Annotated[str | None, typer.Option("--split", help="default: the config's training split")] = None,
) -> None:
    """Precompute a split's Whisper frame embeddings for training (SONAR: prints its script's command)."""
    from voxemoset.train.config import TrainConfig, load_yaml
    from voxemoset.train.encode import encode_split

    cfg = load_yaml(config, TrainConfig)
    out.print(str(encode_split(cfg.dataset, split or cfg.split, cfg.encoder, progress=True)), highlight=False)


@app.command()
def train(
    config: ConfigOpt,
    resume: Annotated[
        str | None, typer.Option("--resume", help="`latest` or a checkpoint folder: continue that run")
    ] = None,
) -> None:
    """Fit the SIB and the latent-diffusion UNet from dataset shards."""
    from voxemoset.train import train_from_yaml

    result = train_from_yaml(config, resume=resume, progress=sys.stderr.isatty())
    out.print(f"step {result.step}; last checkpoint: {result.checkpoint}")


@app.command()
def generate(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="trained checkpoint folder")],
    speech: Annotated[Path, typer.Option("--speech", help="a speech file (wav)")],
    out_png: Annotated[Path, typer.Option("--out", help="PNG to write")],
    guidance_scale: Annotated[float, typer.Option("--guidance-scale", help="classifier-free guidance")] = 7.5,
    steps: Annotated[int, typer.Option("--steps", help="denoising steps (DDIM)")] = 50,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="speech encoder location, if not the one the run used")
    ] = None,
) -> None:
    """Generate an image from a speech file with a trained checkpoint."""
    from voxemoset.train.generate import generate as generate_png

    path = generate_png(checkpoint, speech, out_png, guidance_scale, steps, seed, encoder_model=encoder)
    out.print(f"wrote {path}")


@app.command()
def evaluate(config: ConfigOpt) -> None:
    """FID, CLIPScore and Emo-A of a trained checkpoint."""
    from voxemoset.train import evaluate_from_yaml

    for name, value in evaluate_from_yaml(config, progress=sys.stderr.isatty()).items():
        out.print(f"{name}: {value}")


def main() -> None:
    """Console entry point: any failure ends in one `error:` line (the last) and exit code 1; tracebacks only
    with --debug. Commands stop what they started (a temporary Prefect server) before this line is printed."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place every failure becomes a line
        if _options["debug"]:
            traceback.print_exception(e)
        sys.stdout.flush()
        err.print(Text.assemble(("error:", "red"), " ", describe(e)), soft_wrap=True, highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
