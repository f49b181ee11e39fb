"""Plausible wrong answers to notebook 08's graded code exercises (run by tests/test_exercise_answers.py)."""

_CD_NO_SOLVE = '''def ham_macs(kind, c, N, r, K, groups=1):
    S, d = groups, c // groups
    if kind == "nmf":
        one = (2 * K + 3) * N * d * r + (2 * K + 1) * (N + d) * r * r
    elif kind == "vq":
        one = (2 * K + 2) * N * d * r
    else:
        one = (2 * K + 2) * N * d * r + d * r * r
    return S * one'''


def _macs(nmf="(2 * K + 3) * N * d * r + (2 * K + 1) * (N + d) * r * r", vq="(2 * K + 2) * N * d * r",
          cd="(2 * K + 2) * N * d * r + d * r * r + N * r * r + r ** 3", head="S, d = groups, c // groups",
          tail="return S * one"):
    return f'''def ham_macs(kind, c, N, r, K, groups=1):
    {head}
    if kind == "nmf":
        one = {nmf}
    elif kind == "vq":
        one = {vq}
    else:
        one = {cd}
    {tail}'''


_PM = '''def predict_memory(mode, K, mb_K, mb_2K, K_new):
    {body}'''

_TIE = '''def cheapest_tie(results, cost):
    {body}'''

WRONG = {
    "ex08_1_solution": {
        "CD's r x r solve left out (FlopCounterMode's count)": _CD_NO_SOLVE,
        "groups ignored (d = c, one problem)": _macs(head="S, d = 1, c"),
        "groups: d = c / S but only one problem counted": _macs(tail="return one"),
        "VQ and CD counted with NMF's initial D^T X": _macs(vq="(2 * K + 3) * N * d * r",
                                                           cd="(2 * K + 3) * N * d * r + d * r * r + N * r * r + r ** 3"),
        "the final step forgotten (2K + 1 products)": _macs(vq="(2 * K + 1) * N * d * r",
                                                           cd="(2 * K + 1) * N * d * r + d * r * r + N * r * r + r ** 3"),
        "the solve counted as r^3 only": _macs(cd="(2 * K + 2) * N * d * r + d * r * r + r ** 3"),
        "NMF's r^2 terms once per step instead of per update": _macs(nmf="(2 * K + 3) * N * d * r + (K + 1) * (N + d) * r * r"),
    },
    "ex08_2_solution": {
        "proportional to K (no fixed part)": _PM.format(body="return mb_K * K_new / K"),
        "linear in K whatever the plan tracks": _PM.format(body="return mb_K + (mb_2K - mb_K) * (K_new - K) / K"),
        "memory flat for every mode": _PM.format(body="return mb_K"),
        "Neumann terms counted as tracked steps": _PM.format(body='''t, t2, tn = (grad_plan(mode, k).tracked + grad_plan(mode, k).neumann for k in (K, 2 * K, K_new))
    if t2 == t:
        return mb_K
    return mb_K + (mb_2K - mb_K) * (tn - t) / (t2 - t)'''),
        "the mean of the two measurements when flat": _PM.format(body='''t, t2, tn = (grad_plan(mode, k).tracked for k in (K, 2 * K, K_new))
    if t2 == t:
        return (mb_K + mb_2K) / 2
    return mb_K + (mb_2K - mb_K) * (tn - t) / (t2 - t)'''),
        "extrapolated from the origin (mb_2K / tracked(2K) per step)": _PM.format(body='''t2, tn = (grad_plan(mode, k).tracked for k in (2 * K, K_new))
    if t2 == grad_plan(mode, K).tracked:
        return mb_K
    return mb_2K * tn / t2'''),
    },
    "ex08_3_solution": {
        "the best mean, cost ignored": _TIE.format(body='return max(results, key=lambda h: results[h]["miou"])'),
        "the cheapest head, accuracy ignored": _TIE.format(body="return min(results, key=lambda h: cost[h])"),
        "ties by the best head's spread alone": _TIE.format(body='''best = max(results, key=lambda h: results[h]["miou"])
    b = results[best]
    return min((h for h, r in results.items() if b["miou"] - r["miou"] <= b["miou_std"]), key=cost.get)'''),
        "ties by the larger spread, not the sum": _TIE.format(body='''best = max(results, key=lambda h: results[h]["miou"])
    b = results[best]
    return min((h for h, r in results.items() if b["miou"] - r["miou"] <= max(b["miou_std"], r["miou_std"])), key=cost.get)'''),
        "two standard errors at three seeds": _TIE.format(body='''best = max(results, key=lambda h: results[h]["miou"])
    b = results[best]
    se = lambda r: 2 * ((b["miou_std"] ** 2 + r["miou_std"] ** 2) / 3) ** 0.5
    return min((h for h, r in results.items() if b["miou"] - r["miou"] <= se(r)), key=cost.get)'''),
        "strict inequality at the boundary": _TIE.format(body='''best = max(results, key=lambda h: results[h]["miou"])
    b = results[best]
    return min((h for h, r in results.items() if b["miou"] - r["miou"] < b["miou_std"] + r["miou_std"]), key=cost.get)'''),
        "ties with the first head listed, not the best": _TIE.format(body='''first = next(iter(results))
    b = results[first]
    return min((h for h, r in results.items() if abs(b["miou"] - r["miou"]) <= b["miou_std"] + r["miou_std"]), key=cost.get)'''),
    },
}
