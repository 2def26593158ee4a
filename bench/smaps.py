#!/usr/bin/env python3
"""Where a process's resident memory is: /proc/PID/smaps_rollup, then Rss per mapped object and
permissions (largest first; `shared` = Shared_Clean + Shared_Dirty, `anon` = Anonymous).
usage: bench/smaps.py PID [ROWS]"""
import sys, re, collections
pid = sys.argv[1]
roll = {}
for line in open(f"/proc/{pid}/smaps_rollup"):
    m = re.match(r"(\w+):\s+(\d+) kB", line)
    if m: roll[m.group(1)] = int(m.group(2))
print("rollup: " + " ".join(f"{k}={roll[k]}" for k in ("Rss","Pss","Shared_Clean","Shared_Dirty","Private_Clean","Private_Dirty","Anonymous") if k in roll))
by = collections.OrderedDict()
name = None
for line in open(f"/proc/{pid}/smaps"):
    parts = line.split()
    if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
        perms = parts[1]
        path = parts[5] if len(parts) > 5 else "[anon]"
        path = path.rsplit("/", 1)[-1]
        name = (path, perms)
        by.setdefault(name, collections.Counter())
    elif parts and parts[0] in ("Rss:", "Private_Dirty:", "Private_Clean:", "Shared_Clean:", "Shared_Dirty:", "Anonymous:"):
        by[name][parts[0][:-1]] += int(parts[1])
rows = sorted(by.items(), key=lambda kv: -kv[1]["Rss"])[:int(sys.argv[2]) if len(sys.argv) > 2 else None]
for (path, perms), c in rows:
    if c["Rss"] == 0: continue
    print(f"{c['Rss']:7d} kB  {path:40s} {perms}  priv_dirty={c['Private_Dirty']} priv_clean={c['Private_Clean']} shared={c['Shared_Clean']+c['Shared_Dirty']} anon={c['Anonymous']}")
