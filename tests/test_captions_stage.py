"""The `captions` stage: tiny LLaVA-OneVision end to end (transformers), retries, rejects, keys, OpenAI client."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from tests.builders import make_config, stage_rows, stage_table
from voxemoset.config import parse_config
from voxemoset.errors import MissingWeightsError
from voxemoset.resources import default_prompt
from voxemoset.seeds import derive_seed
from voxemoset.stages.captions import CaptionModel, CaptionsStage, default_lexicon, rules_of, validate
from voxemoset.stages.images import ImagesStage
from voxemoset.store.runner import plan_stage, run_stage, stage_dir

REASONS = {v for k, v in vars(validate).items() if k.startswith("CAPTIONS_") and isinstance(v, str)} - {"captions"}
GOOD = [
    "A brown dog carries a red ball across a wide grassy field.",
    "Tall pine trees line the far edge of the field under a cloudy sky.",
    "Near the wooden fence, a man in a blue jacket holds a leash.",
]
BAD = '{"captions": ["The image shows a dog.", "A dog.", "A dog."]}'


def _config(out: Path, emoset: Path, **captions):
    defaults = {"backend": "transformers", "device": "cpu", "batch_size": 2, "max_new_tokens": 12}
    return make_config(out, emoset, images={"limit_per_split": 3, "shard_size": 2}, captions=defaults | captions)


@pytest.fixture(scope="module")
def tiny_llava(tiny_models) -> Path:
    return tiny_models["llava_onevision"]


@pytest.fixture(scope="module")
def images_out(emoset_root, tmp_path_factory) -> Path:
    """An output folder holding only a finished `images` stage (6 images in 4 shards)."""
    out = tmp_path_factory.mktemp("images_out")
    run_stage(ImagesStage(), _config(out, emoset_root), out)
    return out


def _copy_images(images_out: Path, out: Path) -> Path:
    shutil.copytree(stage_dir(images_out, "images"), stage_dir(out, "images"))
    return out


@pytest.fixture(scope="module")
def tiny_run(images_out, tiny_llava, emoset_root, tmp_path_factory):
    out = _copy_images(images_out, tmp_path_factory.mktemp("tiny_run"))
    cfg = _config(out, emoset_root, model=str(tiny_llava), max_attempts=2)
    return out, cfg, run_stage(CaptionsStage(), cfg, out)


def test_random_model_answers_are_rejected_with_attempts(tiny_run):
    out, cfg, summary = tiny_run
    rejects = stage_table(stage_dir(out, "captions") / "rejects").to_pylist()
    image_ids = stage_table(stage_dir(out, "images")).column("image_id").to_pylist()
    # Random weights cannot write three valid captions: every image spends its budget and is rejected.
    assert summary["rows"] == 0 and sum(summary["rejects"].values()) == len(image_ids) == 6
    assert sorted(r["source"] for r in rejects) == sorted(image_ids)
    assert all(r["reason"] in REASONS and r["attempts"] == 2 and r["stage"] == "captions" for r in rejects)
    assert all("answer:" in r["detail"] and len(r["detail"]) <= 500 for r in rejects)
    markers = [json.loads(p.read_text()) for p in (stage_dir(out, "captions") / "_done").glob("*.json")]
    assert sum(m["stats"]["answers"] for m in markers) == 12 and len(markers) == summary["shards"] == 4


def test_same_seed_same_answers(tiny_run, tmp_path, monkeypatch, images_out):
    out, cfg, _ = tiny_run
    first = stage_table(stage_dir(out, "captions") / "rejects").to_pylist()
    again = _copy_images(images_out, tmp_path)
    run_stage(CaptionsStage(), cfg.model_copy(update={"out": again}), again)
    assert stage_table(stage_dir(again, "captions") / "rejects").to_pylist() == first

    model = CaptionsStage().load(cfg)
    img = Image.new("RGB", (50, 40), (200, 30, 30))
    one = model.captioner.caption([img, img.rotate(90)], [7, 8])
    assert model.captioner.caption([img, img.rotate(90)], [7, 8]) == one
    assert model.captioner.caption([img], [7]) == one[:1]  # per-item seeds: the batch does not matter


def test_second_run_is_a_noop_and_loads_nothing(tiny_run, monkeypatch):
    out, cfg, _ = tiny_run
    folder = stage_dir(out, "captions")
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    monkeypatch.setattr(CaptionsStage, "load", lambda self, config: pytest.fail("loaded a model with nothing to do"))
    summary = run_stage(CaptionsStage(), cfg, out)
    assert summary["computed"] == 0 and summary["skipped"] == 4
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} == before


def test_prompt_and_lexicon_key_the_stage_operational_settings_do_not(tiny_run, tmp_path):
    out, cfg, _ = tiny_run
    keys = lambda c: [j.key for j in plan_stage(CaptionsStage(), c).jobs]  # noqa: E731
    base = keys(cfg)
    prompt = tmp_path / "caption.txt"
    prompt.write_text(default_prompt().read_text() + "\nBe brief.")
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("# test\nhappy\n")
    update = lambda **kw: cfg.model_copy(update={"captions": cfg.captions.model_copy(update=kw)})  # noqa: E731
    assert set(keys(update(prompt=prompt))).isdisjoint(base)
    assert set(keys(update(lexicon=lexicon))).isdisjoint(base)
    assert set(keys(update(temperature=0.2))).isdisjoint(base)
    faster = cfg.captions.openai.model_copy(update={"concurrency": 64, "base_url": "http://elsewhere:1/v1"})
    assert keys(update(openai=faster)) == base
    roomier = cfg.captions.vllm.model_copy(update={"gpu_memory_utilization": 0.5, "max_num_seqs": 64})
    assert keys(update(vllm=roomier)) == base


class ScriptedCaptioner:
    """Fake on purpose (a random model cannot write valid captions): answers from a script per image."""

    name = "scripted"

    def __init__(self, script: dict[str, list[str]], pixels_to_id: dict[str, str]):
        self.script, self.pixels_to_id, self.calls = script, pixels_to_id, Counter()
        self.seeds: dict[str, list[int]] = {}

    def caption(self, images, seeds, ids=None):
        out = []
        for img, seed in zip(images, seeds, strict=True):
            image_id = self.pixels_to_id[hashlib.md5(img.tobytes()).hexdigest()]
            answers = self.script[image_id]
            out.append(answers[min(self.calls[image_id], len(answers) - 1)])
            self.calls[image_id] += 1
            self.seeds.setdefault(image_id, []).append(seed)
        return out


def test_accept_path_rows_retries_and_rejects(images_out, emoset_root, tmp_path):
    out = _copy_images(images_out, tmp_path)
    images = stage_table(stage_dir(out, "images")).to_pylist()
    ids = [r["image_id"] for r in images]
    pixels = {
        hashlib.md5(Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB").tobytes()).hexdigest(): r["image_id"]
        for r in images
    }
    good = json.dumps({"captions": GOOD})
    script = {i: [good] for i in ids}
    script[ids[1]] = ["no json at all", BAD, good]  # accepted on its third attempt
    script[ids[2]] = ["", BAD]  # never valid: rejected with the last reason
    fake = ScriptedCaptioner(script, pixels)
    cfg = _config(out, emoset_root, model="/nowhere/llava-ov-7b", backend="openai", max_attempts=3, seed=5)

    class Scripted(CaptionsStage):
        def load(self, config):
            return CaptionModel(fake, validate.load_lexicon(default_lexicon()), rules_of(config.captions))

    summary = run_stage(Scripted(), cfg, out)
    rows = stage_table(stage_dir(out, "captions")).to_pylist()
    assert summary["rows"] == len(rows) == 3 * 5 and summary["rejects"] == {validate.CAPTIONS_PREAMBLE: 1}
    by_image = {i: [r for r in rows if r["image_id"] == i] for i in ids}
    meta = {r["image_id"]: r for r in images}
    for image_id, got in by_image.items():
        if image_id == ids[2]:
            assert got == []
            continue
        assert [r["caption_index"] for r in got] == [0, 1, 2] and [r["caption"] for r in got] == GOOD
        attempts = 3 if image_id == ids[1] else 1
        assert {r["caption_attempts"] for r in got} == {attempts}
        assert {r["caption_seed"] for r in got} == {derive_seed(5, image_id, attempts)}
        assert [r["n_words"] for r in got] == [12, 14, 13]
        assert all(r[k] == meta[image_id][k] for r in got for k in ("split", "emotion", "emoset_emotion"))
        assert {r["caption_model"] for r in got} == {"llava-ov-7b"} and got[0]["caption_id"] == f"{image_id}-c0"
    # New seed every attempt; the rejected image kept its attempt count and last answer.
    assert len(set(fake.seeds[ids[1]])) == 3 and fake.calls[ids[2]] == 3
    (reject,) = stage_table(stage_dir(out, "captions") / "rejects").to_pylist()
    assert reject["source"] == ids[2] and reject["attempts"] == 3 and BAD in reject["detail"]


def test_missing_weights_name_the_download_command(images_out, emoset_root, tmp_path):
    out = _copy_images(images_out, tmp_path / "o")
    with pytest.raises(MissingWeightsError, match=r"hf download llava-hf/llava-onevision-qwen2-7b-ov-hf --local-dir"):
        plan_stage(CaptionsStage(), _config(out, emoset_root, model=str(tmp_path / "absent")))
    with pytest.raises(MissingWeightsError, match=r"hf download voxemoset-test/no-such-model"):
        plan_stage(CaptionsStage(), _config(out, emoset_root, model="voxemoset-test/no-such-model"))
    from tests.conftest import write_config

    path = write_config(
        tmp_path / "c.yaml",
        {"out": str(out), "sources": {"emoset": str(emoset_root)}, "captions": {"model": str(tmp_path / "absent")}},
    )
    proc = subprocess.run(
        [sys.executable, "-m", "voxemoset.cli", "stage", "captions", "--direct", "-c", str(path)],
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "hf download" in lines[0], proc.stderr


@pytest.fixture
def chat_server():
    """A local stand-in for an OpenAI-compatible server: 503 for the first request, then valid answers."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state = {"bodies": [], "fail_first": 1, "status": 503}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                state["bodies"].append(body)
                failing = len(state["bodies"]) <= state["fail_first"]
            if failing:
                self.send_response(state["status"])
                self.end_headers()
                self.wfile.write(b'{"error": "busy"}')
                return
            first = f"A brown dog carries ball number {body['seed']} across a grassy field."
            content = json.dumps({"captions": [first, *GOOD[1:]]})
            data = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    server.shutdown()


