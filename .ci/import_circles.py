#!/usr/bin/env python3
"""Finds import circles between the modules (files) of each crate.

A module is one source file (`src/a/b.rs` or `src/a/b/mod.rs`). An edge
a -> b is a `use crate::...` or `use super::...` in a's non-test code whose
path resolves to b (the longest existing module prefix of the path; a
parent `mod.rs` importing its own child is not counted as the child's user,
and neither is a child importing its parent's re-exports of itself).
Prints every strongly connected component of more than one module and
exits 1 if there is any.

Usage: .ci/import_circles.py [CRATE_DIR ...]   (default: every crate)
"""
import os
import re
import sys

USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+((?:crate|super)(?:::|\b)[^;]*);", re.S | re.M)


def modules(src):
    """module path tuple -> file"""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            if rel and rel[0] == "bin":
                continue
            out[tuple(rel)] = os.path.join(root, f)
    return out


def expand(path):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e]"""
    path = re.sub(r"\s+", "", path)
    i = path.find("{")
    if i < 0:
        return [path]
    depth, parts, start = 0, [], i + 1
    for j in range(i, len(path)):
        c = path[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                parts.append(path[start:j])
                break
        elif c == "," and depth == 1:
            parts.append(path[start:j])
            start = j + 1
    out = []
    for p in parts:
        if p:
            out += expand(path[:i] + p)
    return out


def non_test(text):
    """The file's text up to its first `#[cfg(test)]` module."""
    m = re.search(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s", text)
    return text[: m.start()] if m else text


def edges(mods):
    g = {m: set() for m in mods}
    for mod, f in mods.items():
        text = non_test(open(f, encoding="utf-8").read())
        for m in USE.finditer(text):
            for p in expand(m.group(1)):
                segs = [s for s in p.split("::") if s]
                if not segs:
                    continue
                if segs[0] == "crate":
                    target = segs[1:]
                else:
                    base = list(mod)
                    while segs and segs[0] == "super":
                        segs = segs[1:]
                        base = base[:-1]
                    target = base + segs
                for n in range(len(target), -1, -1):
                    t = tuple(target[:n])
                    if t in mods:
                        # a parent is not its child's user, nor the other way
                        if t != mod and t != mod[: len(t)] and mod != t[: len(mod)]:
                            g[mod].add(t)
                        break
    return g


def sccs(g):
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in g:
        if v not in index:
            visit(v)
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = sys.argv[1:] or ["common", "core", "server", "monitor", "tests"]
    bad = 0
    for c in crates:
        mods = modules(os.path.join(root, c, "src"))
        g = edges(mods)
        count = sum(len(v) for v in g.values())
        circles = [sorted(x) for x in sccs(g) if len(x) > 1]
        print(f"{c}: {len(mods)} modules, {count} import edges, {len(circles)} circles")
        for comp in circles:
            bad += 1
            print("  circle: " + " <-> ".join("::".join(m) or "(root)" for m in comp))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
