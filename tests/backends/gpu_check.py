"""One command for a GPU machine: the cupy backend's tests, then the GPU benchmark.

    python tests/backends/gpu_check.py            # tests + benchmark --quick
    python tests/backends/gpu_check.py --tests    # tests only
    python tests/backends/gpu_check.py --bench    # benchmark only (--quick)

Prints the CuPy / CUDA / device versions first and whether the backend
loads (and if not, why).  The CPU stand-in half of ``test_cupy.py`` is
skipped here (``FUNCNET_CUPY_STANDIN=0``): CI runs it, and GPU time is
scarce.  Every kernel result is checked against the graph's types
(``FUNCNET_CUPY_CHECK=1``).  Exit status: 0 when everything that ran passed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def describe() -> bool:
    """Print the GPU stack; True if the cupy backend loads."""
    sys.path.insert(0, str(ROOT))
    try:
        import cupy

        rt = cupy.cuda.runtime
        props = rt.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"cupy {cupy.__version__}, CUDA runtime {rt.runtimeGetVersion()}, "
              f"driver {rt.driverGetVersion()}, device 0: {name} "
              f"(compute capability {props['major']}.{props['minor']})")
    except Exception as e:  # the backend's own message below says what to do
        print(f"cupy: {type(e).__name__}: {e}")
    import funcnet as fn

    try:
        fn.backends.load("cupy")
    except fn.backends.BackendUnavailable as e:
        print(f"the cupy backend is NOT usable: {e}")
        return False
    print("the cupy backend loads")
    return True


def run(cmd: list[str], env: dict) -> int:
    print(f"\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"(exit {rc}, {time.perf_counter() - t0:.0f} s)", flush=True)
    return rc


def main(argv: list[str]) -> int:
    want_tests = "--bench" not in argv
    want_bench = "--tests" not in argv
    env = dict(os.environ, FUNCNET_CUPY_STANDIN="0", FUNCNET_CUPY_CHECK="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    usable = describe()
    rc = 0
    if want_tests:
        rc |= run([sys.executable, "-m", "pytest", "-q", "-rs", "--tb=short", "-p",
                   "no:cacheprovider", "tests/backends/test_cupy.py"], env)
    if want_bench and usable:
        env.pop("FUNCNET_CUPY_CHECK")  # time the backend as users run it
        rc |= run([sys.executable, "benchmarks/bench_gpu.py", "--quick"], env)
    return 1 if rc or not usable else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
