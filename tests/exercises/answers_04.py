"""Plausible wrong answers to notebook 04's graded code exercises (run by tests/test_exercise_answers.py)."""

_V2 = '''
def v2_macs(c_in, d, N, r, K):
    """MACs of a v2 NMF Hamburger (ham of width d, rank r, K steps) on one (c_in, N) map."""
    ham = (2 * K + 3) * N * d * r + (2 * K + 1) * (N + d) * r * r
    return ham + 2 * N * c_in * d + N * d * d
'''

_CROSS = '''
def crossover_side(c_in, r, K):
    """Smallest H with attention's MACs > v2_macs(c_in, c_in, H * H, r, K)."""
    import math
    c = c_in
    b = c * c - (2 * K + 3) * c * r - (2 * K + 1) * r * r
    N_star = (-b + math.sqrt(b * b + 8 * c * (2 * K + 1) * c * r * r)) / (4 * c)
    return math.isqrt(math.floor(N_star)) + 1
'''

WRONG = {
    "ex04_1_solution": {
        "the gram C C^T without the whitening": '''def affinity(C):
    return C @ C.T''',
        "the complement I - P": '''def affinity(C):
    return torch.eye(C.shape[0], dtype=C.dtype) - C @ torch.linalg.solve(C.T @ C, C.T)''',
        "row-normalised gram (cosine of the coefficient rows)": '''def affinity(C):
    Cn = F.normalize(C, dim=1)
    return Cn @ Cn.T''',
        "a softmax over the coefficient similarities (attention's form)": '''def affinity(C):
    return torch.softmax(C @ C.T, dim=0)''',
        "the diagonal-only inverse (C^T C)^-1 taken entrywise on its diagonal": '''def affinity(C):
    return C @ torch.diag(1 / torch.diagonal(C.T @ C)) @ C.T''',
        "the projection onto the first coefficient only": '''def affinity(C):
    c = C[:, :1]
    return c @ c.T / (c.T @ c)''',
    },
    "ex04_2_solution": {
        "forgets the column rescaling (C_bar is the plain softmax)": '''def vq_affinity(X, D0, steps, inv_t=20.0):
    D_prev, _ = hamlib.vq(X[None], D0[None], steps=steps - 1, inv_t=inv_t)
    Xn, Dn = F.normalize(X, dim=0), F.normalize(D_prev[0], dim=0)
    C_bar = torch.softmax(inv_t * Xn.T @ Dn, dim=1)
    _, C = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t, final=True)
    return C_bar @ C[0].T''',
        "off by one: the bases after all the steps instead of before the last": '''def vq_affinity(X, D0, steps, inv_t=20.0):
    D_prev, _ = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t)
    Xn, Dn = F.normalize(X, dim=0), F.normalize(D_prev[0], dim=0)
    C_bar = torch.softmax(inv_t * Xn.T @ Dn, dim=1)
    C_bar = C_bar / (C_bar.sum(0, keepdim=True) + 1e-6)
    _, C = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t, final=True)
    return C_bar @ C[0].T''',
        "transposed: C C_bar^T": '''def vq_affinity(X, D0, steps, inv_t=20.0):
    D_prev, _ = hamlib.vq(X[None], D0[None], steps=steps - 1, inv_t=inv_t)
    Xn, Dn = F.normalize(X, dim=0), F.normalize(D_prev[0], dim=0)
    C_bar = torch.softmax(inv_t * Xn.T @ Dn, dim=1)
    C_bar = C_bar / (C_bar.sum(0, keepdim=True) + 1e-6)
    _, C = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t, final=True)
    return C[0] @ C_bar.T''',
        "no unit-length normalisation before the similarities": '''def vq_affinity(X, D0, steps, inv_t=20.0):
    D_prev, _ = hamlib.vq(X[None], D0[None], steps=steps - 1, inv_t=inv_t)
    C_bar = torch.softmax(inv_t * X.T @ D_prev[0], dim=1)
    C_bar = C_bar / (C_bar.sum(0, keepdim=True) + 1e-6)
    _, C = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t, final=True)
    return C_bar @ C[0].T''',
        "the final C in both places (C C^T, rescaled)": '''def vq_affinity(X, D0, steps, inv_t=20.0):
    _, C = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t, final=True)
    C_bar = C[0] / (C[0].sum(0, keepdim=True) + 1e-6)
    return C_bar @ C[0].T''',
        "the temperature left out of the softmax": '''def vq_affinity(X, D0, steps, inv_t=20.0):
    D_prev, _ = hamlib.vq(X[None], D0[None], steps=steps - 1, inv_t=inv_t)
    Xn, Dn = F.normalize(X, dim=0), F.normalize(D_prev[0], dim=0)
    C_bar = torch.softmax(Xn.T @ Dn, dim=1)
    C_bar = C_bar / (C_bar.sum(0, keepdim=True) + 1e-6)
    _, C = hamlib.vq(X[None], D0[None], steps=steps, inv_t=inv_t, final=True)
    return C_bar @ C[0].T''',
    },
    "ex04_3_solution": {
        "omits epsilon in the denominator": '''def one_step_jacobian(D, Ct_prev, eps=1e-6):
    d, N = D.shape[0], Ct_prev.shape[1]
    W = Ct_prev / (D.T @ D @ Ct_prev)
    blocks = torch.einsum("ar,ri,br->iab", D, W, D)
    J = torch.zeros(d, N, d, N, dtype=D.dtype)
    i = torch.arange(N)
    J[:, i, :, i] = blocks
    return J''',
        "axes in the order (i, a, j, b)": '''def one_step_jacobian(D, Ct_prev, eps=1e-6):
    d, N = D.shape[0], Ct_prev.shape[1]
    W = Ct_prev / (D.T @ D @ Ct_prev + eps)
    blocks = torch.einsum("ar,ri,br->iab", D, W, D)
    J = torch.zeros(N, d, N, d, dtype=D.dtype)
    i = torch.arange(N)
    J[i, :, i, :] = blocks
    return J''',
        "w_i = c'_i, the denominator forgotten": '''def one_step_jacobian(D, Ct_prev, eps=1e-6):
    d, N = D.shape[0], Ct_prev.shape[1]
    blocks = torch.einsum("ar,ri,br->iab", D, Ct_prev, D)
    J = torch.zeros(d, N, d, N, dtype=D.dtype)
    i = torch.arange(N)
    J[:, i, :, i] = blocks
    return J''',
        "every block filled (pixel i's block copied to every j)": '''def one_step_jacobian(D, Ct_prev, eps=1e-6):
    d, N = D.shape[0], Ct_prev.shape[1]
    W = Ct_prev / (D.T @ D @ Ct_prev + eps)
    blocks = torch.einsum("ar,ri,br->iab", D, W, D)
    return blocks.permute(1, 0, 2)[:, :, :, None].expand(d, N, d, N).clone()''',
        "the ratio inverted: (D^T D c' + eps) / c'": '''def one_step_jacobian(D, Ct_prev, eps=1e-6):
    d, N = D.shape[0], Ct_prev.shape[1]
    W = (D.T @ D @ Ct_prev + eps) / Ct_prev
    blocks = torch.einsum("ar,ri,br->iab", D, W, D)
    J = torch.zeros(d, N, d, N, dtype=D.dtype)
    i = torch.arange(N)
    J[:, i, :, i] = blocks
    return J''',
        "epsilon hard-coded, the eps argument ignored": '''def one_step_jacobian(D, Ct_prev, eps=1e-6):
    d, N = D.shape[0], Ct_prev.shape[1]
    W = Ct_prev / (D.T @ D @ Ct_prev + 1e-6)
    blocks = torch.einsum("ar,ri,br->iab", D, W, D)
    J = torch.zeros(d, N, d, N, dtype=D.dtype)
    i = torch.arange(N)
    J[:, i, :, i] = blocks
    return J''',
    },
    "ex04_4_solution": {
        "forgets the cheese (the v1 count)": '''
def v2_macs(c_in, d, N, r, K):
    ham = (2 * K + 3) * N * d * r + (2 * K + 1) * (N + d) * r * r
    return ham + 2 * N * c_in * d
''' + _CROSS,
        "one bread only": '''
def v2_macs(c_in, d, N, r, K):
    ham = (2 * K + 3) * N * d * r + (2 * K + 1) * (N + d) * r * r
    return ham + N * c_in * d + N * d * d
''' + _CROSS,
        "the ham's init and final products left out: (2K + 1) N d r": '''
def v2_macs(c_in, d, N, r, K):
    ham = (2 * K + 1) * N * d * r + (2 * K + 1) * (N + d) * r * r
    return ham + 2 * N * c_in * d + N * d * d
''' + _CROSS,
        "crossover off by one (the side below the root)": _V2 + '''
def crossover_side(c_in, r, K):
    import math
    c = c_in
    b = c * c - (2 * K + 3) * c * r - (2 * K + 1) * r * r
    N_star = (-b + math.sqrt(b * b + 8 * c * (2 * K + 1) * c * r * r)) / (4 * c)
    return math.isqrt(math.floor(N_star))
''',
        "crossover in N, not in the side": _V2 + '''
def crossover_side(c_in, r, K):
    import math
    c = c_in
    b = c * c - (2 * K + 3) * c * r - (2 * K + 1) * r * r
    N_star = (-b + math.sqrt(b * b + 8 * c * (2 * K + 1) * c * r * r)) / (4 * c)
    return math.floor(N_star) + 1
''',
        "crossover against the block without cheese (the cheese's N c^2 dropped from the quadratic)": _V2 + '''
def crossover_side(c_in, r, K):
    import math
    c = c_in
    b = 2 * c * c - (2 * K + 3) * c * r - (2 * K + 1) * r * r
    N_star = (-b + math.sqrt(b * b + 8 * c * (2 * K + 1) * c * r * r)) / (4 * c)
    return math.isqrt(math.floor(N_star)) + 1
''',
    },
}
