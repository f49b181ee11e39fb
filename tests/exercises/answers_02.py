"""Plausible wrong answers to notebook 02's graded code exercises (run by tests/test_exercise_answers.py)."""

_HEAD = '''def auxiliary_bound(X, C, D, D_prev):
    CtC = C.T @ C
    F_prev = 0.5 * (X - D_prev @ C.T).pow(2).sum()
    grad = D_prev @ CtC - X @ C
    K = (D_prev @ CtC) / D_prev
    step = D - D_prev
'''

_MU = '''def masked_mu_step(X, M, D, C, eps=1e-6):
'''

_KKT = '''def kkt_violations(X, D, C):
    grad_C = C @ (D.T @ D) - X.T @ D
    grad_D = D @ (C.T @ C) - X @ C
    s = max(float((X.T @ D).abs().max()), float((X @ C).abs().max()))
'''

WRONG = {
    "ex02_1_solution": {
        "drops the 1/2 of the quadratic term": _HEAD + "    return F_prev + (grad * step).sum() + (K * step.pow(2)).sum()",
        "returns F(D) itself": _HEAD + "    return 0.5 * (X - D @ C.T).pow(2).sum()",
        "K from D instead of D_prev": _HEAD + "    K = (D @ CtC) / D\n    return F_prev + (grad * step).sum() + 0.5 * (K * step.pow(2)).sum()",
        "K without the division by D_prev": _HEAD + "    return F_prev + (grad * step).sum() + 0.5 * ((D_prev @ CtC) * step.pow(2)).sum()",
        "the gradient's sign flipped": _HEAD + "    return F_prev - (grad * step).sum() + 0.5 * (K * step.pow(2)).sum()",
        "a Python float, not a tensor": _HEAD + "    return float(F_prev + (grad * step).sum() + 0.5 * (K * step.pow(2)).sum())",
    },
    "ex02_2_solution": {
        "masks only the numerator (NMF on the zero-filled matrix)": _MU + '''    MX = M * X
    C = C * (MX.T @ D) / (C @ (D.T @ D) + eps)
    D = D * (MX @ C) / (D @ (C.T @ C) + eps)
    return D, C''',
        "masks only the denominator": _MU + '''    C = C * (X.T @ D) / ((M * (D @ C.T)).T @ D + eps)
    D = D * (X @ C) / ((M * (D @ C.T)) @ C + eps)
    return D, C''',
        "the mask read the wrong way round": _MU + '''    M = 1 - M
    MX = M * X
    C = C * (MX.T @ D) / ((M * (D @ C.T)).T @ D + eps)
    D = D * (MX @ C) / ((M * (D @ C.T)) @ C + eps)
    return D, C''',
        "the bases step with the old C (simultaneous update)": _MU + '''    MX = M * X
    C_new = C * (MX.T @ D) / ((M * (D @ C.T)).T @ D + eps)
    D = D * (MX @ C) / ((M * (D @ C.T)) @ C + eps)
    return D, C_new''',
        "bases first, then coefficients": _MU + '''    MX = M * X
    D = D * (MX @ C) / ((M * (D @ C.T)) @ C + eps)
    C = C * (MX.T @ D) / ((M * (D @ C.T)).T @ D + eps)
    return D, C''',
        "no eps in the denominators": _MU + '''    MX = M * X
    C = C * (MX.T @ D) / ((M * (D @ C.T)).T @ D)
    D = D * (MX @ C) / ((M * (D @ C.T)) @ C)
    return D, C''',
        "one masked reconstruction for both steps": _MU + '''    MX = M * X
    R = M * (D @ C.T)
    C = C * (MX.T @ D) / (R.T @ D + eps)
    D = D * (MX @ C) / (R @ C + eps)
    return D, C''',
    },
    "ex02_3_solution": {
        "no normalisation by s": _KKT + '''    slackness = max(float((C * grad_C).abs().max()), float((D * grad_D).abs().max()))
    most_negative = [-float(g[f == 0].min()) for g, f in ((grad_C, C), (grad_D, D)) if (f == 0).any()]
    return slackness, max([0.0] + most_negative)''',
        "infeasibility over every entry, not only where the factor is 0": _KKT + '''    slackness = max(float((C * grad_C).abs().max()), float((D * grad_D).abs().max())) / s
    return slackness, max(0.0, -float(grad_C.min()), -float(grad_D.min())) / s''',
        "only C checked": _KKT + '''    slackness = float((C * grad_C).abs().max()) / s
    most_negative = [-float(grad_C[C == 0].min())] if (C == 0).any() else []
    return slackness, max([0.0] + most_negative) / s''',
        "the gradient's sign flipped": _KKT + '''    grad_C, grad_D = -grad_C, -grad_D
    slackness = max(float((C * grad_C).abs().max()), float((D * grad_D).abs().max())) / s
    most_negative = [-float(g[f == 0].min()) for g, f in ((grad_C, C), (grad_D, D)) if (f == 0).any()]
    return slackness, max([0.0] + most_negative) / s''',
        "s from X^T D only": _KKT + '''    s = float((X.T @ D).abs().max())
    slackness = max(float((C * grad_C).abs().max()), float((D * grad_D).abs().max())) / s
    most_negative = [-float(g[f == 0].min()) for g, f in ((grad_C, C), (grad_D, D)) if (f == 0).any()]
    return slackness, max([0.0] + most_negative) / s''',
        "slackness summed, not the largest entry": _KKT + '''    slackness = (float((C * grad_C).abs().sum()) + float((D * grad_D).abs().sum())) / s
    most_negative = [-float(g[f == 0].min()) for g, f in ((grad_C, C), (grad_D, D)) if (f == 0).any()]
    return slackness, max([0.0] + most_negative) / s''',
        "0-d tensors, not floats": _KKT + '''    slackness = torch.maximum((C * grad_C).abs().max(), (D * grad_D).abs().max()) / s
    most_negative = [-float(g[f == 0].min()) for g, f in ((grad_C, C), (grad_D, D)) if (f == 0).any()]
    return slackness, torch.tensor(max([0.0] + most_negative) / s, dtype=X.dtype)''',
    },
}
