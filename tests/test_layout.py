"""The package's architecture, read from its imports: `models/` stands alone, nothing imports scripts or benchmarks."""

import ast
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parent.parent / "alhubert"
SUB_PACKAGES = ("models", "original", "training", "hub", "inference", "utils")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved against its package)."""
    package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            if not node.module:  # `from . import x` imports the sub-modules x
                names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def package_modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_sub_package_has_a_docstring():
    for name in SUB_PACKAGES:
        init = PACKAGE / name / "__init__.py"
        assert init.is_file(), f"alhubert/{name}/ is not a package"
        assert ast.get_docstring(ast.parse(init.read_text())), f"alhubert/{name}/__init__.py has no docstring"
    assert sorted(path.name for path in PACKAGE.glob("*.py")) == ["__init__.py", "cli.py"], (
        "modules belong in a sub-package"
    )


@pytest.mark.parametrize("path", sorted((PACKAGE / "models").glob("*.py")), ids=lambda path: path.name)
def test_models_import_nothing_else_of_the_package(path):
    outside = {name for name in imported_modules(path) if name.split(".")[0] == "alhubert"}
    outside = {name for name in outside if not name.startswith("alhubert.models")}
    assert not outside, f"{path.name} (remote code) imports {outside}"
    if path.name != "__init__.py":  # remote code is flat on the Hub: only siblings, by relative import
        for name in imported_modules(path):
            if name.startswith("alhubert.models."):
                assert (PACKAGE / "models" / f"{name.rsplit('.', 1)[1]}.py").is_file()


@pytest.mark.parametrize("path", package_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_nothing_imports_scripts_or_benchmarks(path):
    bad = {name for name in imported_modules(path) if name.split(".")[0] in ("scripts", "benchmarks", "tests")}
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_remote_code_of_each_model_is_its_module_and_the_siblings_it_imports():
    # what Transformers' custom_object_save copies next to the weights (flat on the Hub)
    from transformers.dynamic_module_utils import get_relative_import_files

    for module, needed in (
        ("modeling_alhubert", {"configuration_alhubert", "pipeline_audio_features", "audio"}),
        ("modeling_superb", {"modeling_alhubert", "configuration_alhubert"}),
    ):
        files = {Path(name).stem for name in get_relative_import_files(str(PACKAGE / "models" / f"{module}.py"))}
        assert needed <= files and "registration" not in files, (module, files)
        assert all((PACKAGE / "models" / f"{name}.py").is_file() for name in files)


def test_the_checker_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The import reader itself can fail: a models module importing the training code is caught."""
    fake = PACKAGE / "models" / "_layout_probe.py"
    monkeypatch.setattr(
        Path, "read_text", lambda self, *a, **k: "from ..training import data\nimport scripts.distill\n"
    )
    assert "alhubert.training" in imported_modules(fake) and "scripts.distill" in imported_modules(fake)
