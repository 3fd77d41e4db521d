#!/usr/bin/env python3
"""Finds import cycles between the modules of one crate.

Reads the item graph that `cargo modules dependencies --no-externs --no-sysroot --no-owns`
prints (Graphviz), collapses every item into the module that defines it, and reports each
group of modules that use one another in a circle (a strongly connected component of more
than one module). Exit status 1 when there is one.

cargo-modules' own `--acyclic` works on items, where a type and its methods, or two mutually
recursive functions, already form a cycle; what we hold the line on is modules: two modules
that each import from the other cannot be read, tested or moved apart. A module and its own
ancestors are not counted (a child using its parent's items, and the parent re-exporting the
child's, is how Rust modules are built).

    cargo modules dependencies --package P --lib --no-externs --no-sysroot --no-owns \
        | scripts/module_cycles.py P
"""

import re
import sys

NODE = re.compile(r'^\s*"([^"]+)" \[.*\]; // "([^"]+)" node')
EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[label="uses"')


def is_ancestor(a, b):
    """True when module `a` contains module `b` (or is it)."""
    return a == b or b.startswith(a + "::")


def main():
    crate = sys.argv[1] if len(sys.argv) > 1 else "crate"
    kinds = {}
    uses = []
    for line in sys.stdin:
        if m := EDGE.match(line):
            uses.append((m.group(1), m.group(2)))
        elif m := NODE.match(line):
            kinds[m.group(1)] = m.group(2)
    modules = {path for path, kind in kinds.items() if kind in ("mod", "crate")}
    if not modules:
        print(f"error: no modules in the graph of {crate}", file=sys.stderr)
        return 2

    def module_of(path):
        while path not in modules and "::" in path:
            path = path.rsplit("::", 1)[0]
        return path

    graph = {m: set() for m in modules}
    example = {}
    for src, dst in uses:
        a, b = module_of(src), module_of(dst)
        if a in modules and b in modules and not is_ancestor(a, b) and not is_ancestor(b, a):
            graph[a].add(b)
            example.setdefault((a, b), (src, dst))

    # Tarjan's strongly connected components, iteratively (no recursion limit).
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    sccs.append(sorted(component))

    for component in sccs:
        print(f"import cycle between modules of {crate}: {', '.join(component)}")
        members = set(component)
        for (a, b), (src, dst) in sorted(example.items()):
            if a in members and b in members:
                print(f"    {a} -> {b}  ({src} uses {dst})")
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
