"""The Python worker's indexing checks, so an app the worker would refuse is refused here too.

On a Function App the worker imports `function_app.py`, finds exactly one top-level FunctionApp
(`loader.index_function_app`), then for every function resolves the annotations with
`typing.get_type_hints` and checks each bound parameter against the converter that
`azure.functions` registers for its binding type (`functions.Registry.add_indexed_function`).
One refused function fails indexing for the whole app: the host then registers no function at all.
The checks below follow the worker's order and wording (Azure/azure-functions-python-worker,
`azure_functions_worker/functions.py`), so the dev host's error is the one Azure's log shows.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any

from azure.functions import meta

IN, OUT, INOUT = 0, 1, 2  # azure.functions BindingDirection, the worker's BindingInfo.Direction
GENERIC = "generic"  # the worker's binding for a str/bytes annotation, whatever the binding type


class AppLoadError(RuntimeError):
    """function_app.py is missing, fails to import, or is an app the Python worker would refuse."""


class FunctionLoadError(AppLoadError):
    def __init__(self, function_name: str, msg: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {msg}")


@dataclass(frozen=True)
class BoundParam:
    name: str
    binding: str  # the converter it is decoded/encoded with: a binding type, or "generic"
    pytype: Any  # the annotation (inside func.Out[...] for outputs); None when unannotated
    out: bool


@dataclass(frozen=True)
class Signature:
    """What the worker keeps about one function after indexing it (its FunctionInfo)."""

    inputs: dict[str, BoundParam]
    outputs: dict[str, BoundParam]
    return_binding: str | None  # "$return"'s binding type, None without one
    requires_context: bool


class _Generic:
    """The worker's GenericBinding (bindings/generic.py): str/bytes in, str/bytes/bytearray out."""

    @classmethod
    def check_input_type_annotation(cls, pytype: type) -> bool:
        return issubclass(pytype, (str, bytes))

    @classmethod
    def check_output_type_annotation(cls, pytype: type) -> bool:
        return issubclass(pytype, (str, bytes, bytearray))

    @classmethod
    def has_implicit_output(cls) -> bool:
        return False

    @classmethod
    def decode(cls, data: meta.Datum, *, trigger_metadata: Any) -> Any:
        if data is None or data.type is None:
            return None
        if data.type in ("string", "bytes", "json"):
            return data.value
        raise ValueError(f'unexpected type of data received for the "generic" binding: {data.type!r}')

    @classmethod
    def encode(cls, obj: Any, *, expected_type: Any) -> meta.Datum:
        if isinstance(obj, str):
            return meta.Datum(obj, "string")
        if isinstance(obj, (bytes, bytearray)):
            return meta.Datum(bytes(obj), "bytes")
        raise NotImplementedError


def converter(binding: str) -> Any:
    """The converter the worker uses for a binding type (azure.functions' registry, else generic)."""
    found = meta.get_binding_registry().get(binding) if binding != GENERIC else None
    return found or _Generic


def _has_implicit_output(binding: str) -> bool:
    return bool(getattr(converter(binding), "has_implicit_output", lambda: False)())


def _is_generic_type(tp: Any) -> bool:
    """typing_inspect.is_generic_type: List[int], func.Out[str], a Generic subclass; not a Union."""
    if isinstance(tp, type) and issubclass(tp, typing.Generic):  # type: ignore[arg-type]
        return True
    origin = typing.get_origin(tp)
    return origin is not None and origin not in (typing.Union, types.UnionType, typing.Literal,
                                                  typing.ClassVar, typing.Final)


def _is_out(anno: Any) -> bool:
    origin = typing.get_origin(anno) if _is_generic_type(anno) else None
    candidate = origin if origin is not None else anno
    return isinstance(candidate, type) and candidate.__name__ == "Out"


def _type_name(pytype: Any) -> str:
    return getattr(pytype, "__name__", repr(pytype))


