"""The layout rule, read from the code's import statements (with `ast`, nothing imported).

A stage is a package `voxemoset/stages/<name>/` that imports no other stage; the shared layer never imports a stage;
`config.py` is a leaf; only `flows/` imports Prefect and only `cli.py` imports `flows`; no import cycles; small
modules and functions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 80
# Allowed to be long: tiny-model configs written out in full, and the one readable training loop.
LONG_MODULES_ALLOWED = ("voxemoset/models/tiny/", "voxemoset/train/loop.py")
LONG_FUNCTIONS_ALLOWED = {("voxemoset/train/loop.py", "train")}
# What more than one part uses: it never imports a stage (nor the stage registry).
SHARED_LAYER = ("voxemoset.models", "voxemoset.corpora", "voxemoset.store", "voxemoset.hub", "voxemoset.audio", "voxemoset.images",
                "voxemoset.seeds", "voxemoset.rows", "voxemoset.config", "voxemoset.config_captions", "voxemoset.settings", "voxemoset.errors",
                "voxemoset.emotions", "voxemoset.resources", "voxemoset.departures", "voxemoset.markdown")  # fmt: skip


@dataclass(frozen=True)
class Import:
    """One imported module name, where it was imported, and whether at module level (runs on import)."""

    module: str
    line: int
    top_level: bool


def module_name(root: Path, path: Path) -> str:
    """`voxemoset/stages/images/__init__.py` -> `voxemoset.stages.images`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `root`, by dotted name."""
    return {module_name(root, p): p for p in sorted((root / package).rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module a `from` import names (relative imports resolved against `name`)."""
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(root: Path, path: Path, known: set[str] | None = None) -> list[Import]:
    """Every module `path` imports, including inside functions; `from a import b` counts `a.b` when that is a module
    in `known`, else `a`. Imports under `if TYPE_CHECKING:` never run, so they count as not top level."""
    name = module_name(root, path)
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _resolve(name, child, path.name == "__init__.py")
                for a in child.names:
                    sub = f"{base}.{a.name}"
                    found.append(Import(sub if known and sub in known else base, child.lineno, top))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            elif isinstance(child, ast.If) and _type_checking(child):
                visit(child, False)
            else:
                visit(child, top)

    visit(tree, True)
    return found


