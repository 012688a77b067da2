"""The report's HTML page in headless Chromium (DevTools protocol): no console errors, rows listed, audio plays."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pyarrow.parquet as pq
import pytest

from tests.processes import stop
from tests.test_dataset import make_config, write_upstream
from voxemoset.report import write_report
from voxemoset.stages.dataset import DatasetStage
from voxemoset.store.runner import run_stage

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium) to open the HTML report in"
)

# Loads every <audio>'s source and thumbnail; reports whether the browser decoded them.
CHECK_AUDIO = """(async () => {
  const cards = [...document.querySelectorAll('#grid .card')];
  const audio = await Promise.all([...document.querySelectorAll('audio')].map(a => new Promise(resolve => {
    const src = a.querySelector('source');
    let settled = false;
    const done = ok => { if (!settled) { settled = true; resolve({ok, duration: a.duration,
      can: src ? a.canPlayType(src.type) : '', uri: src ? src.src.slice(0, 22) : ''}); } };
    a.addEventListener('loadedmetadata', () => done(true));
    a.addEventListener('error', () => done(false));
    if (src) { src.addEventListener('error', () => done(false)); }
    setTimeout(() => done(false), 20000);
    a.preload = 'metadata';
    a.load();
  })));
  // Thumbnails load lazily; make them eager and wait until each one decodes.
  const images = await Promise.all([...document.querySelectorAll('#grid img')].map(i => {
    i.loading = 'eager';
    return i.decode().then(() => i.naturalWidth > 0, () => false);
  }));
  return {ids: cards.map(c => c.dataset.id), audio, images};
})()"""

FILTER = """(() => {
  const pick = (id, v) => { const s = document.getElementById(id); s.value = v; s.dispatchEvent(new Event('change')); };
  pick('f-emotion', 'anger'); pick('f-split', 'test');
  const shown = [...document.querySelectorAll('#grid .card')].filter(c => !c.hidden).map(c => c.dataset.id);
  pick('f-emotion', ''); pick('f-split', '');
  return shown;
})()"""


class Page:
    """One Chromium tab driven over the DevTools protocol, collecting console errors and exceptions."""

    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=2**26, open_timeout=20)
        self.next_id, self.errors = 0, []
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method)

    def _note(self, msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(("console", [a.get("value") for a in params.get("args", [])]))
        elif method == "Runtime.exceptionThrown":
            self.errors.append(("exception", params["exceptionDetails"].get("text")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(("log", params["entry"].get("text")))

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.wait(lambda m: m.get("id") == self.next_id, timeout)

    def wait(self, match, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(end - time.monotonic(), 0.1)))
            self._note(msg)
            if match(msg):
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg

    def evaluate(self, expression: str):
        reply = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        result = reply["result"]
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """Headless Chromium with a throwaway profile; yields the DevTools port."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.is_file() and port_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert port_file.is_file(), "chromium did not open its DevTools port"
        yield int(port_file.read_text().split()[0])
    finally:
        stop(proc, 10)


def _page(port: int) -> Page:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
        targets = [t for t in json.load(r) if t["type"] == "page"]
    return Page(targets[0]["webSocketDebuggerUrl"])


def test_html_report_in_headless_chromium(tmp_path, chromium):
    out = tmp_path / "build"
    write_upstream(out)
    run_stage(DatasetStage(), make_config(out), out)
    folder = write_report(out, sample=12)
    html = folder / "index.html"
    text = html.read_text()
    assert "http://" not in text and "https://" not in text, "the page must be self-contained"

    page = _page(chromium)
    page.call("Page.navigate", url=html.resolve().as_uri())
    page.wait(lambda m: m.get("method") == "Page.loadEventFired")
    state = page.evaluate(CHECK_AUDIO)
    anger_test = page.evaluate(FILTER)
    page.ws.close()

    assert page.errors == []
    published = [
        r for p in sorted((out / "stages" / "dataset").glob("*.parquet")) for r in pq.read_table(p).to_pylist()
    ]
    emotion_of = {r["id"]: (r["emotion"], r["split"]) for r in published}
    assert len(state["ids"]) == 12 and set(state["ids"]) <= set(emotion_of)
    assert {emotion_of[i][0] for i in state["ids"]} == {"enjoyment", "anger", "disgust", "fear", "sadness"}
    assert len(state["audio"]) == 12
    for a in state["audio"]:
        assert a["uri"].startswith("data:audio/flac;base64") and a["can"] in ("maybe", "probably")
        assert a["ok"] and a["duration"] > 0.5, a
    assert all(state["images"])
    assert anger_test and all(emotion_of[i] == ("anger", "test") for i in anger_test)
    report = json.loads((folder / "report.json").read_text())
    assert report["table1"]["all"]["utterances"] == len(published)


def test_report_cli_writes_everything(tmp_path, tiny_models):
    from typer.testing import CliRunner

    from voxemoset.cli import app

    out = tmp_path / "build"
    write_upstream(out)
    run_stage(DatasetStage(), make_config(out), out)
    clip = tiny_models["clip"]
    result = CliRunner().invoke(app, ["report", str(out), "--sample", "3", "--clip-model", str(clip)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in (out / "report").iterdir()}
    assert names == {
        "report.json",
        "report.md",
        "index.html",
        "words.png",
        "dnsmos.png",
        "confusion.png",
        "attempts.png",
    }
    assert (out / "report").as_posix() in result.output.replace("\n", "")
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code != 0


def test_console_errors_are_caught(tmp_path, chromium):
    """The check above would see a broken page: console errors and uncaught exceptions are collected."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><title>x</title><script>console.error('boom'); missingFunction();</script>")
    page = _page(chromium)
    page.call("Page.navigate", url=bad.resolve().as_uri())
    page.wait(lambda m: m.get("method") == "Page.loadEventFired")
    page.evaluate("1")
    page.ws.close()
    kinds = {kind for kind, _ in page.errors}
    assert {"console", "exception"} <= kinds, page.errors
