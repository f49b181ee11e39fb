"""`python -m experiments.bench`: the blocks side by side (the paper's efficiency table).

    python -m experiments.bench --cases floor,nmf,cd,vq,nmf-K24,attention --repeats 5
    python -m experiments.bench --compile          # eager vs torch.compile (+ CUDA graphs on a GPU)
    python -m experiments.bench --mixers --lengths 256,1024,4096,16384   # notebook 09's token mixers vs N

The cases, what is measured and how: `notebooks/course/efficiency.py` (this file is the
command line only). `main` returns the report: a header line naming shape, device, torch and
threads, then the Markdown table. The measured tables are in experiments/RESULTS.md.
"""

import argparse
import sys

import torch

from notebooks.course import efficiency
from hamlib.runtime import pick_device


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", type=int, nargs=4, default=[1, 512, 128, 128], metavar=("B", "C", "H", "W"))
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--cases", default="floor,nmf,cd,vq,nmf-K24,attention",
                   help="comma-separated: floor, nmf, cd, vq, nmf-K<k>, nmf-bptt, nmf-bases, nmf-implicit, nmf-ftz, "
                        "attention, ham-nmf")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--no-train", action="store_true", help="inference only")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile(module) (and mode='reduce-overhead' on CUDA) beside eager")
    p.add_argument("--mixers", action="store_true",
                   help="instead: notebook 09's token mixers (SDPA, linear attention, NMF/CD/VQ Hamburgers, mean) on "
                        "(1, N, 64) against the length N, on the CPU (course.sequences.cost_vs_length)")
    p.add_argument("--lengths", default="256,1024,4096,16384", help="with --mixers: the lengths N")
    a = p.parse_args(argv)
    if a.mixers:
        return mixers_report([int(n) for n in a.lengths.split(",")], a.repeats)
    device = pick_device(a.device)
    rows = efficiency.run(tuple(a.shape), a.rank, a.steps, a.cases.split(","), a.repeats, device=device,
                          train=not a.no_train, compiled=a.compile)
    head = (f"shape {tuple(a.shape)}, r={a.rank}, K={a.steps}, device {device}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, median of {a.repeats}")
    if a.compile:
        head += ", compiled = torch.compile(module) without fullgraph"
    return head + "\n\n" + efficiency.markdown(rows)


def mixers_report(lengths, repeats):
    from notebooks.course import sequences
    if not lengths or min(lengths) < 1:
        raise SystemExit(f"--lengths must be positive integers, got {lengths}")
    rows = sequences.cost_vs_length(lengths=tuple(lengths), repeats=repeats)
    cross = {n: sequences.crossover(rows, n) for n in dict.fromkeys(r["name"] for r in rows) if n != "attention"}
    head = (f"token mixers on (1, N, 64), r=16, d=128, K=6, inference, cpu, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, median of {repeats}")
    return (head + "\n\n" + sequences.cost_markdown(rows) + "\n\ncrossover N (faster than SDPA from there on): "
            + ", ".join(f"{n} {c}" for n, c in cross.items()))


if __name__ == "__main__":
    sys.stdout.write(main() + "\n")
