"""``@valueclass``: a frozen dataclass whose methods are not compiled at import.

``dataclasses.dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for every class and ``exec``s it: on CPython
3.11 that compile is about 1 ms per class, a sixth of a command-line re-pull. ``valueclass``
lets ``dataclasses`` do everything that compiles nothing (fields, defaults, ``__match_args__``,
slots, ``__dataclass_fields__``, so ``fields``/``replace``/``asdict``/``is_dataclass`` work) and
attaches generic methods instead:

* ``__init__`` is a copy of one template code object given the class's parameter names, kinds
  and defaults (``CodeType.replace``): the interpreter binds the arguments itself, so the
  ``TypeError`` messages and ``inspect.signature`` are the ones a dataclass has. Its body hands
  the bound arguments to a closure that stores the fields, calls the default factories and
  ``__post_init__``.
* ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``/``__delattr__`` (frozen) are closures
  doing what the generated methods do, under the rules of ``dataclasses`` (which fields take
  part, when ``__hash__`` is added, set to ``None`` or left alone).

``typing.dataclass_transform`` tells type checkers the class is a (by default frozen) dataclass.
"""

from __future__ import annotations

import abc
import builtins
import dataclasses
import inspect
import reprlib
import sys
import types
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["valueclass"]

_T = TypeVar("_T")

# Private names of ``dataclasses`` (the same from 3.7 to 3.13): the default that means "call
# the factory" (so a signature compares equal to a dataclass's), and the kinds of entries in
# ``__dataclass_fields__`` that ``__init__`` takes (fields and InitVars, not ClassVars).
_HAS_DEFAULT_FACTORY: Any = vars(dataclasses)["_HAS_DEFAULT_FACTORY"]
_FIELD: Any = vars(dataclasses)["_FIELD"]
_FIELD_INITVAR: Any = vars(dataclasses)["_FIELD_INITVAR"]
_MISSING: Any = dataclasses.MISSING

# How ``__init__`` fills a field, in field order (dataclasses' ``_field_init``).
_ARGUMENT, _ARGUMENT_OR_FACTORY, _FACTORY, _DEFAULT = range(4)


# Each ``__init__`` is this code with the class's parameters and its own globals, in which
# ``_store_arguments`` is that class's closure. The code reads no local variable by index, so
# any parameter list fits it.
_store_arguments: Callable[[dict[str, Any]], None]


def _init_template(self: object) -> None:
    return _store_arguments(locals())  # noqa: F821 (bound in each copy's globals)


def _make_init(cls: type, frozen: bool, slots: bool) -> types.FunctionType:
    every = [
        f
        for f in cls.__dict__["__dataclass_fields__"].values()
        if f._field_type in (_FIELD, _FIELD_INITVAR)
    ]
    initvar_names = {f.name for f in every if f._field_type is _FIELD_INITVAR}
    parameters = [f for f in every if f.init and not f.kw_only]
    keyword_only = [f for f in every if f.init and f.kw_only]

    seen_default = None
    for f in parameters:
        if f.default is not _MISSING or f.default_factory is not _MISSING:
            seen_default = f.name
        elif seen_default:
            named = f" {seen_default!r}" if sys.version_info >= (3, 13) else ""  # as it says
            raise TypeError(f"non-default argument {f.name!r} follows default argument{named}")

    steps: list[tuple[str, int, Any]] = []
    for f in every:
        if f.name in initvar_names:
            continue
        if f.default_factory is not _MISSING:
            steps.append((f.name, _ARGUMENT_OR_FACTORY if f.init else _FACTORY, f.default_factory))
        elif f.init:
            steps.append((f.name, _ARGUMENT, None))
        elif slots and f.default is not _MISSING:
            steps.append((f.name, _DEFAULT, f.default))
    post_init = "__post_init__" if hasattr(cls, "__post_init__") else None
    post_init_names = [f.name for f in every if f.name in initvar_names]
    self_name = "__dataclass_self__" if "self" in {f.name for f in every} else "self"
    assign = object.__setattr__ if frozen else setattr

    def store_arguments(arguments: dict[str, Any]) -> None:
        self = arguments[self_name]
        for name, how, extra in steps:
            if how == _ARGUMENT:
                value = arguments[name]
            elif how == _ARGUMENT_OR_FACTORY:
                value = arguments[name]
                if value is _HAS_DEFAULT_FACTORY:
                    value = extra()
            elif how == _FACTORY:
                value = extra()
            else:
                value = extra
            assign(self, name, value)
        if post_init is not None:
            getattr(self, post_init)(*[arguments[name] for name in post_init_names])

    def default_of(f: dataclasses.Field[Any]) -> Any:
        return _HAS_DEFAULT_FACTORY if f.default_factory is not _MISSING else f.default

    names = [self_name, *(f.name for f in parameters), *(f.name for f in keyword_only)]
    qualname = f"{cls.__qualname__}.__init__"
    code = _init_template.__code__.replace(
        co_argcount=1 + len(parameters),
        co_kwonlyargcount=len(keyword_only),
        co_varnames=tuple(names),
        co_nlocals=len(names),
        co_name="__init__",
        co_qualname=qualname,
    )
    namespace = {
        "__builtins__": builtins,
        "__name__": cls.__module__,
        "_store_arguments": store_arguments,
    }
    positional_defaults = tuple(default_of(f) for f in parameters if default_of(f) is not _MISSING)
    init = types.FunctionType(code, namespace, "__init__", positional_defaults or None)
    init.__kwdefaults__ = {
        f.name: default_of(f) for f in keyword_only if default_of(f) is not _MISSING
    } or None
    init.__qualname__ = qualname
    init.__annotations__ = {**{f.name: f.type for f in parameters + keyword_only}, "return": None}
    return init


