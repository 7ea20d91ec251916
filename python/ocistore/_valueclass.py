"""``@valueclass``: a frozen dataclass that costs no compile, and no ``dataclasses``, at import.

``dataclasses.dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__`` and ``__delattr__`` for every class and ``exec``s it: on CPython
3.11 about 1 ms per class, a quarter of a command-line re-pull. Importing ``dataclasses`` (with
the ``inspect``, ``ast``, ``dis`` and ``tokenize`` it imports) is another sixth. ``valueclass``
makes the same class without either:

* ``__init__`` is a copy of one template code object given the class's parameter names, kinds
  and defaults (``CodeType.replace``): the interpreter binds the arguments itself, so the
  ``TypeError`` messages and ``inspect.signature`` are the ones a dataclass has. Its body hands
  the bound arguments to a closure that stores the fields, calls the default factories and
  ``__post_init__``.
* ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``/``__delattr__`` (frozen) are closures
  doing what the generated methods do, under the rules of ``dataclasses`` (which fields take
  part, when ``__hash__`` is added, set to ``None`` or left alone), as the running Python's do.
* ``__dataclass_fields__`` and ``__dataclass_params__`` are made, with ``dataclasses``
  imported, the first time something asks (``fields``, ``replace``, ``asdict``,
  ``is_dataclass``): to every caller the class is a dataclass.

A class with a base class, a ``dataclasses.field()``, or a ``ClassVar``, ``InitVar`` or
``KW_ONLY`` annotation has ``dataclasses`` collect its fields at once (its rules for those are
many), and still gets the methods above. ``typing.dataclass_transform`` tells type checkers the
class is a (by default frozen) dataclass.
"""

from __future__ import annotations

import abc
import builtins
import reprlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import TYPE_CHECKING, Any, TypeVar, dataclass_transform, overload

if TYPE_CHECKING:
    import dataclasses

__all__ = ["field", "replace", "valueclass"]

_T = TypeVar("_T")


class _Sentinel:
    __slots__ = ("_shown",)

    def __init__(self, shown: str) -> None:
        self._shown = shown

    def __repr__(self) -> str:
        return self._shown


_MISSING: Any = _Sentinel("MISSING")
# The default ``__init__`` shows for a field with a default factory (as a dataclass's does).
_FACTORY_DEFAULT: Any = _Sentinel("<factory>")
# Annotations only ``dataclasses`` reads right (from strings, by the names in the module).
_SPECIAL_ANNOTATIONS = ("ClassVar", "InitVar", "KW_ONLY")
_FIELDS, _PARAMS = "__dataclass_fields__", "__dataclass_params__"


class _FieldSpec:
    """One field: what ``field()`` said, the class's name and annotation for it."""

    __slots__ = (
        "compare", "default", "default_factory", "hash", "init", "initvar", "kw_only",
        "metadata", "name", "repr", "type",
    )  # fmt: skip
    # What a ``dataclasses.Field`` says too.
    _SHARED = ("compare", "default", "default_factory", "hash", "init", "kw_only", "metadata",
               "name", "repr", "type")  # fmt: skip

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING) -> None:
        self.name, self.type, self.initvar = "", None, False
        self.default, self.default_factory = default, default_factory
        self.init, self.repr, self.compare = True, True, True
        self.hash: bool | None = None
        self.metadata: Mapping[Any, Any] | None = None
        self.kw_only: Any = _MISSING

    @classmethod
    def of(cls, found: dataclasses.Field[Any], missing: Any, initvar: bool) -> _FieldSpec:
        """The spec of a field ``dataclasses`` collected."""
        spec = cls()
        for name in cls._SHARED:
            value = getattr(found, name)
            setattr(spec, name, _MISSING if value is missing else value)
        spec.initvar = initvar
        return spec

    def as_field(self) -> dataclasses.Field[Any]:
        """The ``dataclasses.Field`` that says the same."""
        import dataclasses

        given = [name for name in self._SHARED if name not in ("name", "type")]
        options: dict[str, Any] = {name: getattr(self, name) for name in given}
        options = {k: dataclasses.MISSING if v is _MISSING else v for k, v in options.items()}
        made: Any = dataclasses.field(**options)
        if self.name:
            made.name, made.type = self.name, self.type
            made._field_type = vars(dataclasses)["_FIELD"]
        return made  # type: ignore[no-any-return]


