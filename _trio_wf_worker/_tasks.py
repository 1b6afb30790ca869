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
    """Import the task ``identifier``; return ``(pid, task(*args, **kwargs), span)``.

    ``span`` is ``(began, ended)``, the wall-clock times (``time.time()``) of
    the task's run in this process: the parent places the run with them where
    its backend cannot tell when a task reached its worker (a Dask cluster,
    where it may wait in a task shared with other nodes).

    ``identifier`` is ``"package.module.function"`` or ``"/abs/file.py::function"``.
    With ``call=False`` the task itself is returned: the parent checks the
    identifiers of trusted graphs that way.  A file is loaded once per process,
    as a module with a private name (functions defined in it can run, but values
    of classes defined in it cannot be sent back to the parent).
    """
    import os
    import time

    task = load_task(identifier)
    if not callable(task):
        msg = f"task {identifier!r} is not callable, it is a {type(task).__name__}"
        raise TypeError(msg)
    if not call:
        return task
    began = time.time()
    value = task(*args, **kwargs)
    return os.getpid(), value, (began, time.time())


def load_task(identifier: str) -> Any:
    """The object ``identifier`` names, imported (a file is loaded once)."""
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
        return getattr(module, name)
    except AttributeError:
        msg = f"cannot import name {name!r} from {where!r}"
        raise ImportError(msg, name=where) from None


def run_class_task(identifier: str, inputs: dict[str, Any]) -> Any:
    """Run a ``class`` task: return ``(pid, outputs)``.

    The class declares ``input_names``, ``optional_input_names`` and
    ``output_names``; it is instantiated without arguments, given ``inputs``
    and ``outputs`` attributes (`TaskValues`), and its ``run()`` method called.
    """
    import os

    cls = load_task(identifier)
    check_task_class(cls, identifier)
    required = list(cls.input_names)
    optional = list(getattr(cls, "optional_input_names", ()))
    missing = [name for name in required if name not in inputs]
    if missing:
        msg = f"task class {identifier!r} requires inputs {required}; missing {missing}"
        raise TypeError(msg)
    declared = set(required) | set(optional)
    task = cls()
    task.inputs = TaskValues({k: v for k, v in inputs.items() if k in declared})
    task.outputs = TaskValues({}, writable=cls.output_names)
    task.run()
    unset = [name for name in cls.output_names if name not in task.outputs]
    if unset:
        msg = f"task class {identifier!r} did not set its outputs {unset}"
        raise RuntimeError(msg)
    return os.getpid(), dict(task.outputs.items())


def check_task_class(cls: Any, identifier: str) -> None:
    """Raise TypeError unless ``cls`` follows the class task protocol, or is an
    ewokscore ``Task`` (see `_ewoks_tasks`)."""
    if is_ewoks_task_class(cls):
        return
    problems = [
        f"no {name} list"
        for name in ("input_names", "output_names")
        if not isinstance(getattr(cls, name, None), (list, tuple))
    ]
    if not isinstance(cls, type) or not callable(getattr(cls, "run", None)):
        problems.insert(0, "not a class with a run() method")
    if problems:
        msg = (
            f"task {identifier!r} is not a task class: {', '.join(problems)}; "
            f"a task class is an ewokscore Task, or follows trio_wf's class "
            f"task protocol (see the trio_wf docs)"
        )
        raise TypeError(msg)


def is_ewoks_task_class(cls: object) -> bool:
    """Whether ``cls`` is a subclass of ewokscore's ``Task``.

    Never imports ewokscore: a class derived from ``Task`` was defined in a
    module that imported it already.
    """
    import sys

    module = sys.modules.get("ewokscore.task")
    return module is not None and isinstance(cls, type) and issubclass(cls, module.Task)


class TaskValues:
    """The ``inputs`` or ``outputs`` of a class task: read as attributes or items.

    ``self.inputs.x`` or ``self.inputs["x"]`` reads input ``x`` (an optional
    input that was not given is absent: test it with ``"x" in self.inputs`` or
    use ``self.inputs.get("x", default)``); ``self.outputs.y = value`` sets
    output ``y``, which must be one of the class's ``output_names``.
    """

    def __init__(self, values: dict[str, Any], writable: Any = ()) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_writable", frozenset(writable))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            msg = f"no value named {name!r}; there are {sorted(self._values)}"
            raise AttributeError(msg) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._writable:
            msg = (
                f"cannot set {name!r}: not one of the declared "
                f"output_names {sorted(self._writable)}"
            )
            raise AttributeError(msg)
        self._values[name] = value

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.__setattr__(name, value)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def get(self, name: str, default: Any = None) -> Any:
        """The value named ``name``, or ``default``."""
        return self._values.get(name, default)

    def keys(self) -> Any:
        """The names of the values."""
        return self._values.keys()

    def items(self) -> Any:
        """The ``(name, value)`` pairs."""
        return self._values.items()

    def __repr__(self) -> str:
        return f"TaskValues({self._values!r})"
