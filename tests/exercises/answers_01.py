"""Plausible wrong answers to notebook 01's graded code exercises (run by tests/test_exercise_answers.py)."""

_SMALLEST = '''

def smallest_rank(S, tol):
    """The smallest r with eckart_young_error(S, r) <= tol."""
    return next(r for r in range(len(S) + 1) if eckart_young_error(S, r) <= tol)'''

_FRACTION = '''

def kept_noise_fraction(m, n, r):
    return r * (m + n - r) / (m * n)'''

_PROJECTION = '''def kept_noise_projection(E, U, V):
    UUE = U @ (U.T @ E)
    return UUE + (E @ V) @ V.T - (UUE @ V) @ V.T

'''

WRONG = {
    "ex01_1_solution": {
        "Vh sliced as columns (V^T taken for V)": '''def rank_r_truncation(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return (U[:, :r] * S[:r]) @ Vh[:, :r].T''',
        "singular values left out": '''def rank_r_truncation(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U[:, :r] @ Vh[:r]''',
        "off by one: r + 1 components": '''def rank_r_truncation(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return (U[:, :r + 1] * S[:r + 1]) @ Vh[:r + 1]''',
        "the last r components (smallest singular values)": '''def rank_r_truncation(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return (U[:, -r:] * S[-r:]) @ Vh[-r:] if r else torch.zeros_like(A)''',
        "randomised low-rank SVD (approximate)": '''def rank_r_truncation(A, r):
    if r == 0:
        return torch.zeros_like(A)
    U, S, V = torch.svd_lowrank(A, q=r, niter=1)
    return (U * S) @ V.T''',
        "square roots of the singular values": '''def rank_r_truncation(A, r):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return (U[:, :r] * S[:r].sqrt()) @ Vh[:r]''',
        "one call of lowrank.truncated_svd (the course's answer)": '''def rank_r_truncation(A, r):
    return lowrank.truncated_svd(A, r)''',
        "the helper bound to the name": '''from course.lowrank import truncated_svd as rank_r_truncation''',
    },
    "ex01_2_solution": {
        "no square root (the energy fraction, not the error)": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float(energy[r:].sum() / energy.sum())''' + _SMALLEST,
        "singular values instead of their squares": '''def eckart_young_error(S, r):
    return float(S.double()[r:].sum() / S.double().sum())''' + _SMALLEST,
        "off by one: the tail from r + 1": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float((energy[r + 1:].sum() / energy.sum()).sqrt())''' + _SMALLEST,
        "relative to sigma_1 instead of the whole energy": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float((energy[r:].sum() / energy[0]).sqrt())''' + _SMALLEST,
        "smallest rank with a strict <": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float((energy[r:].sum() / energy.sum()).sqrt())


def smallest_rank(S, tol):
    return next(r for r in range(len(S) + 1) if eckart_young_error(S, r) < tol or r == len(S))''',
        "smallest rank one too small (the last rank above tol)": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float((energy[r:].sum() / energy.sum()).sqrt())


def smallest_rank(S, tol):
    return max(0, next(r for r in range(len(S) + 1) if eckart_young_error(S, r) <= tol) - 1)''',
        "tol not squared: energy_rank(S, 1 - tol)": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float((energy[r:].sum() / energy.sum()).sqrt())


def smallest_rank(S, tol):
    return lowrank.energy_rank(S, 1 - tol) if tol > 0 else len(S)''',
        "the error of lowrank.truncated_svd on diag(S) (a matrix and an SVD inside)": '''def eckart_young_error(S, r):
    A_S = torch.diag(S.double())
    return lowrank.relative_error(lowrank.truncated_svd(A_S, r), A_S)''' + _SMALLEST,
        "smallest rank through lowrank.energy_rank(S, 1 - tol^2)": '''def eckart_young_error(S, r):
    energy = S.double().pow(2)
    return float((energy[r:].sum() / energy.sum()).sqrt())


def smallest_rank(S, tol):
    return 0 if tol >= 1 else lowrank.energy_rank(S, 1 - tol ** 2)''',
        "the error from an SVD of diag(S)": '''def eckart_young_error(S, r):
    A_S = torch.diag(S.double())
    U, S_d, Vh = torch.linalg.svd(A_S)
    return float(((U[:, :r] * S_d[:r]) @ Vh[:r] - A_S).norm() / A_S.norm())''' + _SMALLEST,
    },
    "ex01_3_solution": {
        "r / min(m, n): the naive guess": _PROJECTION + '''def kept_noise_fraction(m, n, r):
    return r / min(m, n)''',
        "r (m + n) / (mn): the overlap counted twice": _PROJECTION + '''def kept_noise_fraction(m, n, r):
    return min(1.0, r * (m + n) / (m * n))''',
        "integer division": _PROJECTION + '''def kept_noise_fraction(m, n, r):
    return r * (m + n - r) // (m * n)''',
        "projection without the overlap term": '''def kept_noise_projection(E, U, V):
    return U @ (U.T @ E) + (E @ V) @ V.T''' + _FRACTION,
        "column space only": '''def kept_noise_projection(E, U, V):
    return U @ (U.T @ E)''' + _FRACTION,
        "both spaces at once (U U^T E V V^T)": '''def kept_noise_projection(E, U, V):
    return U @ (U.T @ E) @ V @ V.T''' + _FRACTION,
    },
    "ex01_4_solution": {
        "forgets to put the observed entries back (F = Z)": '''def hard_impute(Y, mask, r, steps):
    filled = torch.where(mask, Y, Y[mask].mean())
    for _ in range(steps):
        Z = lowrank.truncated_svd(filled, r)
        filled = Z
    return Z''',
        "holes start at 0, not the mean": '''def hard_impute(Y, mask, r, steps):
    filled = torch.where(mask, Y, torch.zeros_like(Y))
    for _ in range(steps):
        Z = lowrank.truncated_svd(filled, r)
        filled = torch.where(mask, Y, Z)
    return Z''',
        "the mask read the wrong way round": '''def hard_impute(Y, mask, r, steps):
    filled = torch.where(mask, Y, Y[mask].mean())
    for _ in range(steps):
        Z = lowrank.truncated_svd(filled, r)
        filled = torch.where(mask, Z, Y)
    return Z''',
        "returns the filled matrix, not Z": '''def hard_impute(Y, mask, r, steps):
    filled = torch.where(mask, Y, Y[mask].mean())
    for _ in range(steps):
        Z = lowrank.truncated_svd(filled, r)
        filled = torch.where(mask, Y, Z)
    return filled''',
        "one step too many": '''def hard_impute(Y, mask, r, steps):
    filled = torch.where(mask, Y, Y[mask].mean())
    for _ in range(steps + 1):
        Z = lowrank.truncated_svd(filled, r)
        filled = torch.where(mask, Y, Z)
    return Z''',
        "the mean of the whole matrix (holes included) as the start": '''def hard_impute(Y, mask, r, steps):
    filled = torch.where(mask, Y, Y.mean())
    for _ in range(steps):
        Z = lowrank.truncated_svd(filled, r)
        filled = torch.where(mask, Y, Z)
    return Z''',
        "one call of lowrank.svd_impute (the course's answer)": '''def hard_impute(Y, mask, r, steps):
    return lowrank.svd_impute(Y, mask, r, steps)[0]''',
    },
}
