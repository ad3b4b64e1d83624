"""budget_table.py - the pure parts of bench/cart_budget.py: what a variant
spec means, the per-request arithmetic and the markdown tables (tested in
bench/tests/test_cart_budget.py).
"""

import statistics

KINDS = ("client", "broker", "worker", "redis")

#  The variants --matrix runs: the round-1 configuration first (the
#  Results table's 4 workers x credit 16 at 8 x 16), then one change at a
#  time (transport, Redis socket, workers x credit, load), then run.py's
#  best-configuration candidates (settings.BEST_CART) and a deeper one.
MATRIX = (
    "tcp/4x16/8x16",
    "ipc/4x16/8x16",
    "tcp/4x16/8x16/unix",
    "tcp/2x32/8x16",
    "tcp/1x128/8x16",
    "tcp/8x16/8x16",
    "tcp/4x16/8x64",
    "tcp/1x128/8x32",
    "ipc/1x128/8x32/unix",
    "ipc/2x64/8x32/unix",
    "tcp/1x256/8x64",
)


def parse_variant(spec):
    """"TRANSPORT/WORKERSxCREDIT/CLIENTSxWINDOW[/REDIS]" as a dict:
    transport tcp or ipc (how workers and clients reach the broker),
    REDIS tcp (default) or unix (how workers reach Redis). ValueError
    if it is anything else."""
    parts = spec.strip().split("/")
    if len(parts) not in (3, 4):
        raise ValueError("variant %r: want TRANSPORT/WxC/CxW[/REDIS]" % spec)
    transport, redis = parts[0], parts[3] if len(parts) == 4 else "tcp"
    if transport not in ("tcp", "ipc") or redis not in ("tcp", "unix"):
        raise ValueError("variant %r: transport tcp|ipc, redis tcp|unix"
                         % spec)
    pairs = []
    for part in parts[1:3]:
        left, sep, right = part.partition("x")
        if not (sep and left.isdigit() and right.isdigit()
                and int(left) > 0 and int(right) > 0):
            raise ValueError("variant %r: %r is not NxM" % (spec, part))
        pairs.append((int(left), int(right)))
    return {"variant": "/".join(parts), "transport": transport,
            "workers": pairs[0][0], "credit": pairs[0][1],
            "clients": pairs[1][0], "window": pairs[1][1], "redis": redis}


def parse_variants(text):
    """A comma list of variant specs."""
    return [parse_variant(spec) for spec in text.split(",") if spec.strip()]


# -------------------------------------------------------------------
# Per request


def difference(before, after):
    return {key: after[key] - before[key] for key in after}


def per_request(used, requests):
    """One process's (or kind's) use over a run, from a difference of
    procstat samples (seconds and switch counts), per request answered:
    user and system microseconds, voluntary and involuntary switches."""
    requests = max(requests, 1)
    return {"user_us": used["user"] / requests * 1e6,
            "sys_us": used["sys"] / requests * 1e6,
            "vcsw": used["vcsw"] / requests,
            "ivcsw": used["ivcsw"] / requests}


def summed(figures):
    """The kind's figure: the sum of its processes' per-request figures."""
    keys = ("user_us", "sys_us", "vcsw", "ivcsw")
    return {key: sum(figure[key] for figure in figures) for key in keys}


def kind_figures(used, requests):
    """{kind: figure} from {kind: [use of each process]}; a kind of
    several processes keeps each one's figure under "each"."""
    kinds = {}
    for kind, uses in used.items():
        each = [per_request(use, requests) for use in uses]
        kinds[kind] = summed(each)
        if len(each) > 1:
            kinds[kind]["each"] = each
    return kinds


def total_us(kinds):
    return sum(figure["user_us"] + figure["sys_us"]
               for figure in kinds.values())


def ratio(rps, reference):
    return rps / reference if rps and reference else None


