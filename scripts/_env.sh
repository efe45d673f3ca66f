# Sourced by scripts/demo and scripts/test: creates .venv and installs fgdm on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FGDM_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.fgdm-installed"
if [ ! -x "$VENV/bin/python" ]; then
    echo "[fgdm] creating virtual environment in $VENV" >&2
    "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "[fgdm] installing fgdm and its dependencies (first run takes a few minutes)" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch is pinned in the same command so that pip never resolves a CUDA build.
    "$VENV/bin/python" -m pip install -q "torch==2.13.0" -e "$ROOT[dev]"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
