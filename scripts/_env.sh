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
    # torch is pinned by a constraint (pyproject.toml itself asks only for torch>=2.8; FGDM_TORCH overrides the
    # pin). The pin alone does not choose the CPU build: on fgdm's CPU-only development machines pip finds that
    # version's CPU wheel on disk; elsewhere a CPU build installed in the venv beforehand satisfies it (README).
    constraints="$(mktemp)"
    echo "torch==${FGDM_TORCH:-2.13.0}" > "$constraints"
    "$VENV/bin/python" -m pip install -q -c "$constraints" -e "$ROOT[dev]"
    rm -f "$constraints"
    touch "$stamp"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
