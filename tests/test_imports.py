"""How the package imports: no cycles, the shipped core imports no wing, no script imports another, light modules
stay light, and `import lcm_hf` does not depend on the host program's `sys.argv`.

The import graph is read from the source with `ast`: every ``import`` / ``from ... import`` of an lcm_hf module,
at module level and inside functions, relative imports resolved (``from . import x`` is the submodule ``x`` where
one exists). The package's lazy public API (``lcm_hf._LAZY``, e.g. ``lcm_hf.LcmTrainer`` -> ``training.trainer``)
names modules by string and imports them on first use only: it is not an import edge.

What "core" means here: the files shipped as Hub remote code, i.e. everything the modules of the shipped classes
(config, model, processor, pipeline) import, transitively. They import no wing (``data/``, ``training/``,
``analysis/``, ``demo/``) anywhere. The other flat files (cli.py, console.py, hub.py, embeddings.py, conversion.py,
atomic.py, ...) are around the core: they import no wing at module level (importing them loads no wing); inside
a function, only the user-file readers of ``data/`` that the commands use (listed below).
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "lcm_hf")
WINGS = ("lcm_hf.data", "lcm_hf.training", "lcm_hf.analysis", "lcm_hf.demo")
SHIPPED_CLASSES = ("LcmConfig", "LcmForBeiPrediction", "LcmProcessor", "PhenotypePredictionPipeline")
# Around-the-core files calling a wing inside a function: the `lcm-hf predict` / `embed` commands read user files.
AROUND_THE_CORE_CALLS = {("lcm_hf.cli", "lcm_hf.data.readers"), ("lcm_hf.embeddings", "lcm_hf.data.readers")}
SCRIPT_FOLDERS = ("training", "processing", "modeling")


def package_modules() -> dict[str, str]:
    """{dotted module name: path} of every .py file of lcm_hf (a package is named by its folder)."""
    modules = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[: -len(".py")].replace(os.sep, ".")
                modules[dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
    return modules


def imported_modules(node, module: str, is_package: bool, modules) -> list[str]:
    """The lcm_hf modules an import statement loads (the deepest existing module of each imported name)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = []
    for target in targets:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in modules:
            found.append(target)
    return found


@pytest.fixture(scope="module")
def graph():
    """{module: {imported module: "module" | "function"}} (module level wins where both occur)."""
    modules = package_modules()
    edges = {name: {} for name in modules}
    for name, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in imported_modules(node, name, path.endswith("__init__.py"), modules):
                    if target != name and edges[name].get(target) != "module":
                        edges[name][target] = "module" if id(node) in top else "function"
    return edges


