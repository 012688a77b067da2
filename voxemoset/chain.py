"""The build chain as a graph: each stage runs once the stages it declares as `inputs` are done, and stages that do
not depend on each other run side by side (references beside images and captions)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from voxemoset.stages import BUILD_CHAIN, get_stage

T = TypeVar("T")


def stage_inputs(names: Iterable[str] = BUILD_CHAIN) -> dict[str, tuple[str, ...]]:
    """Each stage's inputs among `names` (an input outside them is taken as already built)."""
    names = tuple(names)
    return {n: tuple(i for i in get_stage(n).inputs if i in names) for n in names}


def waves(names: Iterable[str] = BUILD_CHAIN) -> list[list[str]]:
    """The stages in waves: each wave's stages need only earlier waves (what `build --dry-run` would show)."""
    inputs, done, order = stage_inputs(names), set(), []
    while len(done) < len(inputs):
        wave = [n for n in inputs if n not in done and set(inputs[n]) <= done]
        if not wave:
            raise ValueError(f"the stages' inputs form a cycle: {sorted(set(inputs) - done)}")
        order.append(wave)
        done |= set(wave)
    return order


def run_graph(run: Callable[[str], T], names: Iterable[str] = BUILD_CHAIN, side_by_side: bool = True) -> dict[str, T]:
    """`run(name)` for every stage, each once its inputs are done; with `side_by_side`, independent stages at once in
    threads (each with a copy of the caller's context, so a Prefect flow run started in one is a subflow of the
    caller's). After a failure nothing new starts; what is running finishes, then the first error is raised."""
    inputs = stage_inputs(names)
    if not side_by_side:
        return {n: run(n) for wave in waves(inputs) for n in wave}
    done: dict[str, T] = {}
    running: dict[Future, str] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(inputs), thread_name_prefix="stage") as pool:
        while True:
            if failure is None:
                ready = [
                    n for n in inputs if n not in done and n not in running.values() and set(inputs[n]) <= set(done)
                ]
                for n in ready:
                    running[pool.submit(contextvars.copy_context().run, run, n)] = n
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                try:
                    done[name] = fut.result()
                except BaseException as e:  # noqa: BLE001 - re-raised below, once the others have finished
                    failure = failure or e
    if failure is not None:
        raise failure
    return {n: done[n] for n in inputs}