def _tuple_of(names: list[str]) -> Callable[[object], tuple[Any, ...]]:
    """A function giving the named attributes as a tuple (what the generated methods compare)."""
    if len(names) >= 2:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda instance: (one(instance),)
    return lambda instance: ()


def _make_repr(names: list[str]) -> Callable[[object], str]:
    getters = [(name, attrgetter(name)) for name in names]

    @reprlib.recursive_repr()
    def __repr__(self: object) -> str:
        shown = ", ".join(f"{name}={get(self)!r}" for name, get in getters)
        return f"{self.__class__.__qualname__}({shown})"

    return __repr__


def _make_eq(names: list[str]) -> Callable[[object, object], Any]:
    values = _tuple_of(names)

    def __eq__(self: object, other: object) -> Any:
        if other.__class__ is self.__class__:
            return values(self) == values(other)
        return NotImplemented

    return __eq__


def _make_eq_fieldwise(names: list[str]) -> Callable[[object, object], Any]:
    """Python 3.13's: the same object is equal, else ``a == a2 and b == b2 ...`` (the first
    false result, as ``and`` gives it)."""
    getters = [attrgetter(name) for name in names]

    def __eq__(self: object, other: object) -> Any:
        if self is other:
            return True
        if other.__class__ is not self.__class__:
            return NotImplemented
        result: Any = True
        for get in getters:
            result = get(self) == get(other)
            if not result:
                return result
        return result

    return __eq__


# What the generated __eq__ does changed in 3.13; a valueclass does what this Python's does.
_make_equality = _make_eq_fieldwise if sys.version_info >= (3, 13) else _make_eq


def _make_hash(values: Callable[[object], tuple[Any, ...]]) -> Callable[[object], int]:
    def __hash__(self: object) -> int:
        return hash(values(self))

    return __hash__


def _make_frozen(cls: Any, names: Iterable[str]) -> list[Callable[..., None]]:
    fields = frozenset(names)

    def __setattr__(self: Any, name: str, value: object) -> None:
        if type(self) is cls or name in fields:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in fields:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return [__setattr__, __delattr__]


def _frozen_getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in dataclasses.fields(self)]


def _frozen_setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(dataclasses.fields(self), state, strict=False):
        object.__setattr__(self, f.name, value)


def _put(cls: type, name: str, method: Callable[..., Any]) -> None:
    method.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, method)


def _attach(cls: type, name: str, method: Callable[..., Any]) -> None:
    """Set ``name`` unless the class defines it itself (as dataclasses does)."""
    if name not in cls.__dict__:
        _put(cls, name, method)


def _hash_action(unsafe_hash: bool, eq: bool, frozen: bool, explicit_hash: bool) -> str:
    """What dataclasses does to ``__hash__``: "add", "none" (unhashable), "keep" or "raise"."""
    if unsafe_hash:
        return "raise" if explicit_hash else "add"
    if not eq or explicit_hash:
        return "keep"
    return "add" if frozen else "none"


