"""When the LCM classes get registered with transformers' Auto classes and pipeline registry: lazily, never
on the strength of ``sys.argv``.

``import lcm_hf`` imports only the standard library (so ``lcm-hf --help`` answers without torch) and registers
at the first of these moments:

- the first use of a public name of `lcm_hf` (``lcm_hf.LcmConfig``, ``from lcm_hf import ...``);
- transformers' Auto machinery or pipeline registry being imported (``transformers.AutoModel``,
  ``transformers.pipeline``): ``import lcm_hf`` installs an import hook (:class:`RegisterOnImport`) that
  registers once that import is complete, so ``import lcm_hf`` then ``AutoModel.from_pretrained(folder)`` works;
- ``import lcm_hf`` itself when that machinery is loaded already.

The hook never registers while a transformers or lcm_hf module is half-imported (registering imports both); it
waits for the end of the import under way, then removes itself.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

# Importing either means transformers may look up the "lcm" model type or the "phenotype-prediction" task.
TRIGGERS = ("transformers.models.auto.configuration_auto", "transformers.pipelines")
_WATCHED = ("transformers", "lcm_hf")


def _watched(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in _WATCHED)


def _half_imported(done: str) -> bool:
    """Whether a transformers or lcm_hf module other than `done` is being imported (its code still running)."""
    for name, module in list(sys.modules.items()):
        if name != done and _watched(name) and getattr(getattr(module, "__spec__", None), "_initializing", False):
            return True
    return False


class _NotifyingLoader:
    """A module loader that calls `after(name)` once the module's code has run (other attributes: the loader's)."""

    def __init__(self, loader, after: Callable[[str], None]):
        self._loader, self._after = loader, after

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._after(module.__name__)


class RegisterOnImport:
    """A `sys.meta_path` finder (`importlib.abc.MetaPathFinder`'s protocol, without importing it) that watches transformers and lcm_hf imports and runs `register()` after the
    first complete import of a :data:`TRIGGERS` module (deferred to the end of any transformers/lcm_hf import
    under way); it then removes itself."""

    def __init__(self, register: Callable[[], None]):
        self._register = register
        self._pending = False

    def find_spec(self, fullname, path, target=None):
        if not _watched(fullname):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _NotifyingLoader(spec.loader, self._imported)
                return spec
        return None

    def _imported(self, name: str) -> None:
        self._pending = self._pending or name in TRIGGERS
        if self._pending and not _half_imported(name):
            self.remove()
            try:  # never fail the user's transformers import; the first lcm_hf name used registers again
                self._register()
            except Exception as error:
                warnings.warn(f"lcm_hf: registering the LCM Auto classes after importing {name} failed ({error!r}); "
                              "they are registered on the first use of an lcm_hf name", RuntimeWarning, stacklevel=2)

    def start(self, importing: str) -> None:
        """Register now if a trigger is loaded already and nothing but `importing` (the package being imported)
        is half-imported; otherwise install the hook."""
        self._pending = any(name in sys.modules for name in TRIGGERS)
        if self._pending and not _half_imported(importing):
            self._register()
        elif self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


__all__ = ["TRIGGERS", "RegisterOnImport"]
