#!/usr/bin/env python3
"""Checks the workspace's crate graph, as docs/architecture.md states it:

- no cycle between workspace crates, dev-dependencies included;
- the client SDK's normal dependency tree holds no server, SFU, web
  framework, database, metrics, CLI or terminal-UI crate.

Run by scripts/test.sh; exits 1 with what is wrong.
"""
import json
import subprocess
import sys

FORBIDDEN_IN_SDK = {
    "parley-signaling", "parley-sfu", "parley-cli", "axum", "sqlx", "utoipa",
    "prometheus", "clap", "ratatui",
}

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--locked"]))
members = {p["id"] for p in meta["packages"] if p["id"] in meta["workspace_members"]}
names = {p["id"]: p["name"] for p in meta["packages"]}
edges = {}
for node in meta["resolve"]["nodes"]:
    if node["id"] not in members:
        continue
    edges[node["id"]] = {d["pkg"] for d in node["deps"] if d["pkg"] in members}

problems = []
# Cycles: depth-first search with colours.
colour = {m: 0 for m in members}
stack = []

def visit(n):
    colour[n] = 1
    stack.append(n)
    for m in sorted(edges.get(n, ())):
        if colour[m] == 1:
            cycle = stack[stack.index(m):] + [m]
            problems.append("dependency cycle: " + " -> ".join(names[c] for c in cycle))
        elif colour[m] == 0:
            visit(m)
    stack.pop()
    colour[n] = 2

for m in sorted(members):
    if colour[m] == 0:
        visit(m)

tree = subprocess.check_output(
    ["cargo", "tree", "--locked", "-p", "parley-client", "-e", "normal", "--prefix", "none"],
    text=True)
found = sorted({line.split()[0] for line in tree.splitlines() if line.split()
                and line.split()[0] in FORBIDDEN_IN_SDK})
if found:
    problems.append("parley-client's normal dependencies include " + ", ".join(found))

for p in problems:
    print(p, file=sys.stderr)
if problems:
    sys.exit(1)
print(f"crate graph: {len(members)} workspace crates, no cycle; the SDK links none of "
      + ", ".join(sorted(FORBIDDEN_IN_SDK)), file=sys.stderr)