def test_openai_client_retries_keeps_order_and_asks_for_the_schema(chat_server):
    import base64

    from voxemoset.models.captioners.answer import CAPTIONS_SCHEMA
    from voxemoset.models.captioners.openai_chat import OpenAICaptioner

    url, state = chat_server
    client = OpenAICaptioner(url, "llava", "Describe.", name="llava", concurrency=2, max_retries=2, backoff_s=0.01)
    images = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(4)]
    answers = client.caption(images, [11, 22, 33, 44])
    assert [f"number {s} " in a for a, s in zip(answers, [11, 22, 33, 44], strict=True)] == [True] * 4
    assert len(state["bodies"]) == 5  # one 503, retried
    body = state["bodies"][-1]
    assert body["response_format"]["json_schema"]["schema"] == CAPTIONS_SCHEMA
    image_part, text_part = body["messages"][0]["content"]
    assert text_part == {"type": "text", "text": "Describe."}
    png = base64.b64decode(image_part["image_url"]["url"].removeprefix("data:image/png;base64,"))
    assert Image.open(io.BytesIO(png)).tobytes() in {img.tobytes() for img in images}


def test_openai_client_fails_fast_on_4xx_and_gives_up_on_5xx(chat_server):
    from voxemoset.models.captioners.answer import CaptionBackendError
    from voxemoset.models.captioners.openai_chat import OpenAICaptioner

    url, state = chat_server
    img = [Image.new("RGB", (8, 8))]
    state.update(fail_first=100, status=400)
    with pytest.raises(CaptionBackendError, match="HTTP 400"):
        OpenAICaptioner(url, "m", "p", name="m", max_retries=3, backoff_s=0).caption(img, [1])
    assert len(state["bodies"]) == 1
    state.update(status=502)
    with pytest.raises(CaptionBackendError, match=r"gave up after 3 tries \(HTTP 502"):
        OpenAICaptioner(url, "m", "p", name="m", max_retries=2, backoff_s=0).caption(img, [1])


