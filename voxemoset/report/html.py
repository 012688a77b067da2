"""One self-contained HTML page to browse samples: image, caption, audio player, scores; filters."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import jinja2
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from voxemoset.emotions import EMOTIONS
from voxemoset.hub.shards import list_dataset_shards
from voxemoset.report.figures import load_rows
from voxemoset.report.table1 import TABLE1
from voxemoset.store.atomic import write_atomic

THUMB_SIDE = 320  # px: thumbnails keep a 200-sample page to a few MB of images
SCORES = ("emo_pred", "emo_conf", "dnsmos_ovrl", "wer", "attempts", "duration_s", "reference_corpus",
          "reference_speaker")  # fmt: skip

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>VoxEmoset samples</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
.controls{position:sticky;top:0;background:#fafafa;padding:.5rem 0;border-bottom:1px solid #ddd;z-index:1}
.controls label{margin-right:1rem}
#grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1rem;margin-top:1rem}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem;margin:0}
.card img{width:100%;height:220px;object-fit:contain;background:#eee}.card audio{width:100%}
.caption{font-size:1.05rem;margin:.4rem 0}.tag{display:inline-block;background:#e8eefc;border-radius:4px;
padding:0 .4rem;margin-right:.3rem;font-size:.85rem}dl{display:grid;grid-template-columns:auto 1fr;gap:0 .6rem;
font-size:.8rem;margin:.4rem 0 0}dt{color:#666}dd{margin:0}.plots img{max-width:48%;margin:.5rem 1% 0 0}
</style></head>
<body>
<h1>VoxEmoset: {{ rows|length }} sampled utterances</h1>
<table id="table1"><tr><th></th>{% for s in splits %}<th>{{ s }}</th>{% endfor %}</tr>
{% for key, name in table1_names %}<tr><td>{{ name }}</td>{% for s in splits %}<td>{{ "missing" if table1[s][key] is none else table1[s][key] }}</td>{% endfor %}</tr>
{% endfor %}</table>
<div class="controls">
<label>Emotion <select id="f-emotion"><option value="">all</option>{% for e in emotions %}<option value="{{ e }}">{{ e }}</option>{% endfor %}</select></label>
<label>Split <select id="f-split"><option value="">all</option>{% for s in row_splits %}<option value="{{ s }}">{{ s }}</option>{% endfor %}</select></label>
<span id="count"></span>
</div>
<div id="grid">
{% for r in rows %}<figure class="card" data-id="{{ r.id }}" data-emotion="{{ r.emotion }}" data-split="{{ r.split }}">
<img src="{{ r.image_uri }}" alt="image {{ r.image_id }}" loading="lazy">
<figcaption><span class="tag">{{ r.emotion }}</span><span class="tag">{{ r.split }}</span><span class="tag">{{ r.image_id }}</span>
<p class="caption">{{ r.caption }}</p>
<audio controls preload="none"><source src="{{ r.audio_uri }}" type="audio/flac"></audio>
<dl>{% for k, v in r.scores %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl></figcaption></figure>
{% endfor %}</div>
<h2>Plots</h2><div class="plots">{% for name, uri in plots %}<img src="{{ uri }}" alt="{{ name }}">{% endfor %}</div>
<script>
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll("#grid .card"));
  var emotion = document.getElementById("f-emotion"), split = document.getElementById("f-split");
  function apply() {
    var shown = 0;
    cards.forEach(function (c) {
      var ok = (!emotion.value || c.dataset.emotion === emotion.value) && (!split.value || c.dataset.split === split.value);
      c.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("count").textContent = shown + " of " + cards.length + " shown";
  }
  emotion.addEventListener("change", apply);
  split.addEventListener("change", apply);
  apply();
})();
</script>
</body></html>
"""


def _uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail_uri(data: bytes, side: int = THUMB_SIDE) -> str:
    """A JPEG thumbnail of image bytes as a data URI."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=82)
    return _uri("image/jpeg", buf.getvalue())


def choose_sample(df: pd.DataFrame, limit: int) -> list[str]:
    """Up to `limit` ids spread evenly over (split, emotion), in a fixed order (hash of the id)."""
    order = df.assign(_h=df["id"].map(lambda i: hashlib.sha256(str(i).encode()).hexdigest()))
    groups = [g.sort_values("_h")["id"].tolist() for _, g in order.groupby(["split", "emotion"], sort=True)]
    chosen: list[str] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(g) for g in groups):
        chosen += [g[depth] for g in groups if depth < len(g)][: limit - len(chosen)]
        depth += 1
    return chosen


def _media(out: Path, ids: set[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    if not ids:  # `--sample 0`: an `in` filter over no values cannot be typed
        return found
    for paths in list_dataset_shards(Path(out) / "dataset" / "data").values():
        for p in paths:
            t = pq.read_table(p, columns=["id", "image", "audio"], filters=[("id", "in", sorted(ids))])
            found.update({r["id"]: r for r in t.to_pylist()})
    return found


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))


def render_html(out: Path, report: dict, plots: dict[str, Path], sample: int = 200) -> str:
    """The page as a string: sampled rows with embedded media, Table 1, filters and plots."""
    df = load_rows(out)
    ids = choose_sample(df, sample) if sample > 0 else []
    media = _media(out, set(ids))
    by_id = df.set_index("id")
    rows = []
    for i in ids:
        r = by_id.loc[i]
        rows.append({
            "id": i, "emotion": r["emotion"], "split": r["split"], "image_id": r["image_id"], "caption": r["caption"],
            "image_uri": thumbnail_uri(media[i]["image"]["bytes"]),
            "audio_uri": _uri("audio/flac", media[i]["audio"]["bytes"]),
            "scores": [(k, _fmt(r[k] if pd.notna(r[k]) else None)) for k in SCORES],
        })  # fmt: skip
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        rows=rows,
        splits=list(report["table1"]),
        row_splits=sorted(df["split"].unique()),
        table1=report["table1"],
        table1_names=list(TABLE1.items()),
        emotions=EMOTIONS,
        plots=[(name, _uri("image/png", Path(p).read_bytes())) for name, p in plots.items()],
    )


def write_html(out: Path, report: dict, plots: dict[str, Path], path: Path, sample: int = 200) -> Path:
    """Write the page atomically."""
    text = render_html(out, report, plots, sample)
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path