def _check_param(func_name: str, param: str, binding: Any, annotations: dict[str, Any]) -> BoundParam:
    has_anno = param in annotations
    anno = annotations.get(param)
    is_param_out = has_anno and _is_out(anno)
    is_binding_out = int(binding.direction) == OUT
    pytype = anno
    if is_param_out:
        args = typing.get_args(anno)
        if len(args) != 1:
            raise FunctionLoadError(func_name, f"binding {param} has invalid Out annotation {anno!r}")
        pytype = args[0]
    if has_anno and not isinstance(pytype, type) and not _is_generic_type(pytype):
        raise FunctionLoadError(func_name, f"binding {param} has invalid non-type annotation {anno!r}")
    if is_binding_out and has_anno and not is_param_out:
        raise FunctionLoadError(
            func_name, f'binding {param} is declared to have the "out" direction, but its annotation '
            "in Python is not a subclass of azure.functions.Out")
    if not is_binding_out and is_param_out:
        raise FunctionLoadError(
            func_name, f'binding {param} is declared to have the "in" direction in function.json, '
            "but its annotation is azure.functions.Out in Python")
    bind = GENERIC if has_anno and pytype in (str, bytes) and not _has_implicit_output(binding.type) \
        else binding.type
    if has_anno:
        conv = converter(bind)
        try:
            accepted = (conv.check_output_type_annotation(pytype) if is_param_out
                        else conv.check_input_type_annotation(pytype))
        except TypeError as exc:  # issubclass() on a generic alias: the worker fails the same way
            raise FunctionLoadError(func_name, f"binding {param}: {exc}") from exc
        if not accepted:
            raise FunctionLoadError(
                func_name, f'type of {param} binding in function.json "{binding.type}" does not '
                f'match its Python annotation "{_type_name(pytype)}"')
    return BoundParam(param, bind, pytype if has_anno else None, is_binding_out)


def index_function(function: Any) -> Signature:
    """The worker's `Registry.add_indexed_function` checks for one `app.get_functions()` entry."""
    func_name = function.get_function_name()
    user_function = function.get_user_function()
    params = dict(inspect.signature(user_function).parameters)
    try:
        annotations = typing.get_type_hints(user_function)
    except Exception as exc:  # NameError etc.: the worker's indexing stops with it
        raise AppLoadError(f"function {func_name}: its annotations cannot be resolved "
                           f"(typing.get_type_hints): {type(exc).__name__}: {exc}") from exc
    bound: dict[str, Any] = {}
    return_binding: str | None = None
    for binding in function.get_bindings():
        if int(binding.direction) == INOUT:
            raise FunctionLoadError(func_name, '"inout" bindings are not supported')
        if binding.name == "$return":
            if int(binding.direction) != OUT:
                raise FunctionLoadError(func_name, '"$return" binding must have direction set to "out"')
            return_binding = binding.type
        else:
            bound[binding.name] = binding
    requires_context = False
    if "context" in params and "context" not in bound:
        requires_context = True
        params.pop("context")
        ctx = annotations.get("context", None)
        if "context" in annotations and (not isinstance(ctx, type) or ctx.__name__ != "Context"):
            raise FunctionLoadError(func_name, 'the "context" parameter is expected to be of type '
                                    f"azure.functions.Context, got {ctx!r}")
    if set(params) - set(bound):
        raise FunctionLoadError(func_name, "the following parameters are declared in Python but not "
                                f"in function.json: {set(params) - set(bound)!r}")
    if set(bound) - set(params):
        raise FunctionLoadError(func_name, "the following parameters are declared in function.json "
                                f"but not in Python: {set(bound) - set(params)!r}")
    checked = [_check_param(func_name, name, bound[name], annotations) for name in params]
    if return_binding is not None and "return" in annotations:
        _check_return(func_name, return_binding, annotations["return"])
    return Signature(
        inputs={p.name: p for p in checked if not p.out},
        outputs={p.name: p for p in checked if p.out},
        return_binding=return_binding,
        requires_context=requires_context,
    )


def _check_return(func_name: str, binding: str, anno: Any) -> None:
    if _is_generic_type(anno) and _is_out(anno):
        raise FunctionLoadError(func_name, "return annotation should not be azure.functions.Out")
    if not isinstance(anno, type):
        raise FunctionLoadError(func_name, f"has invalid non-type return annotation {anno!r}")
    if not converter(binding).check_output_type_annotation(anno):
        raise FunctionLoadError(
            func_name, f'Python return annotation "{anno.__name__}" does not match binding type "{binding}"')


def find_app(module: Any, script: str) -> Any:
    """The worker's `index_function_app`: exactly one top-level FunctionRegister in the module."""
    from azure.functions import FunctionRegister

    found = None
    for name in module.__dir__():
        value = getattr(module, name, None)
        if isinstance(value, FunctionRegister):
            if found is not None:
                raise AppLoadError(f"{script}: More than one {found.__class__.__name__} or other top "
                                   "level function app instances are defined.")
            found = value
    if found is None:
        raise AppLoadError(f"{script}: Could not find top level function app instances in function_app.py.")
    return found
