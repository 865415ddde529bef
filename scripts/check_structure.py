#!/usr/bin/env python3
"""The connector's module structure, checked (ARCHITECTURE.md, invariants).

Rules, over the library's sources (connector/src, without the binary's own modules, without
`#[cfg(test)]` blocks and without test suites in their own files, `#[cfg(test)] mod tests;`):
  http-store  no module under connector/src/http/ uses the store (`crate::store`): handlers call
              services, never the database.
  handler     no handler under connector/src/http/ takes the whole `Connector` (`web::Data<Connector>`):
              each takes the narrow services it needs; only the app builders in http/mod.rs see
              `Connector`, to build those services.
  cycle       no import cycle among connector's top-level modules (`crate::x` / `super::` paths
              that reach another top-level module, in `use` lines or in code). Reported as the
              edges `a -> b` that lie on a cycle.

Any violation fails; there is no allow-list.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "connector" / "src"


def strip(text: str) -> str:
    """The code without comments, string literals and `#[cfg(test)]` items."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:]):
            i += len(re.match(r"'(\\.|[^\\'])'", text[i:]).group(0))
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    # Drop `#[cfg(test)]` items (test modules and test-only functions): the attribute, then the item
    # up to its matching closing brace (or semicolon).
    while True:
        m = re.search(r"#\[cfg\(test\)\]", code)
        if not m:
            return code
        j, depth = m.end(), 0
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif code[j] == ";" and depth == 0:
                j += 1
                break
            j += 1
        code = code[: m.start()] + code[j:]


def module_path(path: Path) -> list:
    """`http/api.rs` -> ['http', 'api']; `catalog.rs` -> ['catalog']; `sim/data.rs` -> ['sim', 'data']."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return parts


def binary_modules() -> set:
    """Top-level modules that belong to the binary (declared in main.rs), not the library."""
    main = strip((SRC / "main.rs").read_text())
    return set(re.findall(r"^\s*(?:pub\s+)?mod\s+(\w+)\s*;", main, re.M))


def expand_use_groups(code: str) -> str:
    """`use crate::{a, b::c}` -> `crate::a crate::b::c` (one level of braces is enough here)."""

    def expand(m):
        prefix, inner = m.group(1), m.group(2)
        return " ".join(prefix + part.strip() for part in inner.split(",") if part.strip())

    return re.sub(r"((?:crate|super|self)(?:::\w+)*::)\{([^{}]*)\}", expand, code)


def references(path: Path, code: str, top_level: set) -> set:
    """The top-level modules a file refers to (other than its own)."""
    here = module_path(path)
    refs = set()
    code = expand_use_groups(code)
    for m in re.finditer(r"\bcrate::(\w+)", code):
        refs.add(m.group(1))
    # `super::…` chains: resolve against the file's module path. A file `a/b.rs` is module a::b, whose
    # `super` is `a`; `mod.rs`/`a.rs` is module a, whose `super` is the crate root.
    for m in re.finditer(r"\b((?:super::)+)(\w+)", code):
        ups = m.group(1).count("super::")
        base = here[: max(len(here) - ups, 0)] if len(here) >= ups else None
        if base is None:
            continue
        target = base + [m.group(2)]
        refs.add(target[0])
    own = here[0] if here else None
    return {r for r in refs if r in top_level and r != own}


def sccs(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_modules(files: list) -> set:
    """Modules declared `#[cfg(test)] mod x;` (a test suite in its own file), as module paths."""
    out = set()
    for p in files:
        for name in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", p.read_text()):
            out.add(tuple(module_path(p) + [name]))
    return out


def violations() -> list:
    binary = binary_modules()
    files = [p for p in sorted(SRC.rglob("*.rs")) if p.name not in ("lib.rs", "main.rs")]
    files = [p for p in files if module_path(p)[0] not in binary]
    tests = test_modules(files)
    files = [p for p in files if not any(tuple(module_path(p)[: len(t)]) == t for t in tests)]
    top_level = {module_path(p)[0] for p in files}
    found, graph = [], {m: set() for m in top_level}
    for p in files:
        code = strip(p.read_text())
        rel = p.relative_to(ROOT).as_posix()
        if module_path(p)[0] == "http" and re.search(r"\b(?:crate|caap_connector)::store\b", expand_use_groups(code)):
            found.append(f"http-store {rel}")
        if module_path(p)[0] == "http" and re.search(r"Data\s*<\s*(?:crate::service::)?Connector\s*>", code):
            found.append(f"handler {rel}")
        graph[module_path(p)[0]] |= references(p, code, top_level)
    for comp in sccs(graph):
        for a in sorted(comp):
            for b in sorted(graph[a] & comp):
                found.append(f"cycle {a} -> {b}")
    return found


def main() -> int:
    found = violations()
    if found:
        print("FAIL: structure violations (see ARCHITECTURE.md, invariants):")
        for v in found:
            print(f"  {v}")
        return 1
    print(
        "ok: no module under connector/src/http uses the store or takes the whole Connector, "
        "and no import cycle among connector's modules"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
