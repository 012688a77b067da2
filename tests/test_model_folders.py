"""Model folders are data: configs that name code are refused, corrupt weights are one clear error, and a
local Ray cluster listens on loopback only."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from voxemoset.errors import CorruptWeightsError, UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Tiny F5, Vocos, emotion2vec and Whisper folders, written once; tests copy before damaging them."""
    from voxemoset.models.tiny import write_emotion2vec, write_f5tts, write_vocos, write_whisper

    root = tmp_path_factory.mktemp("tiny")
    return {
        "f5": write_f5tts(root / "f5"),
        "vocos": write_vocos(root / "vocos"),
        "emotion2vec": write_emotion2vec(root / "emotion2vec"),
        "whisper": write_whisper(root / "whisper"),
    }


def _copy(tiny: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny[name], tmp_path / name))


def _damage(path: Path, how: str) -> None:
    """Truncate a checkpoint to half, or replace it with random bytes of the same length."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else os.urandom(len(data)))


class _RunsCommand:
    """Pickles to `os.system(command)`: what a malicious checkpoint would hold."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


# --- configs that name code -------------------------------------------------------------------------------


@pytest.mark.parametrize("section", ["feature_extractor", "backbone", "head"])
def test_vocos_config_naming_os_system_is_refused_without_running_it(tiny, tmp_path, section):
    from voxemoset.models.f5tts import F5Synthesizer

    vocos, marker = _copy(tiny, "vocos", tmp_path), tmp_path / "pwned"
    config = yaml.safe_load((vocos / "config.yaml").read_text())
    config[section] = {"class_path": "os.system", "init_args": {"command": f"touch {marker}"}}
    (vocos / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match=r"config\.yaml.*os\.system"):
        F5Synthesizer.from_files(tiny["f5"], vocos, nfe_step=2, device="cpu")
    assert not marker.exists()


def test_vocos_checkpoint_whose_pickle_runs_code_is_refused(tiny, tmp_path):
    from voxemoset.models.f5tts import F5Synthesizer

    vocos, marker = _copy(tiny, "vocos", tmp_path), tmp_path / "pwned"
    (vocos / "pytorch_model.bin").write_bytes(pickle.dumps({"x": _RunsCommand(f"touch {marker}")}))
    with pytest.raises(CorruptWeightsError, match="pytorch_model.bin"):
        F5Synthesizer.from_files(tiny["f5"], vocos, nfe_step=2, device="cpu")
    assert not marker.exists()


