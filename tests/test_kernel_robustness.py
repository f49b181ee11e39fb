"""A trained notebook claim must not depend on the CPU's floating-point kernels.

Notebook 05 checks (seeds 0, 1, 2) that NMF with the one-step-bases gradient learns the marker task (median of
the seeds >= 0.7; from PyTorch's initialisation, the block's default, some seeds learn late) and that a network
without context cannot (< 0.5). Here the same runs (150 iterations) train in a subprocess with an older
instruction set emulated: oneDNN convolutions limited to
SSE4.1, ATen's own vectorised kernels to the scalar baseline, MKL on its "compatible" code path.
Every kernel rounds differently from the default AVX2/AVX-512 path, as on another CI machine.

Its limits: two of the marker cell's six claims; only ATen's setting is asserted to
take effect (oneDNN's shows with ONEDNN_VERBOSE=1, MKL's only in changed values). The other
trained claims (the segmentation gaps now in notebook 06, 01, 05, 07) were checked once over 9-53 runs,
seeds and kernel sets (closing note of issue 12); a test of them would take minutes.
"""
import json
import os
import statistics
import subprocess
import sys

OLD_CPU = {"ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
           "OMP_NUM_THREADS": "1"}

SCRIPT = """
import json, statistics, torch
from notebooks.course import marker
torch.set_num_threads(1)
acc = {c: [marker.train_marker(marker.MarkerConfig(context=c, seed=s, iters=150))["final_accuracy"] for s in (0, 1, 2)]
       for c in ("one-step-bases", "none")}
print(json.dumps(dict(capability=torch.backends.cpu.get_cpu_capability(), **acc)))
"""


def test_marker_claims_hold_with_older_cpu_kernels():
    env = {**os.environ, **OLD_CPU}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["capability"] == "DEFAULT", r  # the emulation took effect
    assert statistics.median(r["one-step-bases"]) >= 0.7, r
    assert max(r["none"]) < 0.5, r
