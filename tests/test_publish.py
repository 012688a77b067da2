"""`voxemoset publish` against a local HTTP stand-in for the Hub: dry run, dropped connection, resume, no-op rerun.

The stand-in implements only what huggingface_hub calls for create_repo, the repo tree, preupload, the LFS
batch API with basic PUT uploads, YAML validation and commits (HF_HUB_DISABLE_XET=1 keeps transfers on LFS).
It is the one place a stand-in is used, because the real Hub cannot be reached from tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.test_dataset import make_config, write_upstream
from voxemoset.stages.dataset import DatasetStage
from voxemoset.store.runner import run_stage

TOKEN = "hf_standinSECRETtoken0123456789abcdefXYZ"
REPO = "voxorg/voxemoset-test"


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandIn:
    """State of the fake Hub plus fault injection: drop one PUT midway, or hang one until released."""

    def __init__(self):
        self.repos: dict[str, dict[str, dict]] = {}
        self.lfs: dict[str, bytes] = {}
        self.log: list[tuple[str, str]] = []
        self.put_attempts, self.puts_done = Counter(), Counter()
        self.drop_once: set[str] = set()
        self.hang_on: str | None = None
        self.hung, self.release = threading.Event(), threading.Event()
        self.commits = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def since(self, mark: int) -> list[str]:
        """Request lines logged after `mark`."""
        return [f"{m} {p}" for m, p in self.log[mark:]]

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _body(self, limit: int | None = None) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while limit is None or len(data) < limit:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    return data
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n if limit is None else min(n, limit))

            def _send(self, code: int, payload=None):
                body = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                    return True
                self._body()
                self._send(401, {"error": "Invalid credentials in Authorization header"})
                return False

            def do_GET(self):
                hub.log.append(("GET", self.path))
                path = urlparse(self.path).path
                if not self._authorised():
                    return
                m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(tree|revision)/main(/.*)?", path)
                if not m or m[1] not in hub.repos:
                    return self._send(404, {"error": "Repository not found"})
                files = hub.repos[m[1]]
                if m[2] == "revision":
                    return self._send(200, {"id": m[1], "sha": f"{hub.commits:040x}", "private": False})
                tree = []
                for p, f in sorted(files.items()):
                    entry = {"type": "file", "path": p, "size": f["size"], "oid": f["oid"]}
                    if f["lfs"]:
                        entry["lfs"] = {"oid": f["lfs"], "size": f["size"], "pointerSize": 134}
                    tree.append(entry)
                self._send(200, tree)

            def do_PUT(self):
                hub.log.append(("PUT", self.path))
                oid = self.path.rsplit("/", 1)[-1]
                hub.put_attempts[oid] += 1
                size = int(self.headers.get("Content-Length") or 0)
                if oid in hub.drop_once or oid == hub.hang_on:
                    self._body(limit=max(size // 2, 1))  # half the file arrives, then the line goes dead
                    if oid == hub.hang_on:
                        hub.hung.set()
                        hub.release.wait(60)
                    hub.drop_once.discard(oid)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                data = self._body()
                if hashlib.sha256(data).hexdigest() != oid:
                    return self._send(400, {"error": "sha256 mismatch"})
                hub.lfs[oid] = data
                hub.puts_done[oid] += 1
                self._send(200)

            def do_POST(self):
                hub.log.append(("POST", self.path))
                path = urlparse(self.path).path
                if path.startswith("/lfs/verify"):
                    body = json.loads(self._body())
                    return self._send(200 if body["oid"] in hub.lfs else 404, {})
                if not self._authorised():
                    return
                body = self._body()
                if path == "/api/repos/create":
                    req = json.loads(body)
                    repo = f"{req['organization']}/{req['name']}"
                    url = f"{hub.url}/datasets/{repo}"
                    if repo in hub.repos:
                        return self._send(409, {"error": "You already created this dataset repo", "url": url})
                    attrs = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
                    hub.repos[repo] = {".gitattributes": {"size": len(attrs), "oid": git_oid(attrs), "lfs": None}}
                    return self._send(200, {"url": url, "name": repo})
                if path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                m = re.fullmatch(r"/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch", path)
                if m:
                    objects = []
                    for o in json.loads(body)["objects"]:
                        entry = {"oid": o["oid"], "size": o["size"]}
                        if o["oid"] not in hub.lfs:
                            entry["actions"] = {"upload": {"href": f"{hub.url}/lfs/{o['oid']}"},
                                                "verify": {"href": f"{hub.url}/lfs/verify"}}  # fmt: skip
                        objects.append(entry)
                    return self._send(200, {"transfer": "basic", "objects": objects})
                m = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(preupload|commit)/main", path)
                if not m or m[1] not in hub.repos:
                    return self._send(404, {"error": "Repository not found"})
                files = hub.repos[m[1]]
                if m[2] == "preupload":
                    out = []
                    for f in json.loads(body)["files"]:
                        lfs = f["path"].endswith(".parquet")
                        have = files.get(f["path"])
                        oid = None if have is None else (have["lfs"] or have["oid"])
                        out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular",
                                    "shouldIgnore": False, "oid": oid})  # fmt: skip
                    return self._send(200, {"files": out})
                for line in body.splitlines():
                    op = json.loads(line)
                    v = op["value"]
                    if op["key"] == "file":
                        data = base64.b64decode(v["content"])
                        files[v["path"]] = {"size": len(data), "oid": git_oid(data), "lfs": None, "data": data}
                    elif op["key"] == "lfsFile":
                        if v["oid"] not in hub.lfs:
                            return self._send(422, {"error": f"LFS object {v['oid']} was never uploaded"})
                        files[v["path"]] = {"size": v["size"], "oid": git_oid(b"pointer" + v["oid"].encode()),
                                            "lfs": v["oid"]}  # fmt: skip
                    elif op["key"] == "deletedFile":
                        files.pop(v["path"], None)
                hub.commits += 1
                oid = f"{hub.commits:040x}"
                self._send(200, {"commitUrl": f"{hub.url}/datasets/{m[1]}/commit/{oid}", "commitOid": oid,
                                 "success": True})  # fmt: skip

        return Handler


@pytest.fixture
def hub():
    h = HubStandIn()
    yield h
    h.close()


def _env(tmp_path: Path, hub: HubStandIn | None, token: str | None = TOKEN) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING_FACE_")) and k != "TRANSFORMERS_OFFLINE"
    }
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0", HF_HUB_VERBOSITY="debug", HF_DEBUG="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", NO_COLOR="1")  # fmt: skip
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    if token:
        env["HF_TOKEN"] = token
    return env


def _cli(*args: str, env: dict, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "voxemoset.cli", "publish", *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _run(*args: str, env: dict, transcript: list) -> subprocess.CompletedProcess:
    proc = _cli(*args, env=env)
    stdout, stderr = proc.communicate(timeout=120)
    transcript += [stdout, stderr]
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("publish") / "build"
    write_upstream(out)
    run_stage(DatasetStage(), make_config(out, shard_bytes=120_000, row_group_bytes=50_000), out)
    return out


def test_dry_run_lists_exactly_the_card_and_shards(build, tmp_path):
    transcript: list[str] = []
    res = _run(str(build), "--repo-id", REPO, "--dry-run", env=_env(tmp_path, None, token=None), transcript=transcript)
    assert res.returncode == 0, res.stderr
    listed = {}
    for line in res.stdout.strip().splitlines():
        m = re.fullmatch(r"(.+) -> datasets/voxorg/voxemoset-test/(\S+) \((\d+) bytes\)", line)
        assert m, line
        listed[m[2]] = (Path(m[1]), int(m[3]))
    shards = sorted((build / "dataset" / "data").glob("*.parquet"))
    assert set(listed) == {"README.md"} | {f"data/{p.name}" for p in shards}
    assert all(local.stat().st_size == size for local, size in listed.values())
    bad = _run(str(build), "--repo-id", "not-a-repo", "--dry-run", env=_env(tmp_path, None), transcript=transcript)
    assert bad.returncode == 1 and "ORG/NAME" in bad.stderr


def test_publish_resumes_after_drops_and_reruns_send_nothing(build, tmp_path, hub):
    transcript: list[str] = []
    env = _env(tmp_path, hub)
    shards = sorted((build / "dataset" / "data").glob("*.parquet"))
    assert len(shards) >= 3
    oids = [hashlib.sha256(p.read_bytes()).hexdigest() for p in shards]

    # Run 1: the first shard's connection drops halfway once (retried in-run); the third hangs mid-upload
    # and the process is killed there, as a lost machine or Ctrl-C would leave it.
    hub.drop_once, hub.hang_on = {oids[0]}, oids[2]
    proc = _cli(str(build), "--repo-id", REPO, env=env)
    assert hub.hung.wait(60), "the upload never reached the third shard"
    proc.kill()
    stdout, stderr = proc.communicate(timeout=30)
    transcript += [stdout, stderr]
    hub.hang_on = None
    hub.release.set()
    assert hub.put_attempts[oids[0]] == 2 and hub.puts_done[oids[0]] == 1
    assert hub.commits == 0 and oids[2] not in hub.lfs

    # Run 2: resumes; finished shards are not sent again, the rest is, then one commit.
    res = _run(str(build), "--repo-id", REPO, env=env, transcript=transcript)
    assert res.returncode == 0, res.stderr
    assert all(hub.puts_done[o] == 1 for o in oids), hub.puts_done
    assert hub.commits == 1
    files = hub.repos[REPO]
    assert {p for p in files if p != ".gitattributes"} == {"README.md"} | {f"data/{p.name}" for p in shards}
    assert files["README.md"]["data"] == (build / "dataset" / "README.md").read_bytes()
    assert all(files[f"data/{p.name}"]["lfs"] == o for p, o in zip(shards, oids, strict=True))
    record = json.loads((build / "publish.json").read_text())
    assert record["commit"] == f"{1:040x}" and set(record["uploaded"]) == set(files) - {".gitattributes"}

    # Run 3: nothing changed, so nothing is uploaded or committed.
    mark = len(hub.log)
    res = _run(str(build), "--repo-id", REPO, env=env, transcript=transcript)
    assert res.returncode == 0, res.stderr
    assert "0 uploaded" in res.stdout and "nothing to upload" in res.stderr
    assert not [r for r in hub.since(mark) if r.startswith("PUT") or "/commit/" in r or "preupload" in r or "lfs" in r]
    assert hub.commits == 1

    # No token: one clear line, nothing sent.
    mark = len(hub.log)
    res = _run(str(build), "--repo-id", REPO, env=_env(tmp_path, hub, token=None), transcript=transcript)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "HF_TOKEN" in res.stderr
    assert hub.since(mark) == []

    # The token never shows: not in any output (huggingface_hub's request logging is on, as curl lines with
    # headers), nor in any file written.
    logs = "".join(transcript)
    assert "(authenticated: True)" in logs and "Send: curl" in logs
    assert TOKEN not in logs
    for root in (tmp_path, build.parent):
        for path in root.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path


def test_a_rebuilt_dataset_replaces_the_old_shards(tmp_path, hub):
    """A build with another byte budget splits each gates shard's rows into other parts: the commit sends the
    changed ones and removes the parts that are gone."""
    out = tmp_path / "build"
    write_upstream(out)
    env, transcript = _env(tmp_path, hub), []
    run_stage(DatasetStage(), make_config(out, shard_bytes=120_000, row_group_bytes=50_000), out)
    assert _run(str(out), "--repo-id", REPO, env=env, transcript=transcript).returncode == 0
    old = {p for p in hub.repos[REPO] if p.startswith("data/")}
    run_stage(DatasetStage(), make_config(out), out)  # default budget: one part per gates shard
    res = _run(str(out), "--repo-id", REPO, env=env, transcript=transcript)
    assert res.returncode == 0, res.stderr
    new = {p for p in hub.repos[REPO] if p.startswith("data/")}
    assert new == {"data/train-00000-000.parquet", "data/test-00000-000.parquet"} and len(old) > len(new)
    assert hub.repos[REPO]["README.md"]["data"] == (out / "dataset" / "README.md").read_bytes()
    assert f"{len(old - new)} removed" in res.stdout and hub.commits == 2


def test_one_changed_gates_shard_rewrites_and_uploads_only_its_file(tmp_path, hub):
    """Gates shards train-00000 and test-00000; a change to the test one recomputes one dataset job, rewrites one
    published file (the other keeps its bytes and its mtime) and the card, and `publish` sends just those two."""
    import pyarrow.parquet as pq

    out = tmp_path / "build"
    write_upstream(out)
    env, transcript = _env(tmp_path, hub), []
    assert run_stage(DatasetStage(), make_config(out), out)["computed"] == 2
    assert _run(str(out), "--repo-id", REPO, env=env, transcript=transcript).returncode == 0
    data = out / "dataset" / "data"
    train, test = data / "train-00000-000.parquet", data / "test-00000-000.parquet"
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (train, test)}
    gates = out / "stages" / "gates" / "test-00000.parquet"
    pq.write_table(pq.read_table(gates).slice(1), gates)  # the gates dropped one more utterance
    summary = run_stage(DatasetStage(), make_config(out), out)
    assert (summary["computed"], summary["skipped"]) == (1, 1)
    assert (train.read_bytes(), train.stat().st_mtime_ns) == before[train] and test.read_bytes() != before[test][0]
    mark, puts = len(hub.log), sum(hub.puts_done.values())
    res = _run(str(out), "--repo-id", REPO, env=env, transcript=transcript)
    assert res.returncode == 0, res.stderr
    record = json.loads((out / "publish.json").read_text())
    assert sorted(record["uploaded"]) == ["README.md", "data/test-00000-000.parquet"], record
    assert sum(hub.puts_done.values()) - puts == 1  # one LFS upload: the one changed data file
    assert len([r for r in hub.since(mark) if "/commit/" in r]) == 1
