#!/usr/bin/env bash
# Runs a command with AddressSanitizer on the code compiled while it runs: the project's fused C kernels (built
# with $CC) and torch.compile's CPU kernels (inductor builds them with $CXX). Both compilers become wrappers that
# add -fsanitize=address, and the sanitizer's runtime is preloaded into the command's processes. Python and
# PyTorch themselves are not instrumented, but their allocations get the sanitizer's guard zones, so a kernel
# that reads or writes outside a tensor is reported with its source line.
#
#   bash benchmarks/asan.sh OUT COMMAND...
#   bash benchmarks/asan.sh runs/asan fgdm train configs/synth.yaml --set data.path=DATA \
#       --set training.compile=true --set model.focal.kernel=torch --set training.max_steps=60
#
# OUT gets the reports (asan.PID; a run removes the last one's), caches of its own (so no kernel built without the
# sanitizer is reused; inductor's compilations take several times as long) and summary.txt: each fault once,
# with its kind, access and line.
# The command runs on, past each fault (recover mode). Exit status: the command's.
# See benchmarks/results/speed.md, *A wrong gradient in compiled CPU code, and the crash it caused*.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash benchmarks/asan.sh OUT COMMAND..." >&2
  exit 2
fi
out=$1
shift
for tool in gcc g++; do
  command -v "$tool" > /dev/null || { echo "asan.sh: $tool not found (install gcc and g++)" >&2; exit 1; }
done
runtime=$(readlink -f "$(gcc -print-file-name=libasan.so)")
cxxlib=$(readlink -f "$(g++ -print-file-name=libstdc++.so)")  # preloaded too, or the runtime misses C++ throws
if [ ! -f "$runtime" ]; then
  echo "asan.sh: gcc has no AddressSanitizer runtime (libasan.so; Debian: libasan8)" >&2
  exit 1
fi
mkdir -p "$out/bin"
out=$(cd "$out" && pwd)
rm -f "$out"/asan.*
for tool in gcc g++; do
  printf '#!/bin/sh\nexec %s -fsanitize=address -fno-omit-frame-pointer -fsanitize-recover=address "$@"\n' \
    "$(command -v "$tool")" > "$out/bin/$tool"
  chmod +x "$out/bin/$tool"
done
status=0
env LD_PRELOAD="$runtime $cxxlib" \
  ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0:halt_on_error=0:log_path=$out/asan" \
  CC="$out/bin/gcc" CXX="$out/bin/g++" FGDM_CACHE="$out/fgdm-cache" TORCHINDUCTOR_CACHE_DIR="$out/inductor-cache" \
  TORCHINDUCTOR_FX_GRAPH_CACHE=0 TORCHINDUCTOR_AUTOGRAD_CACHE=0 "$@" || status=$?
python3 - "$out" <<'EOF'
import re
import sys
from collections import Counter
from pathlib import Path

out = Path(sys.argv[1])
faults: Counter[tuple[str, str, str]] = Counter()
for report in sorted(out.glob("asan.*")):
    for block in report.read_text(errors="replace").split("==ERROR: AddressSanitizer: ")[1:]:
        kind = block.split(" on ", 1)[0].split("\n", 1)[0]
        access = re.search(r"^(READ|WRITE) of size \d+", block, re.M)
        # the first frame in source compiled here (a .c or .cpp file), else the first frame
        frames = re.findall(r"^\s+#\d+ 0x[0-9a-f]+ in (.+)$", block.split("\n\n", 1)[0], re.M)
        own = [f for f in frames if re.search(r"\.(c|cpp):\d+", f)]
        where = (own or frames or ["?"])[0]
        where = re.sub(r"^.* (\S+\.(?:c|cpp):\d+)$", r"\1", where)
        faults[(kind, access.group(0) if access else "", where.replace(str(out) + "/", ""))] += 1
lines = [f"{n:5d}  {kind}  {access}  {where}" for (kind, access, where), n in sorted(faults.items())]
text = "\n".join(lines) if lines else "no AddressSanitizer report"
(out / "summary.txt").write_text(text + "\n")
print(f"asan.sh: {sum(faults.values())} reports, {len(faults)} distinct (OUT/summary.txt):\n{text}")
EOF
exit "$status"
