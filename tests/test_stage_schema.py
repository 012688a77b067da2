"""A stage declares its rows' schema and the runner checks each shard against it on write: a row that does not fit
is one error naming the stage and the column, and nothing of that shard is published."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.builders import make_config
from voxemoset.stages import BUILD_CHAIN, get_stage
from voxemoset.stages.images import ImagesStage
from voxemoset.store.runner import Plan, ShardJob, ShardOutput, StageBase, list_shards, run_stage, stage_dir
from voxemoset.store.upstream import each_shard


class IdsStage(StageBase):
    """Reads the images stage shard by shard and writes what `rows` makes of its image ids."""

    name = "ids"
    version = "1"
    inputs = ("images",)
    schema = pa.schema([("image_id", pa.string()), ("n", pa.int32())])

    def __init__(self, rows):
        self.rows = rows

    def plan(self, config, upstream) -> Plan:
        return Plan(each_shard(self, upstream, "images", {}, None))

    def process(self, job: ShardJob, model, config) -> ShardOutput:
        ids = pq.read_table(job.inputs, columns=["image_id"]).column("image_id").to_pylist()
        return ShardOutput(self.rows(ids))


@pytest.fixture(scope="module")
def images(emoset_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("schema")
    cfg = make_config(out, emoset_root, images={"shard_size": 20})
    run_stage(ImagesStage(), cfg, out)
    return out, cfg


def test_rows_that_fit_are_written(images):
    out, cfg = images
    good = IdsStage(lambda ids: pa.table({"image_id": ids, "n": pa.array(range(len(ids)), pa.int32())}))
    assert run_stage(good, cfg, out)["rows"] > 0
    for shard in list_shards(stage_dir(out, "ids")):
        assert pq.read_schema(shard).remove_metadata().equals(IdsStage.schema)


@pytest.mark.parametrize(
    "rows, message",
    [
        (lambda ids: pa.table({"image_id": ids, "n": pa.array(range(len(ids)), pa.int64())}),
         "stage ids wrote column 'n' as int64, not its declared int32"),
        (lambda ids: pa.table({"image_id": ids}), "stage ids wrote a shard without its column 'n'"),
        (lambda ids: pa.table({"image_id": ids, "n": pa.array([0] * len(ids), pa.int32()), "x": [1] * len(ids)}),
         "stage ids wrote columns its schema does not declare: ['x']"),
    ],
)  # fmt: skip
def test_a_row_that_does_not_fit_is_one_error_naming_stage_and_column(images, tmp_path, rows, message):
    out, cfg = images
    folder = stage_dir(out, "ids")
    before = {p.name for p in list_shards(folder)} if folder.exists() else set()
    with pytest.raises(Exception) as e:
        run_stage(IdsStage(rows), cfg, out, force=True)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert {p.name for p in list_shards(folder)} <= before  # nothing of the failing shards published


def test_every_stage_of_the_chain_declares_its_inputs():
    for name in BUILD_CHAIN:
        stage = get_stage(name)
        assert all(i in BUILD_CHAIN[: BUILD_CHAIN.index(name)] for i in stage.inputs), name