def strongly_connected(edges: dict[str, set]) -> list[list[str]]:
    """Tarjan's components of more than one module (the import cycles)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_of_both_kinds(graph):
    assert graph["lcm_hf.training.trainer"]["lcm_hf.training.selection"] == "module"
    assert graph["lcm_hf.training.recipes"]["lcm_hf.training.calibration"] == "function"
    assert graph["lcm_hf.atomic"]["lcm_hf.saving_lcm"] == "module"
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles(graph):
    """No cycle, counting imports inside functions too (stricter than the module-level cycles Python trips on)."""
    assert strongly_connected({name: set(targets) for name, targets in graph.items()}) == []


def test_the_shipped_core_imports_no_wing(graph):
    import lcm_hf

    roots = {f"lcm_hf.{lcm_hf._LAZY[name]}" for name in SHIPPED_CLASSES}
    core, todo = set(), list(roots)
    while todo:
        module = todo.pop()
        if module not in core:
            core.add(module)
            todo += list(graph[module])
    assert {"lcm_hf.modeling_lcm", "lcm_hf.readout_lcm", "lcm_hf.saving_lcm"} <= core
    assert all(module.count(".") == 1 for module in core), sorted(core)  # flat files only: no wing, no package
    assert "lcm_hf" not in core
    # Issue 17 item 10: a reader tells a shipped file by its name: the core is exactly the `*_lcm.py` files
    named = {name for name in package_modules() if name.count(".") == 1 and name.endswith("_lcm")}
    assert core == named, (sorted(core - named), sorted(named - core))


def test_flat_files_load_no_wing(graph):
    flat = [name for name, path in package_modules().items()
            if os.path.dirname(path) == PACKAGE and not path.endswith("__init__.py")]
    at_import = [(name, target) for name in flat for target, kind in graph[name].items()
                 if kind == "module" and target.startswith(WINGS)]
    assert at_import == []
    in_functions = {(name, target) for name in flat for target in graph[name] if target.startswith(WINGS)}
    assert in_functions <= AROUND_THE_CORE_CALLS


def test_only_the_demo_imports_the_demo(graph):
    importers = {name for name, targets in graph.items() for target in targets if target.startswith("lcm_hf.demo")}
    assert all(name.startswith("lcm_hf.demo") for name in importers), importers


def test_no_script_imports_another_script():
    scripts = {}
    for folder in SCRIPT_FOLDERS:
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            if name.endswith(".py"):
                scripts[name[: -len(".py")]] = os.path.join(ROOT, folder, name)
    assert {"pretrain", "finetune", "build_dataset", "export_to_hub"} <= set(scripts)
    for name, path in scripts.items():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            assert not {n.split(".")[0] for n in names} & set(scripts), (name, names)


def run_python(code: str, *argv: str) -> str:
    process = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT,
                             timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout.split()


def test_standard_library_modules_load_no_torch():
    code = ("import sys\nimport lcm_hf.atomic, lcm_hf.saving_lcm, lcm_hf.console\n"
            "print(*[name in sys.modules for name in ('torch', 'transformers', 'numpy')])")
    assert run_python(code) == ["False", "False", "False"]


@pytest.mark.parametrize("argv", [[], ["--help"]])
def test_import_lcm_hf_does_not_depend_on_argv(argv):
    """Whatever the host program's arguments: `import lcm_hf` loads no torch, and transformers' Auto classes
    and pipeline registry know LCM once they are imported."""
    code = ("import sys\nimport lcm_hf\nlight = 'torch' not in sys.modules\nimport transformers\n"
            "from transformers.pipelines import PIPELINE_REGISTRY\n"
            "print(light, type(transformers.AutoConfig.for_model('lcm')).__name__, "
            "'phenotype-prediction' in PIPELINE_REGISTRY.get_supported_tasks())")
    assert run_python(code, *argv) == ["True", "LcmConfig", "True"]


def test_auto_classes_know_lcm_after_a_direct_submodule_import():
    """A model class imported from its module (no public lcm_hf name used) still resolves through AutoModel."""
    code = ("from lcm_hf.configuration_lcm import LcmConfig\nimport transformers\n"
            "config = LcmConfig(num_rois=4, hidden_size=8, num_attention_heads=2)\n"
            "print(type(transformers.AutoModel.from_config(config)).__name__)")
    assert run_python(code) == ["LcmModel"]


RENDER_AGAIN = ("the stored help was rendered with other transformers / torch / tensorboard versions, so --help "
                "uses the live parser (seconds): render it again with `python -m lcm_hf.training.script_help`")


@pytest.mark.parametrize("script", ["pretrain.py", "finetune.py"])
def test_the_stored_training_help_is_the_live_parsers(script):
    """The training scripts' --help prints a stored text (no transformers): it must be what their parser prints."""
    from lcm_hf.training.script_help import render_help, stored_help

    live, stored = render_help(script), stored_help(script)
    assert "--momentum_epochs" in live and "--readout_policy" in live and "--save_strategy" in live
    if stored is None:
        pytest.skip(RENDER_AGAIN)
    assert stored == live


@pytest.mark.parametrize("script", ["pretrain.py", "finetune.py"])
def test_training_help_imports_no_torch(script):
    from lcm_hf.training.script_help import stored_help

    if stored_help(script) is None:
        pytest.skip(RENDER_AGAIN)
    code = (f"import runpy, sys\nsys.argv = [{script!r}, '--help']\nsys.path.insert(0, 'training')\ntry:\n"
            f"    runpy.run_path('training/{script}', run_name='__main__')\nexcept SystemExit as stop:\n"
            "    assert stop.code in (0, None), stop.code\n"
            "print('HEAVY', [m for m in ('torch', 'transformers') if m in sys.modules], file=sys.stderr)")
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "HEAVY []" in process.stderr and "--momentum_epochs" in process.stdout
