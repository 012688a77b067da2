"""The `voxemoset` command line (typer): thin commands over the library; longer bodies live next to what they
drive (hub/command.py, corpora/export/command.py, preflight/command.py, flows/deploy.py)."""

from __future__ import annotations

import json
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


QUIET_COMMANDS = ("build", "stage", "corpus", "demo")


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="show tracebacks (and Prefect's failure logs) on errors")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="let libraries print to the terminal (default: <out>/logs/voxemoset.log)")
    ] = False,
) -> None:
    """Build VoxEmoset: emotional spoken descriptions paired with emotional images."""
    _options["debug"] = debug  # --verbose is read by `main` (before any library loads), not here


ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="YAML config file")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="output directory (overrides the config's `out`)")]


def _say(line: str) -> None:
    out.print(line, highlight=False, markup=False)


def _log(line: str) -> None:
    err.print(line, highlight=False, markup=False, soft_wrap=True)


def _log_file(out_dir: Path) -> None:
    from voxemoset.quiet import announce_log

    announce_log(out_dir)


def _overrides(out_dir: Path | None) -> dict | None:
    return {"out": str(out_dir)} if out_dir else None


def _load(config: Path, out_dir: Path | None):
    from voxemoset.config import load_config

    return load_config(config, _overrides(out_dir))


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="output directory")] = Path("runs/demo"),
    preset: Annotated[
        str | None, typer.Option("--preset", help="paper: every setting the paper states, as configs/paper.yaml")
    ] = None,
) -> None:
    """Run every stage built so far on bundled miniature corpora and tiny models (CPU)."""
    from voxemoset.demo import run_demo
    from voxemoset.preflight.command import preflight_demo

    if preset not in (None, "paper"):
        raise UserError(f"--preset {preset!r}: the one preset is paper")
    preflight_demo(out_dir, err, preset)
    _log_file(out_dir)
    run_demo(out_dir, console=out, preset=preset)


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
    from voxemoset.preflight.command import preflight_or_stop
    from voxemoset.stages import BUILD_CHAIN, PUBLISH, get_stage
    from voxemoset.store.reading import stage_folder
    from voxemoset.store.runner import plan_stage

    if name == PUBLISH:
        from voxemoset.hub.command import publish_configured

        publish_configured(_load(config, out_dir), _say, _log)
        return
    stage_obj = get_stage(name)
    cfg = _load(config, out_dir)
    preflight_or_stop(cfg, (name,), err, str(config))  # that stage's sources, weights, tools, GPU; all at once
    _log_file(cfg.out)
    if direct:
        from voxemoset.store.runner import run_stage

        summary = run_stage(stage_obj, cfg, cfg.out, force=force)
    else:
        if name not in BUILD_CHAIN:
            raise UserError(f"stage {name!r} has no flow yet")
        from flows.session import cli_flow_run
        from flows.stage_flows import STAGE_FLOWS

        plan_stage(stage_obj, cfg)  # a user mistake (missing source, upstream not built) fails here, in one line
        with cli_flow_run(debug=_options["debug"]):
            summary = STAGE_FLOWS[name](str(config), _overrides(out_dir), force)
    out.print(
        f"[bold]{name}[/]: {summary['rows']} rows, {sum(summary['rejects'].values())} rejects, "
        f"{summary['computed']} shards computed, {summary['skipped']} skipped"
    )
    out.print(f"output: {stage_folder(cfg.out, name)}")


@app.command()
def build(
    config: ConfigOpt,
    out_dir: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="recompute every shard of every stage")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be rebuilt and why; compute nothing")
    ] = False,
) -> None:
    """Run the whole chain as a Prefect flow run (after a preflight of everything it needs)."""
    from voxemoset.preflight.command import preflight_or_stop
    from voxemoset.stages import BUILD_CHAIN, get_stage
    from voxemoset.store.runner import plan_stage

    cfg = _load(config, out_dir)
    if dry_run:
        from voxemoset.status_command import show

        return show(cfg)
    preflight_or_stop(cfg, BUILD_CHAIN, err, str(config))  # every problem at once, before Prefect is imported
    _log_file(cfg.out)
    from flows.session import cli_flow_run
    from flows.stage_flows import build as build_flow

    plan_stage(get_stage(BUILD_CHAIN[0]), cfg)  # an unreadable EmoSet index fails here, before Prefect starts
    with cli_flow_run(debug=_options["debug"]):
        build_flow(str(config), _overrides(out_dir), force)
    from voxemoset.summary import SUMMARY, print_summary

    print_summary(json.loads((cfg.out / SUMMARY).read_text()), out)
    out.print(f"output: {cfg.out} (summary: {cfg.out / SUMMARY})")