def test_vocos_init_args_that_do_not_fit_are_a_user_error(tiny, tmp_path):
    from voxemoset.models.vocos import load_vocos

    vocos = _copy(tiny, "vocos", tmp_path)
    config = yaml.safe_load((vocos / "config.yaml").read_text())
    config["head"]["init_args"]["nonsense"] = 1
    (vocos / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(UserError, match="head.init_args"):
        load_vocos(vocos)


def test_f5_model_yaml_with_python_tags_is_refused_without_running_them(tiny, tmp_path):
    from voxemoset.models.f5tts import F5Synthesizer

    f5, marker = _copy(tiny, "f5", tmp_path), tmp_path / "pwned"
    text = (f5 / "model.yaml").read_text()
    (f5 / "model.yaml").write_text(f"boom: !!python/object/apply:os.system ['touch {marker}']\n{text}")
    with pytest.raises(UserError, match="model.yaml"):
        F5Synthesizer.from_files(f5, tiny["vocos"], nfe_step=2, device="cpu")
    assert not marker.exists()


def test_f5_arch_with_keys_dit_does_not_take_is_a_user_error(tiny, tmp_path):
    from voxemoset.models.f5tts import F5Synthesizer

    f5 = _copy(tiny, "f5", tmp_path)
    spec = yaml.safe_load((f5 / "model.yaml").read_text())
    spec["model"]["arch"]["_target_"] = "os.system"
    (f5 / "model.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(UserError, match="_target_"):
        F5Synthesizer.from_files(f5, tiny["vocos"], nfe_step=2, device="cpu")


def test_emotion2vec_config_asking_for_remote_code_is_refused_without_importing_it(tiny, tmp_path):
    from voxemoset.models.emotion2vec import Emotion2vecScorer

    e2v, marker = _copy(tiny, "emotion2vec", tmp_path), tmp_path / "pwned"
    (e2v / "model.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = yaml.safe_load((e2v / "config.yaml").read_text())
    config.update(trust_remote_code=True, remote_code=str(e2v / "model.py"))
    (e2v / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    with pytest.raises(UserError, match="remote_code"):
        Emotion2vecScorer(e2v)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("model", "Paraformer", "only Emotion2vec"),
        ("tokenizer", "SentencepiecesTokenizer", "only Emotion2vec"),
        ("model_conf", {"embed_dim": "${oc.env:HOME}"}, "interpolations"),
    ],
)
def test_emotion2vec_config_other_than_emotion2vec_is_refused(tiny, tmp_path, key, value, match):
    from voxemoset.models.emotion2vec import Emotion2vecScorer

    e2v = _copy(tiny, "emotion2vec", tmp_path)
    config = yaml.safe_load((e2v / "config.yaml").read_text())
    config[key] = {**config[key], **value} if isinstance(value, dict) else value
    (e2v / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    with pytest.raises(UserError, match=match):
        Emotion2vecScorer(e2v)


def test_whisper_folder_naming_code_or_another_model_is_refused(tiny, tmp_path):
    from voxemoset.models.whisper_asr import WhisperTranscriber

    whisper = _copy(tiny, "whisper", tmp_path)
    config = json.loads((whisper / "config.json").read_text())
    (whisper / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.Model"}}))
    with pytest.raises(UserError, match="auto_map"):
        WhisperTranscriber(str(whisper))
    (whisper / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(UserError, match="model_type 'bert'"):
        WhisperTranscriber(str(whisper))


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory) -> Path:
    from voxemoset.models.tiny import write_llava_onevision

    return write_llava_onevision(tmp_path_factory.mktemp("tiny") / "llava")


def test_captions_folder_whose_processor_names_code_is_refused_without_importing_it(tiny_llava, tmp_path):
    from voxemoset.config import CaptionsConfig
    from voxemoset.models.captioners.llava_transformers import TransformersCaptioner

    llava, marker = Path(shutil.copytree(tiny_llava, tmp_path / "llava")), tmp_path / "pwned"
    (llava / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Processor: pass\n")
    processor = json.loads((llava / "processor_config.json").read_text())
    processor["auto_map"] = {"AutoProcessor": "evil.Processor"}
    (llava / "processor_config.json").write_text(json.dumps(processor))
    with pytest.raises(UserError, match="auto_map"):
        TransformersCaptioner.load(llava, "Describe.", CaptionsConfig(device="cpu"), "tiny")
    assert not marker.exists()


# --- corrupt weights ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_f5_safetensors_names_the_file_and_the_download(tiny, tmp_path, how):
    from voxemoset.models.f5tts import F5Synthesizer

    f5 = _copy(tiny, "f5", tmp_path)
    _damage(f5 / "model.safetensors", how)
    with pytest.raises(CorruptWeightsError, match=r"F5-TTS.*model\.safetensors.*hf download SWivid/F5-TTS") as e:
        F5Synthesizer.from_files(f5, tiny["vocos"], nfe_step=2, device="cpu")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_f5_pt_checkpoint_names_the_file(tiny, tmp_path, how):
    import torch
    from safetensors.torch import load_file

    from voxemoset.models.f5tts import F5Synthesizer

    f5 = _copy(tiny, "f5", tmp_path)
    state = load_file(str(f5 / "model.safetensors"))
    (f5 / "model.safetensors").unlink()
    torch.save({"ema_model_state_dict": state}, f5 / "model_1000.pt")
    F5Synthesizer.from_files(f5, tiny["vocos"], nfe_step=2, device="cpu")  # the intact .pt loads
    _damage(f5 / "model_1000.pt", how)
    with pytest.raises(CorruptWeightsError, match=r"model_1000\.pt.*hf download"):
        F5Synthesizer.from_files(f5, tiny["vocos"], nfe_step=2, device="cpu")


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_vocos_weights_name_the_file_and_the_download(tiny, tmp_path, how):
    from voxemoset.models.f5tts import F5Synthesizer

    vocos = _copy(tiny, "vocos", tmp_path)
    _damage(vocos / "pytorch_model.bin", how)
    with pytest.raises(CorruptWeightsError, match=r"Vocos.*pytorch_model\.bin.*hf download charactr/vocos-mel-24khz"):
        F5Synthesizer.from_files(tiny["f5"], vocos, nfe_step=2, device="cpu")


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_emotion2vec_weights_name_the_file_and_the_download(tiny, tmp_path, how):
    from voxemoset.models.emotion2vec import Emotion2vecScorer

    e2v = _copy(tiny, "emotion2vec", tmp_path)
    _damage(e2v / "model.pt", how)
    with pytest.raises(CorruptWeightsError, match=r"emotion2vec.*model\.pt.*hf download emotion2vec/"):
        Emotion2vecScorer(e2v)


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_whisper_weights_name_the_file_and_the_download(tiny, tmp_path, how):
    from voxemoset.models.whisper_asr import WhisperTranscriber

    whisper = _copy(tiny, "whisper", tmp_path)
    _damage(whisper / "model.safetensors", how)
    with pytest.raises(CorruptWeightsError, match=r"Whisper.*model\.safetensors.*hf download openai/whisper"):
        WhisperTranscriber(str(whisper))


def test_corrupt_captions_weights_name_the_file_and_the_download(tiny_llava, tmp_path):
    from voxemoset.config import CaptionsConfig
    from voxemoset.models.captioners.llava_transformers import TransformersCaptioner

    llava = Path(shutil.copytree(tiny_llava, tmp_path / "llava"))
    _damage(llava / "model.safetensors", "truncated")
    with pytest.raises(CorruptWeightsError, match=r"LLaVA-OneVision.*model\.safetensors.*hf download llava-hf/"):
        TransformersCaptioner.load(llava, "Describe.", CaptionsConfig(device="cpu"), "tiny")


def test_a_corrupt_hub_cache_snapshot_is_fetched_again_by_its_repo_id(tmp_path):
    from voxemoset.models.resolve import redownload_command

    snapshot = tmp_path / "hub" / "models--openai--whisper-large-v3-turbo" / "snapshots" / "abc123"
    assert redownload_command(snapshot, "x/y") == "hf download openai/whisper-large-v3-turbo --force-download"
    assert redownload_command(tmp_path / "w", "x/y") == f"hf download x/y --local-dir {tmp_path / 'w'}"


def test_intact_tiny_models_still_load_through_the_checked_paths(tiny):
    import numpy as np

    from voxemoset.models.emotion2vec import Emotion2vecScorer
    from voxemoset.models.whisper_asr import WhisperTranscriber

    scores = Emotion2vecScorer(tiny["emotion2vec"]).score([np.zeros(16000, np.float32) + 0.01])
    assert len(scores) == 1 and 0 < sum(scores[0].values()) <= 1
    assert isinstance(WhisperTranscriber(str(tiny["whisper"]), max_new_tokens=4).transcribe([np.zeros(16000)])[0], str)


# --- Ray ------------------------------------------------------------------------------------------------------

# Started the way a flow run starts it (make_task_runner, entered, Ray not yet imported: prefect_ray imports
# it lazily), in a child process so the cluster and Ray's module state never leak into this test session;
# prints every TCP listener of the Ray processes.
_RAY_PROBE = """
import json, psutil
from flows.runners import make_task_runner
from voxemoset.config import OrchestrationConfig

with make_task_runner(OrchestrationConfig(task_runner="ray", ray_num_cpus=1)):
    import ray

    assert ray.get(ray.remote(lambda: 1).remote()) == 1  # a worker is up and listening too
    me = psutil.Process()
    listeners = []
    for p in [me, *me.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="inet")
        except psutil.Error:
            continue
        listeners += [[p.name(), c.laddr.ip, c.laddr.port] for c in conns if c.status == psutil.CONN_LISTEN]
print("LISTENERS " + json.dumps(listeners))
"""


def test_local_ray_cluster_listens_on_loopback_only():
    import ipaddress

    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as ray_tmp:  # Ray's socket paths must stay short
        env = {**os.environ, "RAY_TMPDIR": ray_tmp, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", _RAY_PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("LISTENERS "))
    listeners = json.loads(line.removeprefix("LISTENERS "))
    names = {name for name, _, _ in listeners}
    assert {"gcs_server", "raylet"} <= names, listeners
    open_to_network = []
    for name, ip, port in listeners:
        addr = ipaddress.ip_address(ip)
        addr = getattr(addr, "ipv4_mapped", None) or addr  # ::ffff:127.0.0.1 is IPv4 loopback
        if not addr.is_loopback:
            open_to_network.append((name, ip, port))
    assert not open_to_network, open_to_network
