"""`python -m experiments.eval_bases`: does one fixed draw of evaluation bases cost mIoU?

    python -m experiments.eval_bases --heads nmf_bptt --seeds 0,1,2 --draws 4

For each shipped legend2 HamNet checkpoint of the given heads and seeds: the validation mIoU (the
fixed re-check set, `course.checkpoints.eval_set`) with `draws` different fixed evaluation-bases
draws (eval seeds 0 .. draws-1; hamlib's default is 0), and with fresh random bases at every forward
(the reference's behaviour, BatchNorm still in evaluation mode). Prints one line per checkpoint and
returns the rows.
"""

import argparse
import sys

import torch

from hamlib.md import MatrixDecomposition2D, random_bases
from hamlib.seg.metrics import evaluate
from notebooks.course import checkpoints as ck


def measure(rel, draws=4, fresh_runs=2):
    blob, rec = ck.read_verified(rel)
    cfg = ck.config_from_dict(blob["config"])
    model = ck.hamnet(cfg, blob["state_dict"])
    loader = torch.utils.data.DataLoader(ck.eval_set(cfg), batch_size=25)
    hams = [m for m in model.modules() if isinstance(m, MatrixDecomposition2D)]
    if not hams:
        raise ValueError(f"{rel} has no matrix-decomposition module")
    fixed = []
    for seed in range(draws):
        for m in hams:
            g = torch.Generator().manual_seed(seed)
            m.eval_bases.copy_(random_bases(m.kind, tuple(m.eval_bases.shape), generator=g))
        fixed.append(evaluate(model, loader, cfg.model.num_classes, "cpu")["miou"])
    fresh = []
    for run in range(fresh_runs):
        torch.manual_seed(100 + run)
        for m in hams:   # the instance attribute shadows the method: fresh bases per forward
            m._initial_bases = lambda X, m=m: random_bases(m.kind, (X.shape[0], X.shape[1], m.rank)).to(X.dtype)
        fresh.append(evaluate(model, loader, cfg.model.num_classes, "cpu")["miou"])
        for m in hams:
            del m._initial_bases
    return dict(rel=rel, stored=rec["val"]["stored"]["miou"], fixed=fixed, fresh=fresh)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m experiments.eval_bases", description=__doc__.split("\n\n")[0])
    p.add_argument("--heads", default="nmf_bptt")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--draws", type=int, default=4)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for h in a.heads.split(","):
        for s in a.seeds.split(","):
            r = measure(f"legend2/{h}_s{int(s)}.pt", a.draws)
            rows.append(r)
            sys.stdout.write(f"{r['rel']}: stored {r['stored']:.3f} | fixed draws "
                             + " ".join(f"{v:.3f}" for v in r["fixed"]) + f" (range {max(r['fixed']) - min(r['fixed']):.3f})"
                             + " | fresh per forward " + " ".join(f"{v:.3f}" for v in r["fresh"]) + "\n")
    return rows


if __name__ == "__main__":
    main()
