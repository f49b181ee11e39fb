"""Plausible wrong answers to notebook 05's graded code exercises (run by tests/test_exercise_answers.py)."""


def _osb(loop, tracked, K="K - 1", eps="eps"):
    # one_step_bases_nmf with the no-gradient loop count, and what runs with gradient, varied
    return f'''def one_step_bases_nmf(X, D0, K, eps=1e-6):
    with torch.no_grad():
        D = D0
        Ct = torch.softmax(D.mT @ X, dim=1)
        for _ in range({K}):
{loop}
{tracked}
    return D @ Ct'''


_STEP = '''            Ct = Ct * (D.mT @ X) / (D.mT @ D @ Ct + {eps})
            D = D * (X @ Ct.mT) / (D @ (Ct @ Ct.mT) + {eps})'''
_COEF_FREE = "        Ct = Ct * (D.mT @ X) / (D.mT @ D @ Ct + {eps})"
_BASES = "    D = D * (X @ Ct.mT) / (D @ (Ct @ Ct.mT) + {eps})"
_FINAL = "    Ct = Ct * (D.mT @ X) / (D.mT @ D @ Ct + {eps})"

_SOLUTION_BODY = dict(loop=_STEP.format(eps="eps"),
                      tracked="\n".join([_COEF_FREE, _BASES, _FINAL]).format(eps="eps"))


def _predict(body):
    return f'''def predict_bptt_memory(K, N, K_a, M_a, K_b, M_b, N0):
{body}'''


WRONG = {
    "ex05_1_solution": {
        "the paper's one-step gradient (notebook 04's cell)": _osb(_STEP.format(eps="eps"), _FINAL.format(eps="eps"), K="K"),
        "off by one: K free steps, then a differentiated bases update and the final step": _osb(
            _STEP.format(eps="eps"), "\n".join([_BASES, _FINAL]).format(eps="eps"), K="K"),
        "the whole last step differentiated (grad=1: its coefficient update too)": _osb(
            _STEP.format(eps="eps"), "\n".join([_FINAL, _BASES, _FINAL]).format(eps="eps")),
        "BPTT: no torch.no_grad() at all": '''def one_step_bases_nmf(X, D0, K, eps=1e-6):
    D = D0
    Ct = torch.softmax(D.mT @ X, dim=1)
    for _ in range(K):
        Ct = Ct * (D.mT @ X) / (D.mT @ D @ Ct + eps)
        D = D * (X @ Ct.mT) / (D @ (Ct @ Ct.mT) + eps)
    Ct = Ct * (D.mT @ X) / (D.mT @ D @ Ct + eps)
    return D @ Ct''',
        "the bases update reads X.detach() (the gradient only through D^T X)": _osb(
            _STEP.format(eps="eps"), "\n".join([_COEF_FREE.format(eps="eps"),
                                                "    D = D * (X.detach() @ Ct.mT) / (D @ (Ct @ Ct.mT) + eps)",
                                                _FINAL.format(eps="eps")])),
        "the last step in the other order (bases before coefficients)": _osb(
            _STEP.format(eps="eps"), "\n".join([_BASES, _COEF_FREE.replace("        ", "    "), _FINAL]).format(eps="eps")),
        "omits epsilon": _osb(_STEP.format(eps="0"), "\n".join([_COEF_FREE, _BASES, _FINAL]).format(eps="0")),
    },
    "ex05_2_solution": {
        "memory proportional to K (the intercept forgotten)": _predict(
            "    return M_a * (K / K_a) * (N / N0)"),
        "N left out (memory depends on K only)": _predict(
            "    return M_a + (K - K_a) * (M_b - M_a) / (K_b - K_a)"),
        "quadratic in N, as attention's map": _predict(
            "    return (M_a + (K - K_a) * (M_b - M_a) / (K_b - K_a)) * (N / N0) ** 2"),
        "flat in K, as the one-step gradient": _predict(
            "    return M_a * N / N0"),
        "linear in log K (read off a log-K axis)": _predict(
            "    import math\n    per_log = (M_b - M_a) / (math.log2(K_b) - math.log2(K_a))\n"
            "    return (M_a + (math.log2(K) - math.log2(K_a)) * per_log) * N / N0"),
        "only the per-step part scales with N, the rest held fixed": _predict(
            "    per_step = (M_b - M_a) / (K_b - K_a)\n    return M_a + ((K - K_a) * per_step) * N / N0"),
    },
    "ex05_3_solution": {
        "the norm decides, not the spectral radius": '''def neumann_partial_sums(A, g, n):
    u, v, out = g.clone(), g.clone(), [g.clone()]
    for _ in range(n):
        v = A @ v
        u = u + v
        out.append(u)
    return torch.stack(out)


def neumann_converges(A):
    return bool(torch.linalg.matrix_norm(A, ord=2) < 1)''',
        "the terms instead of the partial sums": '''def neumann_partial_sums(A, g, n):
    v, out = g.clone(), [g.clone()]
    for _ in range(n):
        v = A @ v
        out.append(v)
    return torch.stack(out)


def neumann_converges(A):
    return bool(torch.linalg.eigvals(A).abs().max() < 1)''',
        "off by one: n terms instead of n + 1": '''def neumann_partial_sums(A, g, n):
    u, v, out = g.clone(), g.clone(), [g.clone()]
    for _ in range(n - 1):
        v = A @ v
        u = u + v
        out.append(u)
    return torch.stack(out)


def neumann_converges(A):
    return bool(torch.linalg.eigvals(A).abs().max() < 1)''',
        "radius <= 1 counted as converging": '''def neumann_partial_sums(A, g, n):
    u, v, out = g.clone(), g.clone(), [g.clone()]
    for _ in range(n):
        v = A @ v
        u = u + v
        out.append(u)
    return torch.stack(out)


def neumann_converges(A):
    return bool(torch.linalg.eigvals(A).abs().max() <= 1)''',
        "transposed: A^T applied": '''def neumann_partial_sums(A, g, n):
    u, v, out = g.clone(), g.clone(), [g.clone()]
    for _ in range(n):
        v = A.T @ v
        u = u + v
        out.append(u)
    return torch.stack(out)


def neumann_converges(A):
    return bool(torch.linalg.eigvals(A).abs().max() < 1)''',
        "the largest real part instead of the modulus": '''def neumann_partial_sums(A, g, n):
    u, v, out = g.clone(), g.clone(), [g.clone()]
    for _ in range(n):
        v = A @ v
        u = u + v
        out.append(u)
    return torch.stack(out)


def neumann_converges(A):
    return bool(torch.linalg.eigvals(A).real.max() < 1)''',
    },
}
