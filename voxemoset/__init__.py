"""voxemoset: build VoxEmoset, emotional spoken descriptions paired with emotional images.

Where things live, in one rule: a stage is a package `voxemoset/stages/<name>/` (its class in `stage.py`)
holding everything only that stage uses, and it imports no other stage; what more than one part uses
lives in a shared layer that never imports a stage.

- `stages/<name>/`  images, captions, references, speech, gates, dataset; `stages/__init__.py` lists them, each
                    declares its `inputs` and `chain.py` runs them as a graph (independent ones side by side)
- `models/`         every model adapter, behind one Protocol per role (`models/protocols.py`: Captioner,
                    Synthesizer, EmotionScorer, QualityScorer, Transcriber); tiny test models in `models/tiny/`
- `corpora/`        one module per source corpus (EmoSet, CREMA-D, RAVDESS, MEAD, SpokenCOCO, Flickr8kAudio) holding
                    all of its facts, and the one dispatch (`corpora/__init__.py`); `corpora/export/` writes the
                    human-read ones in the published layout (`voxemoset corpus`)
- `store/`          the runner and all it writes: only the runner writes under `<out>/stages/<name>/`, and only
                    `store/` reads there (`store/upstream.py` hands a stage its inputs, `store/reading.py` the rest)
- `preflight/`      `voxemoset check`: config, disk, model files and weights, before anything runs
- `hub/`            all the Hub sees: the published row format (features), Hub-sized shards and their names, a
                    card's Hub header, the upload and its command
- `audio.py`        load, resample to 16 kHz, FLAC, signal checks, dBFS, the named sample rates;  `images.py`:
                    check and decode image bytes once (the images stage and the corpus writer)
- `seeds.py`        the one `derive_seed(*parts)`;  `rows.py`: typed columns that travel between stages
- `config.py`       every setting (a leaf: imports no domain package; machinery in `settings.py`);
                    speed-only settings are marked there once and key no output
- `report/`, `train/`, `fixtures/`, `demo.py`, `cli.py`: what users run on top
- Prefect lives only in `flows/`, and only `cli.py` imports `flows`.

`tests/test_layout.py` enforces the import rules and module sizes.
"""

__version__ = "0.1.0"
