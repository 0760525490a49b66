"""The house rules: imports run one way (no cycles, counting imports inside functions too), the
engine never imports a paper package, and notebooks hold no verdict logic of their own."""
import ast
import re
from pathlib import Path

from paperlib import repro

PKG = repro.REPO_ROOT / "paperlib"
PAPER_PACKAGES = ("paperlib.propagation", "paperlib.selftrain", "paperlib.video", "paperlib.duchdc", "paperlib.gridding",
                  "paperlib.crf", "paperlib.claims", "paperlib.report")


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        name = ".".join(p.relative_to(repro.REPO_ROOT).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the paperlib modules it imports anywhere in its body (lazy imports included)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in mods and t != name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_paperlib():
    assert cycles(import_graph()) == []


def test_engine_and_foundations_never_import_a_paper_package():
    graph = import_graph()
    low = [m for m in graph if m in ("paperlib.engine", "paperlib.config", "paperlib.schedules",
                                     "paperlib.metrics", "paperlib.losses", "paperlib.atomic",
                                     "paperlib.reference")
           or m.startswith(("paperlib.data", "paperlib.models"))]
    assert "paperlib.engine" in low
    bad = {m: sorted(d for d in graph[m] if d.startswith(PAPER_PACKAGES)) for m in low}
    assert {m: d for m, d in bad.items() if d} == {}


VERDICT_DEF = re.compile(r"^def (compare|verdict|stat|diff|at_every_k|check_claim|seed_compare)\b", re.M)


def test_notebooks_define_no_verdict_functions_and_use_the_claims_layer():
    for nb in repro.list_notebooks():
        text = Path(nb["path"]).read_text(encoding="utf-8")
        assert not VERDICT_DEF.search(text), f"{nb['name']} defines its own verdict function"
        assert "report_checks" not in text and "compare_with_spread" not in text, nb["name"]
        if any(w.startswith("tables/") and not w.startswith("tables/paperlib/") for w in nb["writes"]):
            assert "claims" in text, f"{nb['name']} writes paper tables without the claims layer"