def stage_of(module: str) -> str | None:
    """`voxemoset.stages.images.stage` -> `images`; the registry `voxemoset.stages` itself is no stage."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["voxemoset", "stages"] else None


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def cross_stage_imports(root: Path) -> list[str]:
    """(a) Each place a stage imports another stage."""
    mods = modules(root, "voxemoset")
    bad = []
    for name, path in mods.items():
        own = stage_of(name)
        if own is None:
            continue
        for imp in imports_of(root, path, set(mods)):
            other = stage_of(imp.module)
            if other is not None and other != own:
                bad.append(f"{path.relative_to(root)}:{imp.line} imports {imp.module}")
    return bad


def shared_layer_stage_imports(root: Path) -> list[str]:
    """(a) Each place the shared layer imports a stage or the stage registry."""
    bad = []
    for name, path in modules(root, "voxemoset").items():
        if not any(_within(name, shared) for shared in SHARED_LAYER):
            continue
        for imp in imports_of(root, path):
            if _within(imp.module, "voxemoset.stages"):
                bad.append(f"{path.relative_to(root)}:{imp.line} imports {imp.module}")
    return bad


def library_orchestration_imports(root: Path) -> list[str]:
    """(b) Each place the library imports Prefect, or imports `flows` from outside `voxemoset/cli.py`."""
    bad = []
    for name, path in modules(root, "voxemoset").items():
        for imp in imports_of(root, path):
            if _within(imp.module, "prefect") or imp.module.startswith("prefect_"):
                bad.append(f"{path.relative_to(root)}:{imp.line} imports {imp.module}")
            elif _within(imp.module, "flows") and name != "voxemoset.cli":
                bad.append(f"{path.relative_to(root)}:{imp.line} imports {imp.module}")
    return bad


# The config leaf: each file may import only these voxemoset modules.
CONFIG_LEAF = {
    "config.py": ("voxemoset.errors", "voxemoset.settings", "voxemoset.config_captions"),
    "config_captions.py": ("voxemoset.settings",),
    "settings.py": ("voxemoset.errors",),
}


def config_imports(root: Path) -> list[str]:
    """(c) Each voxemoset module the config leaf (`config.py`, `settings.py`) imports beyond what it may."""
    bad = []
    for file, allowed in CONFIG_LEAF.items():
        path = root / "voxemoset" / file
        if path.is_file():
            bad += [
                f"voxemoset/{file}:{imp.line} imports {imp.module}"
                for imp in imports_of(root, path)
                if _within(imp.module, "voxemoset") and imp.module not in allowed
            ]
    return bad


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the voxemoset modules it imports when it is imported (module level only)."""
    mods = modules(root, "voxemoset")
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        graph[name] = set()
        for imp in imports_of(root, path, set(mods)):
            if not imp.top_level or imp.module == name:
                continue
            target = imp.module
            while target and target not in mods:  # `import voxemoset.a.b.c` where c is a name: its module
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def import_cycles(root: Path) -> list[list[str]]:
    """(d) Groups of modules that import each other at module level (Tarjan's strongly connected components)."""
    graph = import_graph(root)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def oversized(root: Path) -> list[str]:
    """(e) Modules over MAX_MODULE_LINES lines and functions over MAX_FUNCTION_LINES lines in voxemoset/ and flows/."""
    bad = []
    for package in ("voxemoset", "flows"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(LONG_MODULES_ALLOWED):
                continue
            text = path.read_text()
            if (n := len(text.splitlines())) > MAX_MODULE_LINES:
                bad.append(f"{rel}: {n} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (rel, node.name) not in (
                    LONG_FUNCTIONS_ALLOWED
                ):
                    if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                        bad.append(f"{rel}:{node.lineno} {node.name}(): {n} lines")
    return bad


# The store's own way into a stage folder: nothing outside `voxemoset/store/` may use it (stages get their inputs from
# the runner; other readers go through `voxemoset.store.reading`).
FOLDER_NAMES = {"stage_dir", "list_shards", "verified_shards"}


def _declared_inputs(path: Path) -> set[str]:
    """The names in a stage class's `inputs = (...)`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "inputs" for t in node.targets):
            found |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return found


def stage_folder_reads(root: Path) -> list[str]:
    """(f) Each place code outside `store/` takes the store's folder functions or joins `stages` into a path, and each
    place a stage joins another stage's name it did not declare among its `inputs` into a path (its folder)."""
    stages_root = root / "voxemoset" / "stages"
    names = {p.name for p in stages_root.iterdir() if (p / "__init__.py").is_file()} if stages_root.is_dir() else set()
    bad = []
    for name, path in modules(root, "voxemoset").items():
        if _within(name, "voxemoset.store"):
            continue
        own = stage_of(name)
        allowed = (
            _declared_inputs(stages_root / own / "stage.py")
            if own and (stages_root / own / "stage.py").is_file()
            else set()
        )
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("voxemoset.store"):
                taken = sorted(a.name for a in node.names if a.name in FOLDER_NAMES or node.module.endswith("folders"))
                bad += [f"{path.relative_to(root)}:{node.lineno} takes {t} from {node.module}" for t in taken]
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant):
                # A path joined by hand: `out / "stages" / ...`, or `... / "<another stage>"` in a stage.
                if node.right.value == "stages" or (own and node.right.value in names - {own} - allowed):
                    bad.append(f"{path.relative_to(root)}:{node.lineno} joins {node.right.value!r} into a path")
    return bad


def _listing(found: list) -> str:
    return "\n".join(str(x) for x in found)


def test_no_stage_imports_another_stage():
    found = cross_stage_imports(REPO)
    assert not found, "a stage imports another stage (move what they share to the shared layer):\n" + _listing(found)


def test_shared_layer_imports_no_stage():
    found = shared_layer_stage_imports(REPO)
    assert not found, "the shared layer imports a stage:\n" + _listing(found)


def test_only_flows_import_prefect_and_only_cli_imports_flows():
    found = library_orchestration_imports(REPO)
    assert not found, "the library imports orchestration:\n" + _listing(found)


def test_config_is_a_leaf():
    found = config_imports(REPO)
    assert not found, "voxemoset/config.py imports a domain package:\n" + _listing(found)


def test_no_import_cycles():
    found = import_cycles(REPO)
    assert not found, "modules importing each other at module level:\n" + _listing(found)


def test_no_stage_reads_another_stage_folder_by_name():
    found = stage_folder_reads(REPO)
    assert not found, "a stage folder read outside the runner (declare `inputs`, read `upstream`):\n" + _listing(found)


def test_modules_and_functions_stay_small():
    found = oversized(REPO)
    assert not found, "too long:\n" + _listing(found)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


