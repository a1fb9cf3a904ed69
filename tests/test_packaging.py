"""What a fresh clone relies on: declared dependencies, clean source notebooks, the two commands."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(spec: str) -> str:
    return re.sub(r"\s+", "", spec.split("#")[0]).lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_normalise(d) for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_normalise(d) for d in pip} == declared


def test_every_dependency_is_bounded_and_psrpcore_pinned():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        spec = _normalise(dep)
        assert "==" in spec or (">=" in spec and "<" in spec), f"{dep} needs lower and upper bounds"
    assert any(_normalise(d) == "psrpcore==0.3.1" for d in deps)
    assert any(_normalise(d).startswith("six") for d in deps), "scrapbook imports six without declaring it"


def test_source_notebooks_are_stored_without_outputs():
    notebooks = list((ROOT / "notebooks").glob("*.ipynb")) + list((ROOT / "tests" / "notebooks").glob("*.ipynb"))
    assert notebooks, "expected source notebooks"
    for path in notebooks:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{path.name} stores outputs"
                assert cell.get("execution_count") is None, f"{path.name} stores execution counts"


def test_source_notebooks_have_a_parameters_cell_without_secrets():
    for path in list((ROOT / "notebooks").glob("*.ipynb")) + list((ROOT / "tests" / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one 'parameters' cell"
        source = "".join(tagged[0]["source"])
        assert not re.search(r"(password|secret)\s*=\s*['\"](?!(env|file|keyring):|prompt)", source, re.I)


def test_readme_and_ci_use_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_data_file_of_the_package_is_declared_package_data():
    """An installed runbook needs its script templates, signature tables and export template."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["runbooklib"]
    package = ROOT / "runbooklib"
    data = [p.relative_to(package) for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert any(p.parts[0] == "export_templates" for p in data)
    undeclared = [str(p) for p in data if not any(p.match(pattern) for pattern in patterns)]
    assert not undeclared, f"not in [tool.setuptools.package-data]: {undeclared}"
