#!/usr/bin/env python3
"""Symbol names for lld's --symbol-ordering-file from callgrind dumps (bench/hot-code.sh): the
functions of OBJECT (the executable's path) that ran, dump by dump, most instructions first within
a dump; each name once.  usage: bench/hot_code.py OBJECT DUMP..."""
import collections
import os
import re
import sys

obj = os.path.realpath(sys.argv[1])
seen, out = set(), []
for path in sys.argv[2:]:
    obs, fns, cost = {}, {}, collections.Counter()
    cur_ob = cur = None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = re.match(r"^(c?ob)=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(3):
                obs[m.group(2)] = m.group(3)
            if m.group(1) == "ob":
                cur_ob = obs.get(m.group(2))
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            if m.group(3):
                fns[m.group(2)] = m.group(3)
            if m.group(1) == "fn":
                cur = (cur_ob, fns.get(m.group(2)))
                cost[cur] += 0
            continue
        m = re.match(r"^(?:[+-]?\d+|\*) (\d+)$", line)
        if m and cur:
            cost[cur] += int(m.group(1))
    for (ob, fn), _ in sorted(cost.items(), key=lambda kv: -kv[1]):
        fn = re.sub(r"'\d+$", "", fn or "")  # callgrind's recursion marks
        if ob and os.path.realpath(ob) == obj and fn and " " not in fn and "(" not in fn and fn not in seen:
            seen.add(fn)
            out.append(fn)
print("\n".join(out))
