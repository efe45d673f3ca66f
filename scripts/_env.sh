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
    # On this machine kind (CPU only) torch is held to the CPU wheel by a constraint, so that pip never
    # resolves a CUDA build; pyproject.toml itself asks only for torch>=2.4. FGDM_TORCH overrides it.
    constraints="$(mktemp)"
    echo "torch==${FGDM_TORCH:-2.13.0}" > "$constraints"
    "$VENV/bin/python" -m pip install -q -c "$constraints" -e "$ROOT[dev]"
    rm -f "$constraints"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
