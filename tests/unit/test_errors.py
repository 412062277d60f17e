"""mpigroup.errors: one tree under MPIGroupError, and the docstring draws it truthfully."""
from __future__ import annotations

import builtins
import inspect
import re

import mpigroup
from mpigroup import errors


def _classes() -> dict[str, type]:
    return {name: obj for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__}


def test_every_error_is_an_mpigroup_error():
    for name, cls in _classes().items():
        if cls is not errors.MPIGroupError:
            assert issubclass(cls, errors.MPIGroupError), name


def test_the_docstring_tree_names_real_classes_with_their_parents():
    tree = [line for line in errors.__doc__.splitlines() if re.match(r"\s*(MPIGroupError|[│ ]*[├└]── )", line)]
    assert tree and tree[0].strip() == "MPIGroupError"
    classes = _classes()
    parents: list[str] = ["MPIGroupError"]  # parents[depth] = class at that depth
    for line in tree[1:]:
        match = re.match(r"^(\s*(?:[│ ]   )*)[├└]── (\w+)(?: \((\w+)\))?", line)
        assert match, line
        depth = (len(match.group(1)) - (len(tree[0]) - len(tree[0].lstrip()))) // 4 + 1
        name, stdlib_base = match.group(2), match.group(3)
        assert name in classes, f"{name} is in the docstring tree but not in mpigroup.errors"
        parent = parents[depth - 1]
        assert issubclass(classes[name], classes[parent]), f"{name} is not a {parent}"
        if stdlib_base:
            assert issubclass(classes[name], getattr(builtins, stdlib_base)), (name, stdlib_base)
        del parents[depth:]
        parents.append(name)
    drawn = {re.search(r"── (\w+)", line).group(1) for line in tree[1:]} | {"MPIGroupError"}
    assert set(classes) <= drawn, f"missing from the docstring tree: {sorted(set(classes) - drawn)}"


def test_public_error_names_come_from_errors():
    for name in ("SettingError", "ShuttingDown", "HeadUnreachable", "HostLost", "SharedObjectError", "ObjectGone",
                 "LockOwnerDied", "QueueBroken", "ArenaFull", "PoolError", "BrokenPool", "WorkerLostError",
                 "PoolTerminated", "TelemetryError"):
        assert mpigroup._EXPORTS[name] == "mpigroup.errors" and name in mpigroup.__all__
        assert getattr(mpigroup, name) is getattr(errors, name)


def test_old_telemetry_name_is_the_same_class():
    from mpigroup.telemetry import monitor

    assert monitor.GPUUnavailable is errors.GPUUnavailable
    assert issubclass(errors.GPUUnavailable, errors.TelemetryError) and issubclass(errors.GPUUnavailable, RuntimeError)
