"""The one corpus dispatch: six modules with the same face, reached by name and kind, under `voxemoset/corpora/`."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from voxemoset.config import SourcesConfig
from voxemoset.corpora import (
    CORPORA,
    EMOTIONAL_SPEECH,
    HUMAN_READ,
    check_name,
    corpus_module,
    corpus_roots,
    load_split,
)
from voxemoset.errors import UserError

PACKAGE = Path(__file__).resolve().parents[1] / "voxemoset" / "corpora"


def test_every_corpus_is_one_module_with_the_same_face():
    assert set(CORPORA) == {"emoset", "cremad", "ravdess", "mead", "spokencoco", "flickr8k"}
    for name in CORPORA:
        module = corpus_module(name)
        assert Path(module.__file__) == PACKAGE / f"{name}.py"
        assert set(module.ROOTS) <= set(SourcesConfig.model_fields), name
        # check_tree and scan take the ROOTS folders, in that order.
        for fn in (module.check_tree, module.scan):
            assert len(inspect.signature(fn).parameters) == len(module.ROOTS), (name, fn.__name__)
        if CORPORA[name] == HUMAN_READ:
            assert len(inspect.signature(module.media_roots).parameters) == len(module.ROOTS)


def test_names_and_kinds_are_checked_with_one_error_listing_the_choices():
    with pytest.raises(UserError, match=r"unknown corpus 'iemocap'; expected one of emoset \| cremad"):
        check_name("iemocap")
    with pytest.raises(UserError, match=r"expected one of spokencoco \| flickr8k$"):
        corpus_module("cremad", HUMAN_READ)
    assert corpus_module("mead", EMOTIONAL_SPEECH).EMOBOX.corpus == "mead"
    assert len(load_split("ravdess")) > 0


def test_roots_come_from_the_config_in_reader_order(tmp_path):
    (tmp_path / "sc").mkdir(), (tmp_path / "coco").mkdir()
    sources = SourcesConfig(spokencoco=tmp_path / "sc", coco=tmp_path / "coco")
    assert corpus_roots("spokencoco", sources) == (tmp_path / "sc", tmp_path / "coco")
    assert corpus_module("spokencoco").media_roots(*corpus_roots("spokencoco", sources)) == (
        tmp_path / "coco",
        tmp_path / "sc",
    )
    with pytest.raises(UserError, match=r"sources\.flickr8k"):
        corpus_roots("flickr8k", sources)