def combine_rounds(rows):
    """One table row from a variant's rounds: the round with the median
    req/s (the lower one of an even count; a failed round counts as 0),
    so that req/s and every per-kind figure come from one run; but Redis
    -P16 req/s and the ratio are the medians over the rounds of their
    per-round values (each ratio taken within its round)."""
    ordered = sorted(rows, key=lambda row: row.get("rps") or 0)
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    for key in ("redis_p16_rps", "ratio"):
        values = [row[key] for row in rows if row.get(key) is not None]
        chosen[key] = statistics.median(values) if values else None
    return chosen


def rounded(value, digits):
    """Rounds every float inside dicts and lists (for the JSON lines)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item, digits) for item in value]
    return value


# -------------------------------------------------------------------
# Markdown


def _cell_cpu(figure):
    if not figure:
        return "-"
    return "%.1f / %.1f" % (figure["user_us"], figure["sys_us"])


def _cell_switches(figure):
    if not figure:
        return "-"
    return "%.2f / %.2f" % (figure["vcsw"], figure["ivcsw"])


def _number(value, pattern):
    return "-" if value is None else pattern % value


def _thousands(value):
    return "-" if value is None else format(round(value), ",")


def render_budget(rows):
    """The budget table: a row per variant, as cart_budget.measure_row
    makes them (a row with rps None failed); ratio is the cart's req/s
    over redis-benchmark -P 16's, measured just before it."""
    header = ["variant", "req/s", "Redis -P16 req/s", "ratio"]
    for kind in KINDS:
        header += ["%s µs user / sys" % kind, "%s cs vol / invol" % kind]
    header += ["all µs", "Redis alone µs/call", "idle %"]
    lines = ["| " + " | ".join(header) + " |",
             "| --- |" + " ---: |" * (len(header) - 1)]
    for row in rows:
        if row.get("rps") is None:
            lines.append("| %s | failed |%s" % (
                row["variant"], " |" * (len(header) - 2)))
            continue
        cells = [row["variant"], _thousands(row["rps"]),
                 _thousands(row.get("redis_p16_rps")),
                 _number(row.get("ratio"), "%.3f")]
        for kind in KINDS:
            figure = row["kinds"].get(kind)
            cells += [_cell_cpu(figure), _cell_switches(figure)]
        cells += ["%.1f" % row["total_us"],
                  _number(row.get("redis_alone_us"), "%.1f"),
                  "%.0f" % row["idle_pct"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def syscalls_per_request(calls, requests):
    requests = max(requests, 1)
    return {name: count / requests for name, count in calls.items()}


def render_syscalls(per_kind, limit_share=0.01):
    """System calls per request, a column per process kind traced
    ({kind: {syscall: calls per request}}), rows by the sum over kinds,
    largest first; a syscall under limit_share of every kind's total is
    folded into "other"."""
    kinds = list(per_kind)
    totals = {kind: sum(per_kind[kind].values()) for kind in kinds}
    names = set()
    for kind in kinds:
        for name, value in per_kind[kind].items():
            if value >= limit_share * totals[kind]:
                names.add(name)
    ordered = sorted(names, key=lambda name: (
        -sum(per_kind[kind].get(name, 0) for kind in kinds), name))
    lines = ["| syscall | " + " | ".join(kinds) + " |",
             "| --- |" + " ---: |" * len(kinds)]
    for name in ordered:
        lines.append("| %s | %s |" % (name, " | ".join(
            "%.2f" % per_kind[kind].get(name, 0) for kind in kinds)))
    other = [totals[kind] - sum(per_kind[kind].get(name, 0)
                                for name in ordered) for kind in kinds]
    if any(value > 0.005 for value in other):
        lines.append("| other | %s |" % " | ".join(
            "%.2f" % value for value in other))
    lines.append("| **all** | %s |" % " | ".join(
        "**%.2f**" % totals[kind] for kind in kinds))
    return "\n".join(lines) + "\n"
