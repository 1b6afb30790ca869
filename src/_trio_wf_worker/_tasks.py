"""The code that runs a workflow node inside a worker: standard library only.

It lives in the worker package, so `run_task` is pickled by reference and a
worker running workflow nodes never imports trio_wf, and so never trio (start-up
time is dispatch latency, and user code should see a plain Python process).
"""

from __future__ import annotations

from typing import Any


def run_task(
    identifier: str, args: tuple[Any, ...], kwargs: dict[str, Any], call: bool = True
) -> Any:
    """Import the task ``identifier`` and return ``(pid, task(*args, **kwargs))``.

    ``identifier`` is ``"package.module.function"`` or ``"/abs/file.py::function"``.
    With ``call=False`` the task itself is returned: the parent checks the
    identifiers of trusted graphs that way.  A file is loaded once per process,
    as a module with a private name (functions defined in it can run, but values
    of classes defined in it cannot be sent back to the parent).
    """
    import importlib
    import os
    import sys

    if "::" in identifier:
        import hashlib
        import importlib.util

        where, _, name = identifier.rpartition("::")
        digest = hashlib.sha256(where.encode()).hexdigest()[:16]
        module_name = f"_trio_wf_task_file_{digest}"
        module = sys.modules.get(module_name)
        if module is None:
            if not os.path.isfile(where):
                msg = f"task file {where!r} does not exist"
                raise ImportError(msg, path=where)
            spec = importlib.util.spec_from_file_location(module_name, where)
            if spec is None or spec.loader is None:
                msg = f"task file {where!r} is not a Python source file"
                raise ImportError(msg, path=where)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
    else:
        where, _, name = identifier.rpartition(".")
        module = importlib.import_module(where)
    try:
        task = getattr(module, name)
    except AttributeError:
        msg = f"cannot import name {name!r} from {where!r}"
        raise ImportError(msg, name=where) from None
    if not callable(task):
        msg = f"task {identifier!r} is not callable, it is a {type(task).__name__}"
        raise TypeError(msg)
    if not call:
        return task
    return os.getpid(), task(*args, **kwargs)
