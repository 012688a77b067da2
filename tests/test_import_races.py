"""No shard thread uses a module that another is still importing (`partially initialized module 'torch'`).

Each check runs in a fresh interpreter (torch not yet imported) and holds one thread's `import torch` still at
torch's first submodule: torch is then in `sys.modules` without `get_num_threads` or `cuda`, as it is for the
seconds a MEAD shard thread spends importing it on its first Whisper load. A second thread then calls the
function under test, which must wait for that import rather than read the half-made module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voxemoset.store.imported import imported

REPO = Path(__file__).resolve().parents[1]

# Thread A imports torch and is held at torch's first submodule until thread B has had its turn (or 10 s pass:
# the safety net if B waits for A as it should, and the main thread fails to let A go).
_RACE = """
import json, sys, threading
from {module} import {function} as check

assert "torch" not in sys.modules, "the module under test imported torch itself"
paused, release = threading.Event(), threading.Event()


class HoldTorch:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("torch.") and not paused.is_set():
            paused.set()
            release.wait(10)
        return None


sys.meta_path.insert(0, HoldTorch())
seen = {{}}


def call():
    paused.wait(60)
    seen["partial"] = not hasattr(sys.modules["torch"], "get_num_threads")
    try:
        seen["result"] = check({arg})
    except Exception as e:
        seen["error"] = f"{{type(e).__name__}}: {{e}}"
    seen["waited"] = release.is_set()  # True: the call returned only after the held import went on


a, b = threading.Thread(target=lambda: __import__("torch")), threading.Thread(target=call)
a.start(); b.start()
b.join(1.0)  # a call that reads the half-made module returns at once; one that waits is still blocked here
release.set()
a.join(); b.join()
print(json.dumps({{**seen, "torch_threads": sys.modules["torch"].get_num_threads()}}))
"""


def race(module: str, function: str, arg: str, env: dict | None = None) -> dict:
    """Call `module.function(arg)` in a fresh process while another thread's `import torch` is half done."""
    code = _RACE.format(module=module, function=function, arg=arg)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "function", "arg", "expected"),
    [
        ("voxemoset.store.threads", "pin_cpu_threads", "1", 1),
        ("flows.transient", "is_transient", "RuntimeError('a shard failed')", False),
        ("voxemoset.models.oom", "is_out_of_memory", "ValueError('a shard failed')", False),
    ],
)
def test_waits_for_a_torch_import_in_another_thread(module, function, arg, expected):
    seen = race(module, function, arg)
    assert seen["partial"], "the race was not set up: torch already had get_num_threads when the call began"
    assert "error" not in seen, seen["error"]  # before the fix: AttributeError: partially initialized module
    assert seen["result"] == expected and seen["waited"]
    if function == "pin_cpu_threads":
        assert seen["torch_threads"] == 1


def test_imports_nothing_new():
    """Stages without models never import torch: asking whether it is in use must not import it."""
    code = (
        "import sys\nfrom voxemoset.store.threads import pin_cpu_threads\nfrom flows.transient import is_transient\n"
        "pin_cpu_threads(1); is_transient(RuntimeError()); print('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_imported_answers_without_importing():
    assert imported("json") is json
    assert imported("voxemoset_no_such_module") is None
    sys.modules["voxemoset_blocked_module"] = None  # a None entry blocks an import on purpose: not loaded
    try:
        assert imported("voxemoset_blocked_module") is None
    finally:
        del sys.modules["voxemoset_blocked_module"]


def test_nothing_else_reads_sys_modules():
    """`sys.modules` holds a module from the moment its import starts: only `imported` may look there."""
    sources = [*(REPO / "voxemoset").rglob("*.py"), *(REPO / "flows").rglob("*.py")]
    readers = [str(p.relative_to(REPO)) for p in sources if "sys.modules" in p.read_text()]
    assert readers == ["voxemoset/store/imported.py"]
