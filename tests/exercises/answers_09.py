"""Plausible wrong answers to notebook 09's graded code exercises (run by tests/test_exercise_answers.py)."""

_LIN = '''def causal_linear_attention(q, k, v, eps=1e-6):
'''
_CH = '''def causal_chunked_nmf(X, D0, L, steps=6):
'''
_MACS = '''def chunked_macs(N, L, d, r, K):
'''
_CHUNK_LOOP = '''        Xc = X[:, s:s + L]
        C = torch.softmax(Xc.T @ D, dim=1)
        for _ in range(steps):
            C = C * (Xc.T @ D) / (C @ (D.T @ D) + 1e-6)
        out[:, s:s + L] = D @ C.T
    return out'''

WRONG = {
    "ex09_1_solution": {
        "sums over every token (not causal)": _LIN + '''    q, k = F.elu(q) + 1, F.elu(k) + 1
    S = k.T @ v
    return (q @ S) / (q @ k.sum(0, keepdim=True).T + eps)''',
        "strict prefix j < i (a token does not read itself)": _LIN + '''    q, k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.cumsum(k[:, :, None] * v[:, None, :], dim=0) - k[:, :, None] * v[:, None, :]
    z = torch.cumsum(k, dim=0) - k
    return torch.einsum("nc,ncd->nd", q, S) / ((q * z).sum(-1, keepdim=True) + eps)''',
        "no normalisation by phi(q_i)^T z_i": _LIN + '''    q, k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.cumsum(k[:, :, None] * v[:, None, :], dim=0)
    return torch.einsum("nc,ncd->nd", q, S)''',
        "normalised by the whole sequence's z": _LIN + '''    q, k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.cumsum(k[:, :, None] * v[:, None, :], dim=0)
    return torch.einsum("nc,ncd->nd", q, S) / (q @ k.sum(0) + eps)[:, None]''',
        "relu feature map instead of elu + 1": _LIN + '''    q, k = F.relu(q), F.relu(k)
    S = torch.cumsum(k[:, :, None] * v[:, None, :], dim=0)
    z = torch.cumsum(k, dim=0)
    return torch.einsum("nc,ncd->nd", q, S) / ((q * z).sum(-1, keepdim=True) + eps)''',
        "the masked N x N matrix (right values, quadratic memory)": _LIN + '''    q, k = F.elu(q) + 1, F.elu(k) + 1
    M = torch.tril(q @ k.T)
    return (M @ v) / (M.sum(1, keepdim=True) + eps)''',
        "eps ignored (a fixed 1e-6)": _LIN + '''    q, k = F.elu(q) + 1, F.elu(k) + 1
    S = torch.cumsum(k[:, :, None] * v[:, None, :], dim=0)
    z = torch.cumsum(k, dim=0)
    return torch.einsum("nc,ncd->nd", q, S) / ((q * z).sum(-1, keepdim=True) + 1e-6)''',
    },
    "ex09_2_solution": {
        "the bases fitted to the chunk itself too (reads the future within the chunk)": _CH + '''    out = torch.zeros_like(X)
    for s in range(L, X.shape[1], L):
        D = hamlib.nmf(X[None, :, :s + L], D0[None], steps=steps)[0][0]
''' + _CHUNK_LOOP,
        "the bases fitted to the whole sequence": _CH + '''    out = torch.zeros_like(X)
    D = hamlib.nmf(X[None], D0[None], steps=steps)[0][0]
    for s in range(L, X.shape[1], L):
''' + _CHUNK_LOOP,
        "the first chunk reconstructed from its own bases": _CH + '''    out = torch.zeros_like(X)
    for s in range(0, X.shape[1], L):
        D = hamlib.nmf(X[None, :, :max(s, L)], D0[None], steps=steps)[0][0]
''' + _CHUNK_LOOP,
        "bases from the previous chunk only (a sliding window)": _CH + '''    out = torch.zeros_like(X)
    for s in range(L, X.shape[1], L):
        D = hamlib.nmf(X[None, :, s - L:s], D0[None], steps=steps)[0][0]
''' + _CHUNK_LOOP,
        "no coefficient updates (the softmax only)": _CH + '''    out = torch.zeros_like(X)
    for s in range(L, X.shape[1], L):
        D = hamlib.nmf(X[None, :, :s], D0[None], steps=steps)[0][0]
        Xc = X[:, s:s + L]
        C = torch.softmax(Xc.T @ D, dim=1)
        out[:, s:s + L] = D @ C.T
    return out''',
        "the coefficients jointly with the bases (the chunk's tokens read each other)": _CH + '''    out = torch.zeros_like(X)
    for s in range(L, X.shape[1], L):
        D = hamlib.nmf(X[None, :, :s], D0[None], steps=steps)[0][0]
        Xc = X[:, s:s + L]
        D2, C = hamlib.nmf(Xc[None], D[None], steps=steps)
        out[:, s:s + L] = D2[0] @ C[0].T
    return out''',
        "the initial bases, never fitted": _CH + '''    out = torch.zeros_like(X)
    for s in range(L, X.shape[1], L):
        D = D0
''' + _CHUNK_LOOP,
    },
    "ex09_3_solution": {
        "a fit before the first chunk too (k from 0)": _MACS + '''    fit = lambda n: n * d * r + K * (2 * n * d * r + 2 * n * r * r + 2 * d * r * r)
    chunk = L * d * r + K * (L * d * r + d * r * r + L * r * r) + L * d * r
    return sum(fit(k * L) + chunk for k in range(0, N // L))''',
        "the fits include the chunk itself ((k + 1) L tokens)": _MACS + '''    fit = lambda n: n * d * r + K * (2 * n * d * r + 2 * n * r * r + 2 * d * r * r)
    chunk = L * d * r + K * (L * d * r + d * r * r + L * r * r) + L * d * r
    return sum(fit((k + 1) * L) + chunk for k in range(1, N // L))''',
        "the reconstruction D C^T left out": _MACS + '''    fit = lambda n: n * d * r + K * (2 * n * d * r + 2 * n * r * r + 2 * d * r * r)
    chunk = L * d * r + K * (L * d * r + d * r * r + L * r * r)
    return sum(fit(k * L) + chunk for k in range(1, N // L))''',
        "the d r^2 Gram products left out": _MACS + '''    fit = lambda n: n * d * r + K * (2 * n * d * r + 2 * n * r * r)
    chunk = L * d * r + K * (L * d * r + L * r * r) + L * d * r
    return sum(fit(k * L) + chunk for k in range(1, N // L))''',
        "one chunk too many (range up to N / L inclusive)": _MACS + '''    fit = lambda n: n * d * r + K * (2 * n * d * r + 2 * n * r * r + 2 * d * r * r)
    chunk = L * d * r + K * (L * d * r + d * r * r + L * r * r) + L * d * r
    return sum(fit(k * L) + chunk for k in range(1, N // L + 1))''',
        "the initial X^T D of each fit forgotten": _MACS + '''    fit = lambda n: K * (2 * n * d * r + 2 * n * r * r + 2 * d * r * r)
    chunk = L * d * r + K * (L * d * r + d * r * r + L * r * r) + L * d * r
    return sum(fit(k * L) + chunk for k in range(1, N // L))''',
        "every fit on the whole sequence": _MACS + '''    fit = lambda n: n * d * r + K * (2 * n * d * r + 2 * n * r * r + 2 * d * r * r)
    chunk = L * d * r + K * (L * d * r + d * r * r + L * r * r) + L * d * r
    return sum(fit(N) + chunk for k in range(1, N // L))''',
    },
}