def _process(
    cls: type[_T],
    *,
    init: bool,
    repr: bool,
    eq: bool,
    frozen: bool,
    unsafe_hash: bool,
    match_args: bool,
    kw_only: bool,
    slots: bool,
    weakref_slot: bool,
) -> type[_T]:
    class_hash = cls.__dict__.get("__hash__", _MISSING)
    implicit_none = class_hash is None and "__eq__" in cls.__dict__
    explicit_hash = not (class_hash is _MISSING or implicit_none)
    documented = bool(cls.__dict__.get("__doc__"))
    bases: list[Any] = [base for base in cls.__mro__[1:] if hasattr(base, "__dataclass_fields__")]
    frozen_base = any(base.__dataclass_params__.frozen for base in bases)
    if frozen and bases and not frozen_base:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    # dataclasses refuses a non-frozen class on a frozen base: only then is it told the truth
    # (and compiles __setattr__ and __delattr__); otherwise it compiles nothing.
    processed: Any = dataclasses.dataclass(
        cls,
        init=False,
        repr=False,
        eq=False,
        frozen=frozen and frozen_base,
        match_args=match_args,
        kw_only=kw_only,
        slots=slots,
        weakref_slot=weakref_slot,
    )
    # What the class is, for dataclasses' checks on subclasses and for readers.
    params = processed.__dataclass_params__
    params.init, params.repr, params.eq = init, repr, eq
    params.frozen, params.unsafe_hash = frozen, unsafe_hash

    fields = dataclasses.fields(processed)
    if init:
        _attach(processed, "__init__", _make_init(processed, frozen, slots))
    action = _hash_action(unsafe_hash, eq, frozen, explicit_hash)
    refused = [name for name in ("__setattr__", "__delattr__") if name in processed.__dict__]
    refused = refused if frozen and not frozen_base else []
    if action == "raise":  # Python 3.13 checks __hash__ first
        refused.insert(0 if sys.version_info >= (3, 13) else len(refused), "__hash__")
    if refused:
        raise TypeError(f"Cannot overwrite attribute {refused[0]} in class {cls.__name__}")
    if repr:
        _attach(processed, "__repr__", _make_repr([f.name for f in fields if f.repr]))
    if eq:
        _attach(processed, "__eq__", _make_equality([f.name for f in fields if f.compare]))
    if frozen and not frozen_base:
        for method in _make_frozen(processed, [f.name for f in fields]):
            _put(processed, method.__name__, method)
        if slots:  # the default __setstate__ would assign through the frozen __setattr__
            for name, state_method in (
                ("__getstate__", _frozen_getstate),
                ("__setstate__", _frozen_setstate),
            ):
                if name not in processed.__dict__:
                    setattr(processed, name, state_method)
    if action == "none":
        processed.__hash__ = None
    elif action == "add":
        hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
        _put(processed, "__hash__", _make_hash(_tuple_of(hashed)))
    if not documented:
        signature = str(inspect.signature(processed)).replace(" -> None", "")
        processed.__doc__ = processed.__name__ + signature
    abc.update_abstractmethods(processed)
    return processed  # type: ignore[no-any-return]


# The keyword arguments and their defaults (dataclass's, but frozen).
_DEFAULTS = {
    "init": True,
    "repr": True,
    "eq": True,
    "frozen": True,
    "unsafe_hash": False,
    "match_args": True,
    "kw_only": False,
    "slots": False,
    "weakref_slot": False,
}


@overload
def valueclass(cls: type[_T], /) -> type[_T]: ...


@overload
def valueclass(
    *,
    init: bool = True,
    repr: bool = True,
    eq: bool = True,
    frozen: bool = True,
    unsafe_hash: bool = False,
    match_args: bool = True,
    kw_only: bool = False,
    slots: bool = False,
    weakref_slot: bool = False,
) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def valueclass(
    cls: type[_T] | None = None, /, **options: bool
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """A dataclass (frozen unless ``frozen=False``) whose methods are made without ``exec``."""
    unknown = options.keys() - _DEFAULTS.keys()
    if unknown:
        raise TypeError(f"valueclass() got an unexpected keyword argument {min(unknown)!r}")
    settings = {**_DEFAULTS, **options}

    def wrap(cls: type[_T]) -> type[_T]:
        return _process(cls, **settings)

    return wrap if cls is None else wrap(cls)
