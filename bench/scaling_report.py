"""scaling_report.py - the markdown of bench/scaling.py's curves.

Pure formatting and arithmetic (bench/tests/test_scaling.py): no process,
no socket. A point is a dict: size, rss (bytes), idle_pct (the broker's
CPU with everything connected and no load, % of a core) and, per mode
("saturated": every window kept full; "fixed": cartmq bench --rate), a
dict of rps, us (broker CPU µs per request), above_us (µs per request
above the idle CPU) and sys_us (the system part of us), or None if that
run failed.
"""

import os
import time

TARGET_RATIO = 1.2
#  A fixed-rate point that answered less than this share of the offered
#  rate did not keep up: its messages per wake-up are not the others'.
SUSTAINED_SHARE = 0.95
MODES = ("saturated", "fixed")


def ratio(points, mode, field="us"):
    """field at the largest size over field at the smallest, in mode, or
    None if either end is missing or not positive."""
    if len(points) < 2:
        return None
    first, last = points[0].get(mode), points[-1].get(mode)
    if not first or not last or not first.get(field) or \
            last.get(field) is None or first[field] <= 0:
        return None
    return last[field] / first[field]


def sustained(offered, rps, share=SUSTAINED_SHARE):
    return rps is not None and rps >= share * offered


def sustainable_rate(saturated_rps, fraction=0.6, step=100):
    """A fixed rate every point can keep up with: fraction of the slowest
    saturated req/s, down to a multiple of step (at least step); None if
    no point was measured."""
    rates = [rps for rps in saturated_rps if rps]
    if not rates:
        return None
    return max(step, int(min(rates) * fraction) // step * step)


def _cells(run, offered=None):
    if not run or run.get("rps") is None:
        return ["failed", "", "", ""]
    rps = format(round(run["rps"]), ",")
    if offered and not sustained(offered, run["rps"]):
        rps += " *"
    return [rps, "%.2f" % run["us"], "%.2f" % run["above_us"],
            "%.2f" % run["sys_us"]]


def _verdict(value, target):
    if value is None:
        return "n/a"
    return "**%.2f×** %s" % (value, "met" if value <= target else "missed")


def render_curve(title, unit, points, rate, target=TARGET_RATIO):
    """One curve as a markdown table, smallest size first: the saturated
    runs, the runs at rate req/s (rate 0: not measured), the idle CPU and
    RSS; then the largest / smallest ratios of the CPU per request."""
    fixed = "at %s req/s" % format(rate, ",") if rate else "fixed rate"
    lines = ["### %s" % title, "",
             "| %s | req/s | µs/req | above idle | system | req/s %s "
             "| µs/req | above idle | system | idle CPU %% | RSS MiB |"
             % (unit, fixed),
             "| ---: " * 11 + "|"]
    for point in points:
        row = [format(point["size"], ",")]
        row += _cells(point.get("saturated"))
        row += _cells(point.get("fixed"), rate) if rate else ["-"] * 4
        idle = point.get("idle_pct")
        row.append("" if idle is None else "%.2f" % idle)
        rss = point.get("rss")
        row.append("" if rss is None else "%.1f" % (rss / 1048576.0))
        lines.append("|" + "|".join(" %s " % cell if cell else " "
                                    for cell in row) + "|")
    lines.append("")
    parts = []
    for mode, name in (("saturated", "saturated"), ("fixed", fixed)):
        if mode == "fixed" and not rate:
            continue
        parts.append("%s: %s, above idle %s" % (
            name, _verdict(ratio(points, mode, "us"), target),
            _verdict(ratio(points, mode, "above_us"), target)))
    lines.append("CPU/request largest / smallest (target ≤ %.1f×): %s." % (
        target, "; ".join(parts)))
    if rate and any(point.get("fixed") and not sustained(
            rate, point["fixed"].get("rps")) for point in points):
        lines += ["", "\\* below %d %% of the %s req/s offered: that point "
                  "did not keep up, so its wake-ups carry more messages "
                  "than the others'." % (SUSTAINED_SHARE * 100,
                                         format(rate, ","))]
    return "\n".join(lines) + "\n"


def preamble(rounds, duration, rate, elapsed_s, warmup_s):
    return ("Run of %s on %s, %d CPU: a 1 s warmup run per point, then "
            "%d round%s of idle CPU over %d s, a saturated run and a "
            "fixed-rate run (%s), each of %d s after its own %d s of "
            "warmup, which its CPU leaves out; %.0f s in all.\n" % (
                time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename,
                os.cpu_count(), rounds, "s" if rounds > 1 else "",
                duration,
                "%s req/s" % format(rate, ",") if rate else "off",
                duration, warmup_s, elapsed_s))


def suggestion(points_by_curve, rate):
    """A line on the fixed rate: the slowest saturated point, and whether
    every fixed-rate point kept up."""
    saturated = [point["saturated"]["rps"]
                 for points in points_by_curve for point in points
                 if point.get("saturated") and
                 point["saturated"].get("rps")]
    pick = sustainable_rate(saturated)
    if pick is None:
        return "No saturated point was measured.\n"
    slow = [point for points in points_by_curve for point in points
            if rate and point.get("fixed") and
            not sustained(rate, point["fixed"].get("rps"))]
    return ("Slowest saturated point: %s req/s; a fixed rate every point "
            "sustains with room to spare: about %s (`--rate %d`).%s\n" % (
                format(round(min(saturated)), ","), format(pick, ","), pick,
                " %d point%s did not keep up with %s req/s." % (
                    len(slow), "s" if len(slow) > 1 else "",
                    format(rate, ",")) if slow else ""))
