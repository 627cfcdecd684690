import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_core_imports_without_comfyui():
    code = (
        "import sys, more4d_core, more4d_core.render, more4d_core.export, more4d_core.camera;"
        "assert not any(m == 'comfy' or m.startswith('comfy.') or m == 'folder_paths' for m in sys.modules);"
        "assert 'numba' not in sys.modules, 'numba must load lazily'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_torch_is_never_pinned():
    reqs = (REPO / "requirements.txt").read_text().splitlines()
    torch_lines = [r for r in reqs if r.strip().startswith("torch")]
    assert torch_lines and all("==" not in r and ">=" in r for r in torch_lines)
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("torch>=") for d in deps) and not any(d.startswith("torch==") for d in deps)


def test_registry_metadata():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    comfy = meta["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] and comfy["Icon"]
    assert "comfyui" not in meta["project"]["name"].lower()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    start = readme.index("<!-- test-command -->")
    block = readme[start:].split("```")[1].strip().removeprefix("bash").strip()
    assert block in ci, "the .ci/run script must call the README's install-and-test command"
