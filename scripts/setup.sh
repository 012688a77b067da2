#!/usr/bin/env bash
# Set up voxemoset on a fresh Debian/Ubuntu machine: system tools, .venv, the package with pinned deps.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_lib.sh

# ffmpeg decodes MEAD's m4a (and datasets' Audio via torchcodec); espeak-ng and sox make fixture speech;
# chromium opens the report's HTML page in a test; tmux is the real terminal of the quiet-output test.
need=()
for tool in ffmpeg espeak-ng sox chromium tmux; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

make_venv .venv 9
# constraints.txt pins what resolved together (torch 2.14.1 + torchvision 0.29.1 + torchaudio 2.11).
pip_install .venv/bin/python -q --upgrade pip
pip_install .venv/bin/python -q -c constraints.txt -e ".[dev,ray,train]"
echo "voxemoset is set up in .venv (run: .venv/bin/voxemoset --help)"
