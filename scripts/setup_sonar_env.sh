#!/usr/bin/env bash
# A separate environment for SONAR's speech encoder (scripts/encode_sonar.py): sonar-space 0.5 needs
# fairseq2 0.8.1, which pins torch 2.9.1 and transformers ~4.57, so it cannot share .venv (torch 2.14,
# transformers 5). The training run reads the embedding shards it writes; nothing else crosses over.
# Weights are not downloaded here: encode_sonar.py prints the command when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_lib.sh

# fairseq2n's audio decoder links against libsndfile.
if ! ldconfig -p 2>/dev/null | grep -q libsndfile; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq libsndfile1 >/dev/null
fi

make_venv .venv-sonar 10
pip_install .venv-sonar/bin/python -q --upgrade pip
# fairseq2n's wheels are built per torch version: keep torch at the one fairseq2 0.8.1 pins.
pip_install .venv-sonar/bin/python -q "torch==2.9.1" "fairseq2==0.8.1" "sonar-space==0.5.0" \
    pyarrow soundfile safetensors numpy
.venv-sonar/bin/python -c "import sonar, fairseq2; print('SONAR env ready: .venv-sonar (fairseq2', fairseq2.__version__ + ')')"