def field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    init: bool = True,
    repr: bool = True,
    hash: bool | None = None,
    compare: bool = True,
    metadata: Mapping[Any, Any] | None = None,
    kw_only: Any = _MISSING,
) -> Any:
    """``dataclasses.field`` for a valueclass (it imports no ``dataclasses``)."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    spec = _FieldSpec(default, default_factory)
    spec.init, spec.repr, spec.hash, spec.compare = init, repr, hash, compare
    spec.metadata, spec.kw_only = metadata, kw_only
    return spec


# How ``__init__`` fills a field, in field order (dataclasses' ``_field_init``).
_ARGUMENT, _ARGUMENT_OR_FACTORY, _FACTORY, _DEFAULT = range(4)


# Each ``__init__`` is this code with the class's parameters and its own globals, in which
# ``_store_arguments`` is that class's closure. The code reads no local variable by index, so
# any parameter list fits it.
_store_arguments: Callable[[dict[str, Any]], None]


def _init_template(self: object) -> None:
    return _store_arguments(locals())  # noqa: F821 (bound in each copy's globals)


def _check_init_order(specs: list[_FieldSpec]) -> None:
    """A positional parameter without a default after one with a default is refused."""
    seen_default = None
    for f in specs:
        if not f.init or f.kw_only:
            continue
        if f.default is not _MISSING or f.default_factory is not _MISSING:
            seen_default = f.name
        elif seen_default:
            named = f" {seen_default!r}" if sys.version_info >= (3, 13) else ""  # as it says
            raise TypeError(f"non-default argument {f.name!r} follows default argument{named}")


def _make_init(
    cls: type, specs: list[_FieldSpec], frozen: bool, slots: bool
) -> Callable[..., None]:
    parameters = [f for f in specs if f.init and not f.kw_only]
    keyword_only = [f for f in specs if f.init and f.kw_only]
    steps: list[tuple[str, int, Any]] = []
    for f in specs:
        if f.initvar:
            continue
        if f.default_factory is not _MISSING:
            steps.append((f.name, _ARGUMENT_OR_FACTORY if f.init else _FACTORY, f.default_factory))
        elif f.init:
            steps.append((f.name, _ARGUMENT, None))
        elif slots and f.default is not _MISSING:
            steps.append((f.name, _DEFAULT, f.default))
    post_init = "__post_init__" if hasattr(cls, "__post_init__") else None
    post_init_names = [f.name for f in specs if f.initvar]
    self_name = "__dataclass_self__" if "self" in {f.name for f in specs} else "self"
    assign = object.__setattr__ if frozen else setattr

    def store_arguments(arguments: dict[str, Any]) -> None:
        self = arguments[self_name]
        for name, how, extra in steps:
            if how == _ARGUMENT:
                value = arguments[name]
            elif how == _ARGUMENT_OR_FACTORY:
                value = arguments[name]
                if value is _FACTORY_DEFAULT:
                    value = extra()
            elif how == _FACTORY:
                value = extra()
            else:
                value = extra
            assign(self, name, value)
        if post_init is not None:
            getattr(self, post_init)(*[arguments[name] for name in post_init_names])

    def default_of(f: _FieldSpec) -> Any:
        return _FACTORY_DEFAULT if f.default_factory is not _MISSING else f.default

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


def _frozen_error(message: str) -> Exception:
    import dataclasses  # only now: a frozen class is rarely assigned to

    return dataclasses.FrozenInstanceError(message)


def _make_frozen(cls: Any, names: Iterable[str]) -> list[Callable[..., None]]:
    fields = frozenset(names)

    def __setattr__(self: Any, name: str, value: object) -> None:
        if type(self) is cls or name in fields:
            raise _frozen_error(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in fields:
            raise _frozen_error(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return [__setattr__, __delattr__]


def _make_state_methods(names: list[str]) -> list[Callable[..., Any]]:
    """Pickling for a frozen slots class: the default ``__setstate__`` would assign through
    the frozen ``__setattr__``."""

    def __getstate__(self: object) -> list[Any]:
        return [getattr(self, name) for name in names]

    def __setstate__(self: object, state: list[Any]) -> None:
        for name, value in zip(names, state, strict=False):
            object.__setattr__(self, name, value)

    return [__getstate__, __setstate__]


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


def _collects_own_fields(cls: type) -> bool:
    """Whether ``valueclass`` can collect the fields itself (``dataclasses`` then waits)."""
    dataclasses = sys.modules.get("dataclasses")
    return (
        cls.__bases__ == (object,)
        and all(
            isinstance(annotation, str) and not any(n in annotation for n in _SPECIAL_ANNOTATIONS)
            for annotation in vars(cls).get("__annotations__", {}).values()
        )
        and not (dataclasses and any(isinstance(v, dataclasses.Field) for v in vars(cls).values()))
    )


def _collect_fields(cls: type, kw_only: bool) -> list[_FieldSpec]:
    """The fields of a class without bases, as ``dataclasses`` finds them."""
    specs = []
    annotations = vars(cls).get("__annotations__", {})
    for name, annotation in annotations.items():
        default = getattr(cls, name, _MISSING)
        if isinstance(default, _FieldSpec):
            spec = default
        else:
            unset = default is _MISSING or isinstance(default, types.MemberDescriptorType)
            spec = _FieldSpec(_MISSING if unset else default)
        spec.name, spec.type = name, annotation
        spec.kw_only = kw_only if spec.kw_only is _MISSING else spec.kw_only
        if spec.default is not _MISSING and spec.default.__class__.__hash__ is None:
            raise ValueError(
                f"mutable default {type(spec.default)} for field {name} is not allowed:"
                " use default_factory"
            )
        specs.append(spec)
    for spec in specs:  # the class attribute is the default, if any
        if isinstance(getattr(cls, spec.name, None), _FieldSpec):
            if spec.default is _MISSING:
                delattr(cls, spec.name)
            else:
                setattr(cls, spec.name, spec.default)
    for name, value in cls.__dict__.items():
        if isinstance(value, _FieldSpec) and name not in annotations:
            raise TypeError(f"{name!r} is a field but has no type annotation")
    return specs


def _with_slots(cls: type, names: list[str], weakref_slot: bool) -> type:
    """The class again, with ``__slots__`` for its fields (``dataclasses``' ``_add_slots``)."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    namespace = dict(cls.__dict__)
    namespace["__slots__"] = (*names, *(["__weakref__"] if weakref_slot else []))
    for name in [*names, "__dict__", *(["__weakref__"] if sys.version_info >= (3, 12) else [])]:
        namespace.pop(name, None)
    slotted = type(cls)(cls.__name__, cls.__bases__, namespace)
    slotted.__qualname__ = cls.__qualname__
    return slotted


class _DataclassAttribute:
    """``__dataclass_fields__`` or ``__dataclass_params__`` of a valueclass: both are made,
    with ``dataclasses`` imported, the first time either is read, and replace this."""

    __slots__ = ("_name", "_options", "_owner", "specs")

    def __init__(self, name: str, owner: type, specs: list[_FieldSpec], options: dict[str, bool]):
        self._name, self._owner, self.specs, self._options = name, owner, specs, options

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        import dataclasses

        fields = {spec.name: spec.as_field() for spec in self.specs}
        params_type = vars(dataclasses)["_DataclassParams"]
        known = {**self._options, "order": False}
        params = params_type(**{name: known[name] for name in params_type.__slots__})
        type.__setattr__(self._owner, _FIELDS, fields)
        type.__setattr__(self._owner, _PARAMS, params)
        return fields if self._name == _FIELDS else params


def replace(obj: _T, /, **changes: Any) -> _T:
    """``dataclasses.replace``: for a valueclass, without importing ``dataclasses`` while nothing
    has asked for its fields."""
    found = next((vars(k)[_FIELDS] for k in type(obj).__mro__ if _FIELDS in vars(k)), None)
    if not isinstance(found, _DataclassAttribute):
        import dataclasses

        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    refusal = TypeError if sys.version_info >= (3, 13) else ValueError  # as it says
    for spec in found.specs:
        if not spec.init:
            if spec.name in changes:
                raise refusal(
                    f"field {spec.name} is declared with init=False, it cannot be specified with"
                    " replace()"
                )
        elif spec.name not in changes:
            changes[spec.name] = getattr(obj, spec.name)
    return obj.__class__(**changes)


def _let_dataclasses_collect(
    cls: type, options: dict[str, bool]
) -> tuple[type, list[_FieldSpec], bool]:
    """The class as ``dataclasses`` processes it (told to compile nothing), its fields and
    InitVars, and whether a base is a frozen dataclass."""
    import dataclasses

    for name, value in list(cls.__dict__.items()):
        if isinstance(value, _FieldSpec):
            setattr(cls, name, value.as_field())
    bases: list[Any] = [base for base in cls.__mro__[1:] if hasattr(base, "__dataclass_fields__")]
    frozen_base = any(base.__dataclass_params__.frozen for base in bases)
    if options["frozen"] and bases and not frozen_base:
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    # dataclasses refuses a non-frozen class on a frozen base: only then is it told the truth
    # (and compiles __setattr__ and __delattr__); otherwise it compiles nothing.
    processed: Any = dataclasses.dataclass(
        cls,
        init=False,
        repr=False,
        eq=False,
        frozen=options["frozen"] and frozen_base,
        match_args=options["match_args"],
        kw_only=options["kw_only"],
        slots=options["slots"],
        weakref_slot=options["weakref_slot"],
    )
    # What the class is, for dataclasses' checks on subclasses and for readers.
    params = processed.__dataclass_params__
    for name in ("init", "repr", "eq", "frozen", "unsafe_hash"):
        setattr(params, name, options[name])
    kinds = vars(dataclasses)["_FIELD"], vars(dataclasses)["_FIELD_INITVAR"]
    specs = [
        _FieldSpec.of(f, dataclasses.MISSING, initvar=f._field_type is kinds[1])
        for f in processed.__dict__["__dataclass_fields__"].values()
        if f._field_type in kinds
    ]
    return processed, specs, frozen_base


def _process(cls: type[_T], options: dict[str, bool]) -> type[_T]:
    frozen, slots = options["frozen"], options["slots"]
    class_hash = cls.__dict__.get("__hash__", _MISSING)
    implicit_none = class_hash is None and "__eq__" in cls.__dict__
    explicit_hash = not (class_hash is _MISSING or implicit_none)
    documented = bool(cls.__dict__.get("__doc__"))
    own_fields = _collects_own_fields(cls)
    if own_fields:
        processed: Any = cls
        specs, frozen_base = _collect_fields(cls, options["kw_only"]), False
    else:
        processed, specs, frozen_base = _let_dataclasses_collect(cls, options)
    fields = [f for f in specs if not f.initvar]
    names = [f.name for f in fields]

    if options["init"]:
        _check_init_order(specs)
    action = _hash_action(options["unsafe_hash"], options["eq"], frozen, explicit_hash)
    refused = [name for name in ("__setattr__", "__delattr__") if name in processed.__dict__]
    refused = refused if frozen and not frozen_base else []
    if action == "raise":  # Python 3.13 checks __hash__ first
        refused.insert(0 if sys.version_info >= (3, 13) else len(refused), "__hash__")
    if refused:
        raise TypeError(f"Cannot overwrite attribute {refused[0]} in class {cls.__name__}")
    if own_fields:
        if options["match_args"] and "__match_args__" not in processed.__dict__:
            match_args = tuple(f.name for f in fields if f.init and not f.kw_only)
            setattr(processed, "__match_args__", match_args)  # noqa: B010 (mypy: read-only)
        if options["weakref_slot"] and not slots:
            raise TypeError("weakref_slot is True but slots is False")
        if slots:
            processed = _with_slots(processed, names, options["weakref_slot"])
        for name in (_FIELDS, _PARAMS):
            setattr(processed, name, _DataclassAttribute(name, processed, fields, options))
        if sys.version_info >= (3, 13) and "__replace__" not in processed.__dict__:
            processed.__replace__ = replace  # copy.replace(), as 3.13's dataclasses gives it

    if options["init"]:
        _attach(processed, "__init__", _make_init(processed, specs, frozen, slots))
    if options["repr"]:
        _attach(processed, "__repr__", _make_repr([f.name for f in fields if f.repr]))
    if options["eq"]:
        _attach(processed, "__eq__", _make_equality([f.name for f in fields if f.compare]))
    if frozen and not frozen_base:
        for method in _make_frozen(processed, names):
            _put(processed, method.__name__, method)
        if slots:
            for method in _make_state_methods(names):
                _attach(processed, method.__name__, method)
    if action == "none":
        processed.__hash__ = None
    elif action == "add":
        hashed = [f.name for f in fields if (f.compare if f.hash is None else f.hash)]
        _put(processed, "__hash__", _make_hash(_tuple_of(hashed)))
    if not documented:
        import inspect

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


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def valueclass(
    cls: type[_T] | None = None, /, **options: bool
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """A dataclass (frozen unless ``frozen=False``) whose methods are made without ``exec``."""
    unknown = options.keys() - _DEFAULTS.keys()
    if unknown:
        raise TypeError(f"valueclass() got an unexpected keyword argument {min(unknown)!r}")
    settings = {**_DEFAULTS, **options}

    def wrap(cls: type[_T]) -> type[_T]:
        return _process(cls, settings)

    return wrap if cls is None else wrap(cls)
