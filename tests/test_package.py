import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

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


def _hyphenated_checkout(tmp_path) -> Path:
    """The repository under its published name, which is not a valid Python identifier (a real folder:
    pytest resolves a symlinked root to its target's name)."""
    root = tmp_path / "ComfyUI-MoRe4D"
    (root / "tests").mkdir(parents=True)
    for name in ("__init__.py", "pyproject.toml", "tests/conftest.py", "tests/test_projection.py"):
        shutil.copy(REPO / name, root / name)
    for name in ("nodes", "more4d_core", "web"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    return root


def test_comfyui_loads_the_pack_under_its_folder_name(tmp_path):
    # how ComfyUI imports a custom node folder: a module spec named after the folder, with a search path
    code = (
        "import importlib.util, sys;"
        f"p = {str(_hyphenated_checkout(tmp_path))!r};"
        "spec = importlib.util.spec_from_file_location('ComfyUI-MoRe4D', p + '/__init__.py',"
        " submodule_search_locations=[p]);"
        "m = importlib.util.module_from_spec(spec); sys.modules['ComfyUI-MoRe4D'] = m; spec.loader.exec_module(m);"
        "assert 'More4DGenerate' in m.NODE_CLASS_MAPPINGS and m.WEB_DIRECTORY"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True,
                   env={**__import__("os").environ, "MORE4D_OUTPUT_DIR": str(tmp_path / "out")})


def test_the_readme_test_command_runs_in_a_clone_named_after_the_repository(tmp_path):
    # pytest imports the folder's __init__.py on its own when it sets up the folder; a relative
    # import there failed every test in a clone called ComfyUI-MoRe4D
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_projection.py"],
                          cwd=_hyphenated_checkout(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]


def test_help_descriptions_are_whole_first_paragraphs():
    from more4d_core.help_text import summary

    doc = """Train a model: ``python -m x`` on one
    device, or on many.

    Details that stay out of the summary."""
    assert summary(doc) == "Train a model: ``python -m x`` on one device, or on many."
    done = subprocess.run([sys.executable, "-m", "more4d_core.train", "--help"], cwd=REPO, capture_output=True, text=True)
    assert "on one device, or" in " ".join(done.stdout.split()) and "on many." in done.stdout


def test_commands_show_their_docstring_summary_and_usage_lines(capsys):
    from more4d_core.checkpoints import average, defaults
    from more4d_core.train import gate_fit

    for module in (average, defaults, gate_fit):
        with pytest.raises(SystemExit):
            module.main(["--help"])
        shown = " ".join(capsys.readouterr().out.split())
        first_paragraph = " ".join(module.__doc__.strip().split("\n\n")[0].split())
        assert first_paragraph in shown.split("options:")[0]  # the description, before the options
        rest = module.__doc__.split("\n", 2)[2]
        usage_line = next(line for line in rest.splitlines() if "python -m" in line)
        assert " ".join(usage_line.split()) in shown  # the docstring's own usage lines, as written


def test_every_core_module_imports_first():
    """Each module of the core imports in an interpreter where no other core module is loaded yet (a circular
    import shows only when the cycle's other end is imported first, e.g. by ``python -m more4d_core.eval``)."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import more4d_core\n"
        "names = [m.name for m in pkgutil.walk_packages(more4d_core.__path__, 'more4d_core.')]\n"
        "assert len(names) > 100, names\n"
        "failed = []\n"
        "for name in names:\n"
        "    for key in [k for k in sys.modules if k == 'more4d_core' or k.startswith('more4d_core.')]:\n"
        "        del sys.modules[key]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError as exc:\n"
        "        failed.append(f'{name}: {exc}')\n"
        "assert not failed, failed\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
