"""Which CPU a figure came from: its model name and the instruction sets that change numeric kernels.

ONNX Runtime and the BLAS libraries pick their kernels by instruction set (AVX2, AVX-512, VNNI, AMX), and
integer kernels in particular do not give the same results on all of them. Benchmarks print this line
beside their figures, and the encoder agreement test names it when it fails.
"""

from __future__ import annotations

import platform
from functools import lru_cache
from pathlib import Path

# The flags that select other matrix kernels, in the order they are reported.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_info() -> dict[str, object]:
    """``{"model": str, "isa": [flags...], "cores": int}`` read from /proc/cpuinfo (Linux), else platform."""
    import os

    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and value.strip():
                model = value.strip()
            elif key in ("flags", "Features"):
                flags = set(value.split())
            if model and flags:
                break
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags], "cores": os.cpu_count() or 1}


def cpu_summary() -> str:
    """One line: ``AMD EPYC (avx2 fma avx512f avx512_vnni; 2 cores)``."""
    info = cpu_info()
    isa = " ".join(info["isa"]) or "no AVX2"  # type: ignore[arg-type]
    return f"{info['model']} ({isa}; {info['cores']} cores)"
