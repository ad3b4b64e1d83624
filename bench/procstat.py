"""procstat.py - what /proc and strace say of a process's cost: user and
system CPU, context switches, the machine's idle share, system calls.

The parsers take the text of one file (tested in bench/tests/
test_cart_budget.py); the readers beside them open the files. Used by
bench/cart_budget.py.
"""

import os

HZ = os.sysconf("SC_CLK_TCK")

#  The fields of /proc/stat's "cpu" line, in order (proc(5)). guest and
#  guest_nice are already counted in user and nice.
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq",
              "steal", "guest", "guest_nice")


def parse_stat_times(text):
    """(utime, stime) clock ticks of /proc/PID/stat: every thread of the
    process, the ones that ended included. The command name in
    parentheses may hold blanks or ')', so fields are counted from the
    last ')'."""
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def parse_switches(text):
    """(voluntary, involuntary) context switches of one task's
    /proc/.../status."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            found[key] = int(value)
    return (found.get("voluntary_ctxt_switches", 0),
            found.get("nonvoluntary_ctxt_switches", 0))


def parse_cpu_line(text):
    """The machine's "cpu" line of /proc/stat as a dict of ticks."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(value) for value in line.split()[1:]]
            return dict(zip(CPU_FIELDS, values))
    raise ValueError("no cpu line in /proc/stat")


def machine_shares(before, after):
    """(idle, steal) shares of all cores between two parse_cpu_line
    samples; idle counts iowait too. guest is inside user already."""
    delta = {key: after.get(key, 0) - before.get(key, 0)
             for key in CPU_FIELDS if key not in ("guest", "guest_nice")}
    total = sum(delta.values())
    if total <= 0:
        return 0.0, 0.0
    return ((delta["idle"] + delta["iowait"]) / total,
            delta["steal"] / total)


def parse_strace_summary(text):
    """{syscall: calls} of `strace -c`'s table; the total line, headers
    and rulers are left out. A row is "% time, seconds, usecs/call,
    calls, [errors,] syscall"."""
    calls = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) not in (5, 6) or fields[-1] == "total":
            continue
        try:
            float(fields[0])
            count = int(fields[3])
        except ValueError:
            continue
        calls[fields[-1]] = calls.get(fields[-1], 0) + count
    return calls


# -------------------------------------------------------------------
# Reading


def read(path):
    with open(path) as source:
        return source.read()


def sample_process(pid):
    """user and system seconds (all threads) and context switches summed
    over the live threads of one process."""
    user, system = parse_stat_times(read("/proc/%d/stat" % pid))
    voluntary = involuntary = 0
    task_dir = "/proc/%d/task" % pid
    for task in os.listdir(task_dir):
        try:
            text = read(os.path.join(task_dir, task, "status"))
        except FileNotFoundError:     # the thread ended meanwhile
            continue
        v, i = parse_switches(text)
        voluntary += v
        involuntary += i
    return {"user": user / HZ, "sys": system / HZ, "vcsw": voluntary,
            "ivcsw": involuntary}


def sample_rusage(usage):
    """The same dict from a resource.struct_rusage (os.wait4 of a child:
    every thread it had)."""
    return {"user": usage.ru_utime, "sys": usage.ru_stime,
            "vcsw": usage.ru_nvcsw, "ivcsw": usage.ru_nivcsw}


def sample_machine():
    return parse_cpu_line(read("/proc/stat"))