@pytest.fixture
def fake_tree(tmp_path):
    """A miniature voxemoset: two stage packages, a shared module, config, and the stage registry."""
    _write(
        tmp_path,
        {
            "voxemoset/__init__.py": "",
            "voxemoset/errors.py": "",
            "voxemoset/config.py": "from voxemoset.errors import UserError\n",
            "voxemoset/rows.py": "COLUMNS = ()\n",
            "voxemoset/stages/__init__.py": "def get(n):\n    from voxemoset.stages.a import AStage\n",
            "voxemoset/stages/a/__init__.py": "from voxemoset.stages.a.stage import AStage\n",
            "voxemoset/stages/a/stage.py": "from voxemoset.rows import COLUMNS\nfrom .helpers import f\n",
            "voxemoset/stages/a/helpers.py": "def f():\n    return 1\n",
            "voxemoset/stages/b/__init__.py": "",
            "voxemoset/stages/b/stage.py": "from voxemoset.stages.b import __name__ as n\n",
            "flows/__init__.py": "",
        },
    )
    return tmp_path


def test_the_clean_fake_tree_passes(fake_tree):
    assert cross_stage_imports(fake_tree) == []
    assert shared_layer_stage_imports(fake_tree) == []
    assert library_orchestration_imports(fake_tree) == []
    assert config_imports(fake_tree) == []
    assert import_cycles(fake_tree) == []


@pytest.mark.parametrize(
    "code, line, imported",
    [
        ("from voxemoset.stages.a.helpers import f\n", 1, "voxemoset.stages.a.helpers"),
        ("import voxemoset.stages.a\n", 1, "voxemoset.stages.a"),
        ("from voxemoset.stages import a\n", 1, "voxemoset.stages.a"),
        ("from ..a import helpers\n", 1, "voxemoset.stages.a.helpers"),
        # Inside a function counts too: it runs as soon as the function does.
        ("def late():\n    from voxemoset.stages.a.stage import AStage\n", 2, "voxemoset.stages.a.stage"),
    ],
)
def test_checker_fails_when_a_stage_imports_another(fake_tree, code, line, imported):
    _write(fake_tree, {"voxemoset/stages/b/stage.py": code})
    assert cross_stage_imports(fake_tree) == [f"voxemoset/stages/b/stage.py:{line} imports {imported}"]


def test_checker_finds_the_other_breaches(fake_tree):
    _write(
        fake_tree,
        {
            "voxemoset/rows.py": "import prefect\nfrom voxemoset.config import X\n",
            "voxemoset/seeds.py": "from voxemoset.stages.b import n\n",
            "voxemoset/config.py": "from voxemoset.rows import COLUMNS\n",
            "voxemoset/stages/a/helpers.py": "def f():\n    from flows.x import y\n",
        },
    )
    assert library_orchestration_imports(fake_tree) == [
        "voxemoset/rows.py:1 imports prefect",
        "voxemoset/stages/a/helpers.py:2 imports flows.x",
    ]
    assert shared_layer_stage_imports(fake_tree) == ["voxemoset/seeds.py:1 imports voxemoset.stages.b"]
    assert config_imports(fake_tree) == ["voxemoset/config.py:1 imports voxemoset.rows"]
    assert import_cycles(fake_tree) == [["voxemoset.config", "voxemoset.rows"]]


def test_checker_finds_folder_reads_and_undeclared_stage_names(fake_tree):
    _write(
        fake_tree,
        {
            "voxemoset/store/__init__.py": "",
            "voxemoset/stages/b/stage.py": 'class B:\n    inputs = ("a",)\n\nx = {"a": 1}\n',  # declared: fine
            "voxemoset/stages/a/stage.py": 'from voxemoset.store.runner import stage_dir\nf = stage_dir(1, "x")\n'
            'g = out / "b"\nh = config.get("b")\n',  # b's folder, by hand; a config section named b is fine
            "voxemoset/report.py": 'from voxemoset.store.folders import list_shards\np = out / "stages"\n',
        },
    )
    assert stage_folder_reads(fake_tree) == [
        "voxemoset/report.py:1 takes list_shards from voxemoset.store.folders",
        "voxemoset/report.py:2 joins 'stages' into a path",
        "voxemoset/stages/a/stage.py:1 takes stage_dir from voxemoset.store.runner",
        "voxemoset/stages/a/stage.py:3 joins 'b' into a path",
    ]
    assert stage_folder_reads(fake_tree.parent / "nowhere") == []
