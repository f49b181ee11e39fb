"""Plausible wrong answers to notebook 03's graded code exercises (run by tests/test_exercise_answers.py)."""

_VQ = '''def vq_step(X, D, inv_t):
'''
_HARD = '''def hard_vq_step(X, D):
'''
_CD = '''def cd_macs(d, N, r, K):
'''

WRONG = {
    "ex03_1_solution": {
        "normalises over the r centroids again instead of over the N points": _VQ + '''    Xn = X / X.norm(dim=0, keepdim=True)
    Dn = D / D.norm(dim=0, keepdim=True)
    C = torch.softmax(inv_t * Xn.T @ Dn, dim=1)
    C = C / C.sum(dim=1, keepdim=True)
    return X @ C, C''',
        "raw dot products, no cosine": _VQ + '''    C = torch.softmax(inv_t * X.T @ D, dim=1)
    C = C / C.sum(dim=0, keepdim=True)
    return X @ C, C''',
        "softmax over the points (dim 0)": _VQ + '''    Xn = X / X.norm(dim=0, keepdim=True)
    Dn = D / D.norm(dim=0, keepdim=True)
    C = torch.softmax(inv_t * Xn.T @ Dn, dim=0)
    C = C / C.sum(dim=0, keepdim=True)
    return X @ C, C''',
        "no normalisation over the points": _VQ + '''    Xn = X / X.norm(dim=0, keepdim=True)
    Dn = D / D.norm(dim=0, keepdim=True)
    C = torch.softmax(inv_t * Xn.T @ Dn, dim=1)
    return X @ C, C''',
        "divides by t (a temperature, not an inverse one)": _VQ + '''    Xn = X / X.norm(dim=0, keepdim=True)
    Dn = D / D.norm(dim=0, keepdim=True)
    C = torch.softmax(Xn.T @ Dn / inv_t, dim=1)
    C = C / C.sum(dim=0, keepdim=True)
    return X @ C, C''',
        "centroids from the unit columns": _VQ + '''    Xn = X / X.norm(dim=0, keepdim=True)
    Dn = D / D.norm(dim=0, keepdim=True)
    C = torch.softmax(inv_t * Xn.T @ Dn, dim=1)
    C = C / C.sum(dim=0, keepdim=True)
    return Xn @ C, C''',
        "one call of hamlib.vq (the library's answer)": '''def vq_step(X, D, inv_t):
    D_new, C = hamlib.vq(X[None], D[None], steps=1, inv_t=inv_t)
    return D_new[0], C[0]''',
        "hamlib.solvers' VQ step functions": '''def vq_step(X, D, inv_t):
    Ct = hamlib.solvers.vq_coef_step(X[None], D[None], inv_t)
    return hamlib.solvers.vq_bases_step(X[None], Ct)[0], Ct.mT[0]''',
        "CD's coefficient step on unit bases (the same assignment)": '''def vq_step(X, D, inv_t):
    Ct = hamlib.solvers.cd_coef_step(X[None], (D / D.norm(dim=0, keepdim=True))[None], inv_t)
    return (X @ Ct[0].T), Ct[0].T''',
    },
    "ex03_2_solution": {
        "argmax of the raw dot product, not the cosine": _HARD + '''    A = torch.nn.functional.one_hot((X.T @ D).argmax(dim=1), D.shape[1]).to(X.dtype)
    return X @ A / A.sum(dim=0).clamp_min(1), A''',
        "nearest centroid by Euclidean distance (plain k-means)": _HARD + '''    A = torch.nn.functional.one_hot(torch.cdist(X.T, D.T).argmin(dim=1), D.shape[1]).to(X.dtype)
    return X @ A / A.sum(dim=0).clamp_min(1), A''',
        "sums instead of means": _HARD + '''    cos = (X / X.norm(dim=0, keepdim=True)).T @ (D / D.norm(dim=0, keepdim=True))
    A = torch.nn.functional.one_hot(cos.argmax(dim=1), D.shape[1]).to(X.dtype)
    return X @ A, A''',
        "an empty cluster divides by zero": _HARD + '''    cos = (X / X.norm(dim=0, keepdim=True)).T @ (D / D.norm(dim=0, keepdim=True))
    A = torch.nn.functional.one_hot(cos.argmax(dim=1), D.shape[1]).to(X.dtype)
    return X @ A / A.sum(dim=0), A''',
        "centroids put back on the unit sphere (CD's bases step)": _HARD + '''    cos = (X / X.norm(dim=0, keepdim=True)).T @ (D / D.norm(dim=0, keepdim=True))
    A = torch.nn.functional.one_hot(cos.argmax(dim=1), D.shape[1]).to(X.dtype)
    M = X @ A / A.sum(dim=0).clamp_min(1)
    return M / M.norm(dim=0, keepdim=True).clamp_min(1e-12), A''',
        "a very large t instead of a hard assignment": _HARD + '''    cos = (X / X.norm(dim=0, keepdim=True)).T @ (D / D.norm(dim=0, keepdim=True))
    A = torch.softmax(30.0 * cos, dim=1)
    return X @ A / A.sum(dim=0).clamp_min(1e-12), A''',
    },
    "ex03_3_solution": {
        "leaves out the r x r solve": _CD + "    return K * 2 * d * N * r + d * r * r + d * N * r",
        "an extra similarity product at the start (like NMF's softmax start)": _CD + "    return (K + 1) * d * N * r + K * d * N * r + d * r * r + d * N * r + N * r * r + r ** 3",
        "the final D^T X forgotten": _CD + "    return K * 2 * d * N * r + d * r * r + N * r * r + r ** 3",
        "the solve as r^3 only (one right-hand side)": _CD + "    return K * 2 * d * N * r + d * r * r + d * N * r + r ** 3",
        "the reconstruction D C^T counted too": _CD + "    return K * 2 * d * N * r + d * r * r + 2 * d * N * r + N * r * r + r ** 3",
        "FLOPs, not MACs": _CD + "    return 2 * (K * 2 * d * N * r + d * r * r + d * N * r + N * r * r + r ** 3)",
        "D^T D counted as d r": _CD + "    return K * 2 * d * N * r + d * r + d * N * r + N * r * r + r ** 3",
    },
}
