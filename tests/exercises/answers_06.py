"""Plausible wrong answers to notebook 06's graded code exercises (run by tests/test_exercise_answers.py)."""

WRONG = {
    "ex06_1_solution": {
        "averages over every class, absent ones included": '''def mean_iou(M):
    M = M.double()
    tp = M.diag()
    union = M.sum(0) + M.sum(1) - tp
    return float((tp / union.clamp(min=1)).mean())''',
        "forgets to subtract the true positives from the union": '''def mean_iou(M):
    M = M.double()
    tp = M.diag()
    union = M.sum(0) + M.sum(1)
    present = union > 0
    return float((tp[present] / union[present]).mean())''',
        "recall (divides by the row sums)": '''def mean_iou(M):
    M = M.double()
    tp, rows = M.diag(), M.sum(1)
    present = rows > 0
    return float((tp[present] / rows[present]).mean())''',
        "pixel accuracy": '''def mean_iou(M):
    M = M.double()
    return float(M.diag().sum() / M.sum())''',
        "counts only classes present in the truth": '''def mean_iou(M):
    M = M.double()
    tp = M.diag()
    union = M.sum(0) + M.sum(1) - tp
    present = M.sum(1) > 0
    return float((tp[present] / union[present]).mean())''',
        "frequency-weighted IoU": '''def mean_iou(M):
    M = M.double()
    tp = M.diag()
    union = M.sum(0) + M.sum(1) - tp
    present = union > 0
    w = M.sum(1)[present] / M.sum()
    return float((w * tp[present] / union[present]).sum())''',
        "integer division": '''def mean_iou(M):
    tp = M.diag()
    union = M.sum(0) + M.sum(1) - tp
    present = union > 0
    return float((tp[present] // union[present]).double().mean())''',
    },
    "ex06_2_solution": {
        "counts the bases D (C x r) as parameters": '''def context_params(C, r):
    return {"pool": C * C + C, "attention": 4 * C * C + 6 * C, "hamburger": 3 * C * C + 3 * C + C * r}''',
        "attention without its BatchNorm": '''def context_params(C, r):
    return {"pool": C * C + C, "attention": 4 * C * C + 4 * C, "hamburger": 3 * C * C + 3 * C}''',
        "attention with q, k, v only (no output projection)": '''def context_params(C, r):
    return {"pool": C * C + C, "attention": 3 * C * C + 5 * C, "hamburger": 3 * C * C + 3 * C}''',
        "a bias on every bread conv of the Hamburger": '''def context_params(C, r):
    return {"pool": C * C + C, "attention": 4 * C * C + 6 * C, "hamburger": 3 * C * C + 5 * C}''',
        "pooling's projection without its bias": '''def context_params(C, r):
    return {"pool": C * C, "attention": 4 * C * C + 6 * C, "hamburger": 3 * C * C + 3 * C}''',
        "SAGAN's reduced query and key (C -> C/8)": '''def context_params(C, r):
    return {"pool": C * C + C, "attention": 2 * C * (C // 8) + 2 * (C // 8) + 2 * C * C + 4 * C,
            "hamburger": 3 * C * C + 3 * C}''',
        "builds the modules and counts (no formula)": '''import hamlib
from hamlib.context import PoolContext
from hamlib.seg.model import count_params
def context_params(C, r):
    return {"pool": count_params(PoolContext(C)), "attention": count_params(hamlib.SelfAttention2d(C, norm="bn")),
            "hamburger": count_params(hamlib.Hamburger(C, ham="nmf", version="v2", rank=r))}''',
    },
    "ex06_3_solution": {
        "forgets the 1/N of the mean": '''def pool_reads(W, N):
    return float(torch.linalg.matrix_norm(W))''',
        "the spectral norm instead of the Frobenius norm": '''def pool_reads(W, N):
    return float(torch.linalg.matrix_norm(W, ord=2) / N)''',
        "divides by N - 1 (the other cells)": '''def pool_reads(W, N):
    return float(torch.linalg.matrix_norm(W) / (N - 1))''',
        "the squared Frobenius norm": '''def pool_reads(W, N):
    return float(torch.linalg.matrix_norm(W) ** 2 / N)''',
        "includes the identity of the residual (the j = i term)": '''def pool_reads(W, N):
    return float(torch.linalg.matrix_norm(W + torch.eye(W.shape[0], dtype=W.dtype)) / N)''',
        "returns a tensor, not a float": '''def pool_reads(W, N):
    return torch.linalg.matrix_norm(W) / N''',
        "divides by sqrt(N)": '''def pool_reads(W, N):
    return float(torch.linalg.matrix_norm(W) / N ** 0.5)''',
    },
    "ex06_4_solution": {
        "population std (statistics.pstdev)": '''import statistics
def call(a, b, sa, sb):
    d = statistics.fmean(a) - statistics.fmean(b)
    if abs(d) <= statistics.pstdev(a) + statistics.pstdev(b):
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
        "notebook 07's rule: twice the standard error of the difference": '''import math, statistics
def call(a, b, sa, sb):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    d = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(sd(a) ** 2 / len(a) + sd(b) ** 2 / len(b))
    if abs(d) <= 2 * se:
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
        "a tie only strictly inside the spread (< instead of <=)": '''import statistics
def call(a, b, sa, sb):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    d = statistics.fmean(a) - statistics.fmean(b)
    if abs(d) < sd(a) + sd(b):
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
        "the larger spread instead of the sum": '''import statistics
def call(a, b, sa, sb):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    d = statistics.fmean(a) - statistics.fmean(b)
    if abs(d) <= max(sd(a), sd(b)):
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
        "the spreads added in quadrature": '''import math, statistics
def call(a, b, sa, sb):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    d = statistics.fmean(a) - statistics.fmean(b)
    if abs(d) <= math.hypot(sd(a), sd(b)):
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
        "signed difference (b ahead is always a tie)": '''import statistics
def call(a, b, sa, sb):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    d = statistics.fmean(a) - statistics.fmean(b)
    if d <= sd(a) + sd(b):
        return "tie"
    return f"{sa} > {sb}"''',
        "medians instead of means": '''import statistics
def call(a, b, sa, sb):
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    d = statistics.median(a) - statistics.median(b)
    if abs(d) <= sd(a) + sd(b):
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
        "fails on a single seed (stdev of one value)": '''import statistics
def call(a, b, sa, sb):
    try:
        s = statistics.stdev(a) + statistics.stdev(b)
    except statistics.StatisticsError:
        s = float("inf")
    d = statistics.fmean(a) - statistics.fmean(b)
    if abs(d) <= s:
        return "tie"
    return f"{sa} > {sb}" if d > 0 else f"{sb} > {sa}"''',
    },
}
