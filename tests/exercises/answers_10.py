"""Plausible wrong answers to notebook 10's graded code exercises (run by tests/test_exercise_answers.py)."""

WRONG = {
    "ex10_1_solution": {
        "drops .cuda() but keeps fresh random bases in evaluation": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)

    def initial_bases(self, X):
        return F.normalize(torch.rand(X.shape[0], self.d, self.r, device=X.device, dtype=X.dtype), dim=1)
''',
        "torch.manual_seed before each draw (the thread's workaround)": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        self.seed = seed

    def initial_bases(self, X):
        if not self.training:
            torch.manual_seed(self.seed)
        return F.normalize(torch.rand(X.shape[0], self.d, self.r, device=X.device, dtype=X.dtype), dim=1)
''',
        "fixed bases kept as a plain attribute (does not move with the module)": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        g = torch.Generator().manual_seed(seed)
        self.eval_bases = F.normalize(torch.rand(d, r, generator=g), dim=0)

    def initial_bases(self, X):
        B = X.shape[0]
        if self.training:
            return F.normalize(torch.rand(B, self.d, self.r, device=X.device, dtype=X.dtype), dim=1)
        return self.eval_bases.to(X.dtype).expand(B, -1, -1).clone()
''',
        "a persistent buffer (old checkpoints no longer load)": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("eval_bases", F.normalize(torch.rand(d, r, generator=g), dim=0))

    def initial_bases(self, X):
        B = X.shape[0]
        if self.training:
            return F.normalize(torch.rand(B, self.d, self.r, device=X.device, dtype=X.dtype), dim=1)
        return self.eval_bases.to(X.dtype).expand(B, -1, -1).clone()
''',
        "the fixed bases in training too": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("eval_bases", F.normalize(torch.rand(d, r, generator=g), dim=0), persistent=False)

    def initial_bases(self, X):
        return self.eval_bases.to(X.dtype).expand(X.shape[0], -1, -1).clone()
''',
        "columns not normalised": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("eval_bases", torch.rand(d, r, generator=g), persistent=False)

    def initial_bases(self, X):
        B = X.shape[0]
        if self.training:
            return F.normalize(torch.rand(B, self.d, self.r, device=X.device, dtype=X.dtype), dim=1)
        return self.eval_bases.to(X.dtype).expand(B, -1, -1).clone()
''',
        "drawn from the global RNG at construction, not the seeded generator": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        self.register_buffer("eval_bases", F.normalize(torch.rand(d, r), dim=0), persistent=False)

    def initial_bases(self, X):
        B = X.shape[0]
        if self.training:
            return F.normalize(torch.rand(B, self.d, self.r, device=X.device, dtype=X.dtype), dim=1)
        return self.eval_bases.to(X.dtype).expand(B, -1, -1).clone()
''',
        "training bases on the default device": '''class FixedNMF(PortedNMF):
    def __init__(self, d, r=4, steps=6, eval_steps=7, seed=0):
        super().__init__(d, r, steps, eval_steps)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("eval_bases", F.normalize(torch.rand(d, r, generator=g), dim=0), persistent=False)

    def initial_bases(self, X):
        B = X.shape[0]
        if self.training:
            return F.normalize(torch.rand(B, self.d, self.r), dim=1).to(X.dtype)
        return self.eval_bases.to(X.dtype).expand(B, -1, -1).clone()
''',
    },
    "ex10_2_solution": {
        "the epsilon dropped (the exported graph's update)": '''def mu_update(A, num, den, eps=1e-6):
    return A * num / den
''',
        "a branch on the values (does not export)": '''def mu_update(A, num, den, eps=1e-6):
    if (den == 0).any():
        return A * num / (den + eps)
    return A * num / den
''',
        "clamp_min instead of + eps": '''def mu_update(A, num, den, eps=1e-6):
    return A * num / den.clamp_min(eps)
''',
        "eps in the numerator too": '''def mu_update(A, num, den, eps=1e-6):
    return A * (num + eps) / (den + eps)
''',
        "NaN replaced after the division": '''def mu_update(A, num, den, eps=1e-6):
    return torch.nan_to_num(A * num / den)
''',
        "a where on zero denominators": '''def mu_update(A, num, den, eps=1e-6):
    return torch.where(den > 0, A * num / den, torch.zeros_like(A))
''',
        "eps hard-coded, the argument ignored": '''def mu_update(A, num, den, eps=1e-6):
    return A * num / (den + 1e-6)
''',
    },
    "ex10_3_solution": {
        "a tree walk: shared nodes counted once per path": '''def graph_nodes(t):
    stack, counts = [t.grad_fn] if t.grad_fn is not None else [], Counter()
    while stack:
        node = stack.pop()
        counts[type(node).__name__] += 1
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return counts
''',
        "recursion (fails on a deep BPTT graph)": '''def graph_nodes(t):
    seen, counts = set(), Counter()

    def visit(node):
        if node is None or node in seen:
            return
        seen.add(node)
        counts[type(node).__name__] += 1
        for n, _ in node.next_functions:
            visit(n)

    visit(t.grad_fn)
    return counts
''',
        "only the first input of every node followed": '''def graph_nodes(t):
    node, counts, seen = t.grad_fn, Counter(), set()
    while node is not None and node not in seen:
        seen.add(node)
        counts[type(node).__name__] += 1
        node = node.next_functions[0][0] if node.next_functions else None
    return counts
''',
        "AccumulateGrad leaves left out": '''def graph_nodes(t):
    seen, stack, counts = set(), [t.grad_fn] if t.grad_fn is not None else [], Counter()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if type(node).__name__ != "AccumulateGrad":
            counts[type(node).__name__] += 1
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return counts
''',
        "the root node not counted": '''def graph_nodes(t):
    seen, counts = set(), Counter()
    stack = [n for n, _ in t.grad_fn.next_functions if n is not None] if t.grad_fn is not None else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        counts[type(node).__name__] += 1
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return counts
''',
        "deduplicated by class name instead of by node": '''def graph_nodes(t):
    seen, stack, counts = set(), [t.grad_fn] if t.grad_fn is not None else [], Counter()
    while stack:
        node = stack.pop()
        name = type(node).__name__
        if name in seen:
            continue
        seen.add(name)
        counts[name] += 1
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return counts
''',
    },
}
