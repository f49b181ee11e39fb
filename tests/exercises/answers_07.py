"""Plausible wrong answers to notebook 07's graded code exercises (run by tests/test_exercise_answers.py)."""

WRONG = {
    "ex07_1_solution": {
        "the generator's loss as a hinge too": '''def hinge_losses(real_scores, fake_scores):
    loss_d = torch.relu(1.0 - real_scores).mean() + torch.relu(1.0 + fake_scores).mean()
    loss_g = torch.relu(1.0 - fake_scores).mean()
    return loss_d, loss_g''',
        "no hinge (the Wasserstein critic's loss)": '''def hinge_losses(real_scores, fake_scores):
    loss_d = (1.0 - real_scores).mean() + (1.0 + fake_scores).mean()
    loss_g = -fake_scores.mean()
    return loss_d, loss_g''',
        "signs of the margins swapped": '''def hinge_losses(real_scores, fake_scores):
    loss_d = torch.relu(1.0 + real_scores).mean() + torch.relu(1.0 - fake_scores).mean()
    loss_g = -fake_scores.mean()
    return loss_d, loss_g''',
        "sums instead of means": '''def hinge_losses(real_scores, fake_scores):
    loss_d = torch.relu(1.0 - real_scores).sum() + torch.relu(1.0 + fake_scores).sum()
    loss_g = -fake_scores.sum()
    return loss_d, loss_g''',
        "margin 0 instead of 1": '''def hinge_losses(real_scores, fake_scores):
    loss_d = torch.relu(-real_scores).mean() + torch.relu(fake_scores).mean()
    loss_g = -fake_scores.mean()
    return loss_d, loss_g''',
        "one mean over the concatenated scores": '''def hinge_losses(real_scores, fake_scores):
    loss_d = 2 * torch.cat([torch.relu(1.0 - real_scores), torch.relu(1.0 + fake_scores)]).mean()
    loss_g = -fake_scores.mean()
    return loss_d, loss_g''',
        "the generator minimises D's score on real images": '''def hinge_losses(real_scores, fake_scores):
    loss_d = torch.relu(1.0 - real_scores).mean() + torch.relu(1.0 + fake_scores).mean()
    loss_g = real_scores.mean() - fake_scores.mean()
    return loss_d, loss_g''',
    },
    "ex07_2_solution": {
        "returns sigma_1 squared (v^T W^T W v)": '''def spectral_norm_power(W, iters=100, seed=0):
    M = W.reshape(W.shape[0], -1)
    v = torch.randn(M.shape[1], generator=torch.Generator().manual_seed(seed), dtype=M.dtype)
    for _ in range(iters):
        u = M @ v
        u = u / u.norm()
        v = M.T @ u
        v = v / v.norm()
    return v @ M.T @ M @ v''',
        "the Frobenius norm": '''def spectral_norm_power(W, iters=100, seed=0):
    return W.reshape(W.shape[0], -1).norm()''',
        "conv weight reshaped the wrong way (in*k*k, out) then transposed back wrongly": '''def spectral_norm_power(W, iters=100, seed=0):
    M = W.reshape(-1, W.shape[0]).T
    v = torch.randn(M.shape[1], generator=torch.Generator().manual_seed(seed), dtype=M.dtype)
    for _ in range(iters):
        u = M @ v
        u = u / u.norm()
        v = M.T @ u
        v = v / v.norm()
    return u @ M @ v''',
        "ignores iters (always 1000 steps)": '''def spectral_norm_power(W, iters=100, seed=0):
    M = W.reshape(W.shape[0], -1)
    v = torch.randn(M.shape[1], generator=torch.Generator().manual_seed(seed), dtype=M.dtype)
    for _ in range(1000):
        u = M @ v
        u = u / u.norm()
        v = M.T @ u
        v = v / v.norm()
    return u @ M @ v''',
        "no normalisation inside the loop": '''def spectral_norm_power(W, iters=100, seed=0):
    M = W.reshape(W.shape[0], -1)
    v = torch.randn(M.shape[1], generator=torch.Generator().manual_seed(seed), dtype=M.dtype)
    for _ in range(iters):
        u = M @ v
        v = M.T @ u
    u, v = u / u.norm(), v / v.norm()
    return u @ M @ v''',
        "computes in float64 and returns float64": '''def spectral_norm_power(W, iters=100, seed=0):
    M = W.reshape(W.shape[0], -1).double()
    v = torch.randn(M.shape[1], generator=torch.Generator().manual_seed(seed), dtype=M.dtype)
    for _ in range(iters):
        u = M @ v
        u = u / u.norm()
        v = M.T @ u
        v = v / v.norm()
    return u @ M @ v''',
    },
    "ex07_3_solution": {
        "variances where standard deviations belong": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, var1, mu2, var2))
    return float(((mu1 - mu2) ** 2).sum() + ((var1 - var2) ** 2).sum())''',
        "the distance, not its square (sqrt of FID)": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, var1, mu2, var2))
    return float((((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum()).sqrt())''',
        "mean over dimensions instead of the sum": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, var1, mu2, var2))
    return float(((mu1 - mu2) ** 2).mean() + ((var1.sqrt() - var2.sqrt()) ** 2).mean())''',
        "Tr(S1 + S2 - 2 S1 S2): the square root of the product forgotten": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, var1, mu2, var2))
    return float(((mu1 - mu2) ** 2).sum() + (var1 + var2 - 2 * var1 * var2).sum())''',
        "the mean term not squared": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, var1, mu2, var2))
    return float((mu1 - mu2).norm() + ((var1.sqrt() - var2.sqrt()) ** 2).sum())''',
        "the covariance term left out": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, mu2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, mu2))
    return float(((mu1 - mu2) ** 2).sum())''',
        "returns a tensor, not a float": '''def fid_diagonal(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = (torch.as_tensor(t, dtype=torch.float64) for t in (mu1, var1, mu2, var2))
    return ((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum()''',
    },
    "ex07_4_solution": {
        "instance norm (statistics per image)": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma[y][:, :, None, None] * x_hat + beta[y][:, :, None, None]''',
        "one class's (gamma, beta) for every image": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma[y[0]][None, :, None, None] * x_hat + beta[y[0]][None, :, None, None]''',
        "unbiased variance": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma[y][:, :, None, None] * x_hat + beta[y][:, :, None, None]''',
        "layer norm (statistics over channels and positions per image)": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma[y][:, :, None, None] * x_hat + beta[y][:, :, None, None]''',
        "epsilon outside the square root": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    x_hat = (x - mean) / (torch.sqrt(var) + eps)
    return gamma[y][:, :, None, None] * x_hat + beta[y][:, :, None, None]''',
        "gamma and beta swapped": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return beta[y][:, :, None, None] * x_hat + gamma[y][:, :, None, None]''',
        "the shift applied before the scale": '''def conditional_batch_norm(x, y, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    x_hat = (x - mean) / torch.sqrt(var + eps)
    return gamma[y][:, :, None, None] * (x_hat + beta[y][:, :, None, None])''',
    },
}