@app.command()
def check(config: ConfigOpt, out_dir: OutOpt = None) -> None:
    """Preflight: source folders, model weights, tools, disk space and GPU; every problem at once (exit 1 if any)."""
    from voxemoset.preflight.command import check as run_check

    raise typer.Exit(run_check(_load(config, out_dir), out))


@app.command()
def weights(
    directory: Annotated[Path, typer.Argument(help="folder to download the models into")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: the defaults)")] = None,
    run: Annotated[bool, typer.Option("--run", help="run the downloads instead of printing them")] = False,
) -> None:
    """Print (or --run) the download command of every model the config uses, into DIR; write DIR/config.yaml."""
    from voxemoset.preflight.weights import weights as fetch_weights

    fetch_weights(directory, config, run, log=_say)


# `corpus NAME -c CONFIG` (spokencoco | flickr8k): the module imports only typer until the command runs.
from voxemoset.corpora.export.command import corpus  # noqa: E402

app.command("corpus")(corpus)
from voxemoset.status_command import status  # noqa: E402

app.command("status")(status)
# `encode`, `train`, `generate`, `evaluate`: the training side (voxemoset/train/commands.py).
from voxemoset.train.commands import encode, evaluate, generate, train  # noqa: E402

for _command_fn in (encode, train, generate, evaluate):
    app.command()(_command_fn)


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="build output directory")],
    sample: Annotated[int, typer.Option("--sample", min=0, help="rows shown (with media) in index.html")] = 200,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (its `report` section)")] = None,
    clip_model: Annotated[
        str | None, typer.Option("--clip-model", help="CLIP for CLIPScore: local folder or HF id in the cache")
    ] = None,
) -> None:
    """Table 1 (the paper's way), plots and an HTML browser of samples; fails at the end if CLIPScore is missing."""
    from voxemoset.config import ReportConfig
    from voxemoset.report import cremad_inputs, require_complete, write_report

    cfg = _load(config, None) if config else None
    settings = cfg.report if cfg else ReportConfig()
    if clip_model:
        settings = settings.model_copy(update={"clip_model": clip_model})
    folder = write_report(directory, sample=sample, settings=settings, cremad=cremad_inputs(cfg) if cfg else None)
    out.print(f"report: {folder} (report.md, report.json, index.html, PNGs)")
    require_complete(folder)


@app.command()
def publish(
    directory: Annotated[Path, typer.Argument(help="build output directory")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="ORG/NAME on the Hugging Face Hub")],
    private: Annotated[bool, typer.Option("--private")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would go where")] = False,
) -> None:
    """Upload the dataset shards and card to the Hugging Face Hub (token: HF_TOKEN or `hf auth login`)."""
    from voxemoset.hub.command import upload

    upload(directory, repo_id, private, dry_run, _say, _log)


@app.command()
def deploy(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="default config for the deployments")] = None,
) -> None:
    """Serve the flows so they run from the Prefect UI (needs a server: `prefect server start`)."""
    from flows.deploy import require_server, serve_all

    serve_all(require_server(config))


@app.command("tiny-models")
def tiny_models(directory: Annotated[Path, typer.Argument(help="where to write the checkpoints")]) -> None:
    """Write tiny random checkpoints of every model the chain uses (for tests and the demo)."""
    from voxemoset.models.tiny import write_all

    for name, path in write_all(directory).items():
        out.print(f"{name}: {path}")


def _command(argv: list[str]) -> str | None:
    """The subcommand a command line names (the first word that is not a global option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main() -> None:
    """Console entry point: any failure ends in one `error:` line (the last) and exit code 1; tracebacks only
    with --debug. Commands stop what they started (a temporary Prefect server) before this line is printed.

    Here, not in the app's callback, the process is set up as a user's run: the stage-running commands keep the
    terminal to voxemoset's own lines and progress (library output to the log file, unless --verbose). In-process
    callers of `app` (tests, other programs) keep their own logging, environment and output.
    """
    from voxemoset import quiet
    from voxemoset.progress import enable

    argv = sys.argv[1:]
    quiet.setup("--verbose" not in argv and _command(argv) in QUIET_COMMANDS)
    enable(out)  # shards as they finish: live on a terminal, one line each otherwise
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
