# voxemoset on a CUDA machine: the full chain with its GPU extras (vLLM, training, Ray).
# Weights are not baked in: mount them at /models (see README: Models), data at /data, output at /runs.
#   docker build -t voxemoset .
#   docker run --gpus all -v /srv/models:/models -v /srv/data:/data -v /srv/runs:/runs voxemoset build -c /data/config.yaml
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/models/hf \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

# Python 3.11 (the version the pins are made for) plus the system tools the chain calls.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ffmpeg espeak-ng sox \
    && rm -rf /var/lib/apt/lists/*

RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY voxemoset ./voxemoset
COPY flows ./flows
COPY prompts ./prompts
COPY manifests ./manifests
COPY configs ./configs
# The package is installed, not linked: its data folders are found here (voxemoset/resources.py).
ENV VOXEMOSET_MANIFESTS=/app/manifests VOXEMOSET_PROMPTS=/app/prompts VOXEMOSET_CONFIGS=/app/configs

# The CPU pins of constraints.txt hold everything but the torch family, which vLLM pins for CUDA.
RUN grep -vE '^(torch|torchvision|torchaudio|triton|nvidia-)' constraints.txt > /tmp/constraints-gpu.txt \
    && pip install -c /tmp/constraints-gpu.txt ".[gpu]" \
    && rm /tmp/constraints-gpu.txt

RUN useradd --create-home --uid 1000 voxemoset && mkdir -p /models /data /runs && chown 1000:1000 /runs
USER 1000:1000
VOLUME ["/models", "/data", "/runs"]
WORKDIR /runs
ENTRYPOINT ["voxemoset"]
CMD ["--help"]