def test_stage_through_the_openai_backend(chat_server, images_out, emoset_root, tmp_path):
    url, state = chat_server
    out = _copy_images(images_out, tmp_path)
    openai = {"base_url": url, "backoff_s": 0.01}
    cfg = _config(out, emoset_root, backend="openai", model="llava-hf/llava-onevision-qwen2-7b-ov-hf", openai=openai)
    summary = run_stage(CaptionsStage(), cfg, out)
    rows = stage_table(stage_dir(out, "captions")).to_pylist()
    assert summary["rows"] == len(rows) == 18 and not summary["rejects"]
    assert {r["caption_model"] for r in rows} == {"llava-hf/llava-onevision-qwen2-7b-ov-hf"}
    assert all(f"number {r['caption_seed']} " in r["caption"] for r in rows if r["caption_index"] == 0)


def test_table_backend_answers_pass_validation(emoset_root, tmp_path):
    """The fixture builder's descriptions, read through the `table` backend, become validated captions."""
    from voxemoset.stages.captions import CaptionsStage
    from voxemoset.stages.images import ImagesStage
    from voxemoset.store.runner import run_stage, stage_dir

    cfg = parse_config(
        {
            "out": str(tmp_path),
            "sources": {"emoset": str(emoset_root)},
            "captions": {"backend": "table", "table": str(emoset_root / "fixture_captions.jsonl")},
        }
    )
    run_stage(ImagesStage(), cfg, tmp_path)
    summary = run_stage(CaptionsStage(), cfg, tmp_path)
    rows = stage_rows(stage_dir(tmp_path, "captions"))
    # 36 drawn images x 3 captions; the three unusual-but-valid specials have no table answer.
    assert len(rows) == 36 * 3 and summary["rejects"] == {"captions_empty": 3}
    assert {r["caption_model"] for r in rows} == {"table:fixture_captions.jsonl"}
    assert all(8 <= r["n_words"] <= 15 for r in rows)
