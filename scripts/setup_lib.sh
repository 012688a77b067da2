# Sourced by the setup scripts.
# make_venv builds a missing environment after checking the disk: each one is 7-8 GB installed, and a full disk
# would fail every pip retry with ENOSPC, so it says so once, before any download.
# pip_install: each environment pulls ~3 GB of wheels (torch and its CUDA libraries) over a network that sometimes
# cuts a connection mid-file: pip resumes a cut download (PIP_RESUME_RETRIES; older pips ignore it), and a failed
# install is tried again whole, up to three times, before the script gives up.
export PIP_RESUME_RETRIES=${PIP_RESUME_RETRIES:-20}

pip_install() {  # pip_install PYTHON PIP_INSTALL_ARGS...
    local python=$1 attempt
    shift
    for attempt in 1 2 3; do
        "$python" -m pip install "$@" && return 0
        ((attempt < 3)) && echo "pip install failed (attempt $attempt of 3); trying again in 20 s" >&2 && sleep 20
    done
    echo "pip install failed 3 times: $*" >&2
    return 1
}

make_venv() {  # make_venv VENV_DIR GB: create VENV_DIR unless it exists; one error line if the disk has under GB free
    local dir=$1 gb=$2 free mount
    [ -x "$dir/bin/python" ] && return 0
    read -r free mount < <(df -Pk . | awk 'NR == 2 {print int($4 / 1048576), $6}')
    if ((free < gb)); then
        echo "error: building $dir needs about $gb GB of free disk (torch and its CUDA libraries); $mount has $free GB" >&2
        exit 1
    fi
    "$(command -v python3.11 || command -v python3)" -m venv "$dir"
}
