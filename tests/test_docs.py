"""The README and the pages in docs/ stay true to the code: every `python -m` command in
a shell block names a module that exists and only flags its --help lists, every script
path exists, and every relative link and image points at a file (and heading) that
exists. The Python examples of docs/python_api.md run in tests/test_keras_api.py and
tests/test_packaging.py.
"""

import concurrent.futures
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = sorted([os.path.join(REPO_ROOT, "README.md"), os.path.join(REPO_ROOT, "CHANGELOG.md"),
                *glob.glob(os.path.join(REPO_ROOT, "docs", "*.md"))])
# Flags every absl program takes, and absl's negation of a boolean flag.
ABSL_FLAGS = {"flagfile", "helpfull", "help"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _relative(path: str) -> str:
    return os.path.relpath(path, REPO_ROOT)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _shell_commands(text: str):
    """Each command line of the ```sh blocks, continuation lines joined, shell
    variables assigned earlier in the block (NAME="...") substituted."""
    for language, block in FENCE.findall(text):
        if language not in ("sh", "bash", "shell"):
            continue
        variables = {}
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            assignment = re.fullmatch(r"(\w+)=(\"[^\"]*\"|\S+)", line)
            if assignment:
                variables[assignment.group(1)] = assignment.group(2).strip('"')
                continue
            for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
                line = line.replace("$" + name, value)
            yield line


def _invocations():
    """(page, module, flags) of every `python -m <module>` of this project in a shell block."""
    found = []
    for page in PAGES:
        for line in _shell_commands(_read(page)):
            for match in re.finditer(r"python3? -m ((?:trainers|export|serving|benchmarks)\.\w+)"
                                     r"(.*?)(?=$|&&|\|\||;|\||(?<!\S)&(?!\S)|(?<!\S)#)", line):
                words = shlex.split(match.group(2), comments=True, posix=True)
                flags = {w[2:].split("=", 1)[0] for w in words if w.startswith("--")}
                found.append((_relative(page), match.group(1), flags))
    return found


def _help(module: str) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr, done.returncode


def test_every_documented_command_uses_flags_its_module_has():
    invocations = _invocations()
    modules = sorted({module for _, module, _ in invocations})
    assert {"trainers.paired_mnist", "trainers.image2image", "export.export", "serving.serve",
            "serving.cli"} <= set(modules), modules
    for module in modules:
        path = os.path.join(REPO_ROOT, *module.split(".")) + ".py"
        assert os.path.exists(path), f"a page runs python -m {module}, which does not exist"
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        helps = dict(zip(modules, pool.map(_help, modules)))
    problems = []
    for page, module, flags in invocations:
        text, returncode = helps[module]
        assert returncode == 0, f"python -m {module} --help failed:\n{text[-2000:]}"
        known = set(re.findall(r"--(\w+)", text)) | ABSL_FLAGS
        for flag in sorted(flags):
            if flag not in known and not (flag.startswith("no") and flag[2:] in known):
                problems.append(f"{page}: python -m {module} --{flag}")
    assert not problems, "flags that --help does not list:\n" + "\n".join(problems)


def test_every_documented_script_exists():
    for page in PAGES:
        for line in _shell_commands(_read(page)):
            for script in re.findall(r"(?<![\w/.])((?:tools|tests|benchmarks)/[\w/]+\.py)", line):
                assert os.path.exists(os.path.join(REPO_ROOT, script)), (
                    f"{_relative(page)} runs {script}, which does not exist")


def _anchors(path: str) -> set[str]:
    """GitHub's heading ids of a Markdown file (headings inside code blocks skipped)."""
    text = FENCE.sub("", _read(path))
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_links_and_images_point_at_what_exists(page):
    text = FENCE.sub("", _read(page))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is no link
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(resolved):
            problems.append(f"{target}: no such file")
        elif anchor and resolved.endswith(".md") and anchor not in _anchors(resolved):
            problems.append(f"{target}: no heading with that id")
    assert not problems, f"{_relative(page)}:\n" + "\n".join(problems)


def test_readme_keeps_the_quick_start_and_links_every_page():
    readme = _read(os.path.join(REPO_ROOT, "README.md"))
    assert "make demo" in readme and "make test" in readme
    for page in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")):
        assert f"docs/{os.path.basename(page)}" in readme, f"the README does not link {page}"
