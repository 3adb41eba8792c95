"""Loading a spec module: a Python file that defines ``SPEC = WorkSpec(...)``.

The file is imported under a private module name and registered with cloudpickle to be pickled by
value, so callables and HyperModels defined in it reach Ray workers that cannot import the file.
An error raised while the file runs becomes one line naming the file and its line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from pathlib import Path

from atlas_ray.errors import AtlasError, SpecError
from atlas_ray.search._spec import WorkSpec

__all__ = ["load_spec"]


def load_spec(path: str | Path) -> WorkSpec:
    """The ``SPEC`` of the spec module at ``path``."""
    source = Path(path)
    if not source.is_file():
        raise SpecError(f"spec file {source}: it does not exist, but must be a Python file defining `SPEC`.")
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:8]
    name = f"atlas_ray_spec_{source.stem}_{digest}"
    loader_spec = importlib.util.spec_from_file_location(name, source)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"spec file {source}: it cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as error:
        raise SpecError(f"spec file {source}, line {error.lineno}: {error.msg}") from None
    except Exception as error:
        line = _line_in(source, error)
        kind = "" if isinstance(error, AtlasError) else f"{type(error).__name__}: "
        raise SpecError(f"spec file {source}{line}: {kind}{' '.join(str(error).split())}") from None
    spec = getattr(module, "SPEC", None)
    if spec is None:
        raise SpecError(
            f"spec file {source}, field `SPEC`: it is not defined, "
            "but the file must define `SPEC = WorkSpec(...)`."
        )
    if not isinstance(spec, WorkSpec):
        raise SpecError(
            f"spec file {source}, field `SPEC`: it is a {type(spec).__name__}, but must be a WorkSpec."
        )
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(module)
    return spec


def _line_in(source: Path, error: BaseException) -> str:
    """``", line N"`` for the deepest frame of ``error``'s traceback inside ``source``."""
    resolved = str(source.resolve())
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename and Path(frame.filename).resolve().as_posix() == resolved
    ]
    return f", line {lines[-1]}" if lines else ""
