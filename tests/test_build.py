"""Keeps BUILD honest: every module and test file has a Bazel target."""

import glob
import os

from tests.conftest import REPO_ROOT


def _targets():
    """Evaluates BUILD (Starlark is Python-compatible here) with recording rules."""
    targets = {}

    def rule(kind):
        def record(name, srcs=(), main=None, deps=(), **kwargs):
            assert name not in targets, f"duplicate target {name}"
            targets[name] = {"kind": kind, "srcs": list(srcs), "deps": list(deps), "main": main}
        return record

    scope = {
        "load": lambda *args: None,
        "package": lambda **kwargs: None,
        "requirement": lambda name: f"@pypi//{name}",
        "py_library": rule("py_library"),
        "py_binary": rule("py_binary"),
        "py_test": rule("py_test"),
        "glob": lambda *a, **k: (_ for _ in ()).throw(AssertionError("BUILD must list files")),
    }
    with open(os.path.join(REPO_ROOT, "BUILD")) as f:
        exec(compile(f.read(), "BUILD", "exec"), scope)
    return targets


def _files(pattern):
    return {os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, pattern), recursive=True)}


def test_every_listed_source_exists():
    for name, target in _targets().items():
        for src in target["srcs"]:
            assert os.path.isfile(os.path.join(REPO_ROOT, src)), f"{name} lists missing {src}"


def test_every_library_module_is_in_a_py_library():
    libraries = {s for t in _targets().values() if t["kind"] == "py_library" for s in t["srcs"]}
    binaries = {s for t in _targets().values() if t["kind"] == "py_binary" for s in t["srcs"]}
    for package in ("tf_factorgan", "export", "serving"):
        # export/ and serving/ also hold the checkout's commands (py_binaries).
        commands = binaries if package in ("export", "serving") else set()
        missing = _files(f"{package}/**/*.py") - libraries - commands
        assert not missing, f"modules without a py_library: {sorted(missing)}"


def test_every_entry_point_is_a_py_binary():
    binaries = {s for t in _targets().values() if t["kind"] == "py_binary" for s in t["srcs"]}
    libraries = {s for t in _targets().values() if t["kind"] == "py_library" for s in t["srcs"]}
    entry_points = (_files("trainers/*.py") | _files("benchmarks/*.py")) - libraries
    missing = entry_points - binaries
    assert not missing, f"entry points without a py_binary: {sorted(missing)}"


def test_every_test_file_is_a_py_test():
    tests = {t["srcs"][0] for t in _targets().values() if t["kind"] == "py_test"}
    missing = _files("tests/test_*.py") - tests
    assert not missing, f"test files without a py_test: {sorted(missing)}"


def _imported_modules(path: str) -> set:
    import ast

    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_export_and_serving_import_no_training_code():
    # A served model needs its spec and weights, not the experiments that trained it.
    training = ("trainers", "tf_factorgan.experiments", "tf_factorgan.trainer", "tf_factorgan.gan",
                "tf_factorgan.cyclegan", "tf_factorgan.cli.training")
    paths = (_files("export/*.py") | _files("serving/*.py") | _files("tf_factorgan/export/*.py")
             | _files("tf_factorgan/serving/*.py"))
    for path in sorted(paths):
        bad = {m for m in _imported_modules(os.path.join(REPO_ROOT, path))
               if any(m == t or m.startswith(t + ".") for t in training)}
        assert not bad, f"{path} imports training code: {sorted(bad)}"
