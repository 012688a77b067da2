"""The preflight on the command line: `voxemoset check`, and the check `build`, `stage` and `demo` run first."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

from voxemoset.config import Config
from voxemoset.errors import UserError
from voxemoset.preflight import Report, run_preflight
from voxemoset.preflight.items import Item
from voxemoset.stages import BUILD_CHAIN

_MARKS = {"ready": ("ok", "green"), "problem": ("missing", "red"), "warning": ("warning", "yellow")}


def print_items(items: list[Item], console: Console, how: str) -> None:
    """One line per item, marked ok / missing / warning; paths and commands printed as they are (no markup)."""
    word, colour = _MARKS[how]
    for item in items:
        console.print(
            Text.assemble((f"  {word:<8}", colour), f"{item.kind:<7}", item.line()), soft_wrap=True, highlight=False
        )


def print_report(report: Report, console: Console, show_ready: bool = True) -> None:
    """What is ready (if asked), then every problem in one list, then what does not block the build."""
    if show_ready and report.ready:
        console.print(f"ready ({len(report.ready)}):", highlight=False)
        print_items(report.ready, console, "ready")
    if report.problems:
        console.print(f"problems ({len(report.problems)}):", highlight=False)
        print_items(report.problems, console, "problem")
    if report.warnings:
        console.print(f"warnings ({len(report.warnings)}; they do not stop the build):", highlight=False)
        print_items(report.warnings, console, "warning")


def check(cfg: Config, console: Console, stages: tuple[str, ...] = BUILD_CHAIN) -> int:
    """`voxemoset check`: print everything checked; the exit code is 1 when something would stop the build."""
    report = run_preflight(cfg, stages)
    print_report(report, console)
    if report.problems:
        console.print(f"{len(report.problems)} to fix before `voxemoset build` can run", style="red")
        return 1
    console.print("ready to build", style="green")
    return 0


def preflight_or_stop(cfg: Config, stages: tuple[str, ...], console: Console, config_path: str = "CONFIG") -> None:
    """Before `build`, `stage` or `demo` runs anything: every problem listed at once, then one error line (a lone
    problem is that line itself)."""
    report = run_preflight(cfg, stages, report=False)  # the report's CLIP never stops a build: `check` shows it
    if len(report.problems) == 1:
        raise UserError(report.problems[0].line())
    if report.problems:
        print_report(report, console, show_ready=False)
        raise UserError(
            f"{len(report.problems)} problems found before any stage ran (listed above); "
            f"`voxemoset check -c {config_path}` also shows what is ready"
        )


def preflight_demo(out: Path, console: Console, preset: str | None = None) -> None:
    """`voxemoset demo`: its inputs written (once), then its config through the same preflight as a build."""
    from voxemoset.config import load_config
    from voxemoset.demo import write_demo_inputs

    demo_yaml = write_demo_inputs(Path(out).resolve(), preset)
    preflight_or_stop(load_config(demo_yaml), BUILD_CHAIN, console, str(demo_yaml))
