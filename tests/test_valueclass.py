"""``@valueclass`` behaves as ``@dataclass`` does: random class specs, both ways, compared.

Each example builds one class from a random spec twice, with ``dataclasses.dataclass`` and with
``valueclass``, and compares everything a caller sees: whether decoration succeeds (and its
error), construction from random positional/keyword arguments (values or ``TypeError``
messages), ``__post_init__``, repr, ==, hash, frozen assignment and deletion, ``replace``,
``asdict``/``astuple``, ``fields``, ``__match_args__``, pickle and copy, ``inspect.signature``
and ``__doc__``. Then: the generic methods really are exec-free (no ``compile`` audit event).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ocistore._valueclass import field as valueclass_field
from ocistore._valueclass import replace as valueclass_replace
from ocistore._valueclass import valueclass


class FieldSpec(NamedTuple):
    default: str  # "none", "value" or "factory"
    init: bool
    repr: bool
    compare: bool
    hash: bool | None
    kw_only: bool
    plain: bool  # a bare annotation (and default): no field(), the flags above unused


class ClassSpec(NamedTuple):
    fields: list[FieldSpec]
    frozen: bool
    slots: bool
    eq: bool
    init: bool
    unsafe_hash: bool
    post_init: bool
    own_methods: frozenset[str]  # methods the class body defines itself
    documented: bool
    eager: bool  # valueclass given dataclasses.field(), so dataclasses collects the fields


FIELD_SPECS = st.builds(
    FieldSpec,
    default=st.sampled_from(["none", "value", "factory"]),
    init=st.booleans(),
    repr=st.booleans(),
    compare=st.booleans(),
    hash=st.sampled_from([None, True, False]),
    kw_only=st.booleans(),
    plain=st.booleans(),
)
CLASS_SPECS = st.builds(
    ClassSpec,
    fields=st.lists(FIELD_SPECS, max_size=6),
    frozen=st.booleans(),
    slots=st.booleans(),
    eq=st.booleans(),
    init=st.booleans(),
    unsafe_hash=st.booleans(),
    post_init=st.booleans(),
    own_methods=st.one_of(
        st.just(frozenset()),
        st.frozensets(st.sampled_from(["__eq__", "__hash__", "__repr__", "__setattr__"])),
    ),
    documented=st.booleans(),
    eager=st.booleans(),
)
UNSET = "<unset>"


def _namespace(spec: ClassSpec, field: Callable[..., Any]) -> dict[str, Any]:
    """A fresh class body (``field()`` objects are consumed by the decorator)."""
    namespace: dict[str, Any] = {"__annotations__": {}, "__module__": __name__, "seen": []}
    for number, f in enumerate(spec.fields):
        name = f"f{number}"
        namespace["__annotations__"][name] = "int" if f.default != "factory" else "list[int]"
        options: dict[str, Any] = {"default": 100 + number} if f.default == "value" else {}
        if f.default == "factory":
            options["default_factory"] = list
        if f.plain and f.default != "factory":
            namespace.update({name: options["default"]} if options else {})
            continue
        namespace[name] = field(
            init=f.init, repr=f.repr, compare=f.compare, hash=f.hash, kw_only=f.kw_only, **options
        )
    if spec.post_init:

        def __post_init__(self: Any) -> None:
            self.seen.append(_state(self))

        namespace["__post_init__"] = __post_init__
    if spec.documented:
        namespace["__doc__"] = "A spec."
    if "__eq__" in spec.own_methods:
        namespace["__eq__"] = lambda self, other: "own eq"
    if "__hash__" in spec.own_methods:
        namespace["__hash__"] = lambda self: 7
    if "__repr__" in spec.own_methods:
        namespace["__repr__"] = lambda self: "own repr"
    if "__setattr__" in spec.own_methods:
        namespace["__setattr__"] = object.__setattr__
    return namespace


def _decorate(spec: ClassSpec, decorator: Callable[..., Any]) -> Any:
    flags = {"frozen": spec.frozen, "slots": spec.slots, "eq": spec.eq, "init": spec.init}
    field = valueclass_field if decorator is valueclass and not spec.eager else dataclasses.field
    body = _namespace(spec, field)
    return decorator(**flags, unsafe_hash=spec.unsafe_hash)(type("Spec", (), body))


def _state(instance: object) -> tuple[Any, ...]:
    return tuple(getattr(instance, name, UNSET) for name in _names(type(instance)))


def _names(cls: type) -> list[str]:
    return list(inspect.get_annotations(cls))


def _hash(instance: object) -> object:
    """The hash, or "identity" where it is ``object``'s (which differs between instances)."""
    return "identity" if type(instance).__hash__ is object.__hash__ else hash(instance)


def outcome(action: Callable[[], Any]) -> tuple[str, Any]:
    """What ``action`` returned, or the type and message of what it raised."""
    try:
        return "returned", action()
    except Exception as error:  # the exception is the result compared
        return type(error).__name__, str(error)


@contextmanager
def _picklable(cls: type) -> Iterator[None]:
    """Pickle finds classes by module and qualified name: name this one there for a while."""
    module = sys.modules[__name__]
    setattr(module, "Spec", cls)  # noqa: B010
    try:
        yield
    finally:
        delattr(module, "Spec")


def _behaviour(cls: Any, calls: list[tuple[int, list[str]]], replace: Any) -> list[Any]:
    """Everything observable about ``cls`` and instances made by ``calls``. What asks for the
    fields (``fields``, ``asdict``, ``is_dataclass``) comes last: ``replace`` on a valueclass
    needs no ``dataclasses`` before."""
    seen: list[Any] = [cls.__match_args__, str(inspect.signature(cls)), cls.__doc__]
    made = []
    for count, keywords in calls:
        arguments = {name: 10 + index for index, name in enumerate(keywords)}
        result = outcome(lambda count=count, arguments=arguments: cls(*range(count), **arguments))
        seen.append(result if result[0] != "returned" else ("made", _state(result[1])))
        if result[0] == "returned":
            made.append(result[1])
    seen.append(cls.seen)
    for instance in made[:2]:
        for name in _names(cls):
            change = {name: -1}
            seen.append(outcome(lambda i=instance, c=change: _state(replace(i, **c))))
    for instance in made[:2]:
        seen.append(_instance_behaviour(cls, instance, made))
    seen += [
        [(f.name, f.type, f.default, f.default_factory, f.init, f.repr, f.compare, f.hash,
          f.kw_only, dict(f.metadata)) for f in dataclasses.fields(cls)],
        cls.__hash__ is None,
        dataclasses.is_dataclass(cls),
        [getattr(cls.__dataclass_params__, n) for n in ("init", "repr", "eq", "frozen")],
        [name in cls.__dict__ for name in ("__getstate__", "__setstate__", "__slots__")],
    ]  # fmt: skip
    return seen


def _instance_behaviour(cls: Any, instance: Any, made: list[Any]) -> list[Any]:
    names = _names(cls)
    seen: list[Any] = [
        sorted(getattr(instance, "__dict__", ())),  # set in __init__, or read from the class
        outcome(lambda: repr(instance)),
        [outcome(lambda other=other: instance == other) for other in made],
        outcome(lambda: instance.__eq__(object())),
        outcome(lambda: _hash(instance)),
        outcome(lambda: dataclasses.asdict(instance)),
        outcome(lambda: dataclasses.astuple(instance)),
    ]
    for name in names:
        changed = outcome(lambda name=name: _state(dataclasses.replace(instance, **{name: -1})))
        seen.append(changed)
    if hasattr(copy, "replace"):  # Python 3.13: copy.replace() calls __replace__
        for name in names:
            seen.append(outcome(lambda name=name: _state(copy.replace(instance, **{name: -1}))))
    with _picklable(cls):
        seen.append(outcome(lambda: _state(pickle.loads(pickle.dumps(instance)))))
    seen.append(outcome(lambda: _state(copy.copy(instance))))
    seen.append(outcome(lambda: _state(copy.deepcopy(instance))))
    for name in names:
        seen.append(outcome(lambda name=name: setattr(instance, name, -2)))
        seen.append(outcome(lambda name=name: delattr(instance, name)))
        seen.append(_state(instance))
    if "__slots__" not in cls.__dict__:
        # CPython 3.11's frozen slots classes raise a TypeError from super() for a name that is
        # not a field (a bug); other classes store it or raise FrozenInstanceError.
        seen.append(outcome(lambda: setattr(instance, "other", 1)))
        seen.append(outcome(lambda: delattr(instance, "other")))
    return seen


MISTAKES = ["none", "none", "drop", "extra positional", "unknown keyword", "both ways"]


@st.composite
def calls_for(draw: st.DrawFn, spec: ClassSpec) -> tuple[int, list[str]]:
    """Arguments for the spec's ``__init__``: often right, sometimes one mistake. A call is a
    count of positional arguments and the names passed by keyword."""
    named = [(f"f{n}", f) for n, f in enumerate(spec.fields) if f.init and spec.init]
    positional = [name for name, f in named if not f.kw_only]
    by_keyword = [name for name, f in named if f.kw_only]
    split = draw(st.integers(0, len(positional)))
    by_keyword += positional[split:]
    optional = {name for name, f in named if f.default != "none"}
    keywords = [name for name in by_keyword if name not in optional or draw(st.booleans())]
    count = split
    mistake = draw(st.sampled_from(MISTAKES))
    if mistake == "drop" and keywords:
        keywords.pop(draw(st.integers(0, len(keywords) - 1)))
    elif mistake == "drop" and count:
        count -= 1
    elif mistake == "extra positional":
        count = len(positional) + 1
    elif mistake == "unknown keyword":
        keywords.append("bogus")
    elif mistake == "both ways" and count:
        keywords.append(positional[draw(st.integers(0, count - 1))])
    return count, keywords


@settings(max_examples=400, deadline=None)
@given(spec=CLASS_SPECS, data=st.data())
def test_a_valueclass_behaves_as_the_dataclass_of_the_same_spec(
    spec: ClassSpec, data: st.DataObject
) -> None:
    calls = data.draw(st.lists(calls_for(spec), min_size=1, max_size=3))
    theirs = outcome(lambda: _decorate(spec, dataclasses.dataclass))
    ours = outcome(lambda: _decorate(spec, valueclass))
    assert ours[0] == theirs[0] and (ours[0] == "returned" or ours == theirs)
    event(f"decoration: {theirs[0] if theirs[0] == 'returned' else theirs[1][:40]}")
    if theirs[0] == "returned":
        behaviour = _behaviour(theirs[1], calls, dataclasses.replace)
        made = [item for item in behaviour if isinstance(item, tuple) and item[:1] == ("made",)]
        event(f"instances made: {len(made)}")
        assert _behaviour(ours[1], calls, valueclass_replace) == behaviour


def test_frozen_slots_instances_refuse_other_names_as_frozen() -> None:
    @valueclass(slots=True)
    class Point:
        x: int

    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'y'"):
        point.y = 2  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
        del point.y  # type: ignore[attr-defined]


def test_initvars_reach_post_init_and_classvars_stay_out() -> None:
    def body() -> dict[str, Any]:
        def __post_init__(self: Any, scale: int) -> None:
            object.__setattr__(self, "scaled", self.size * scale)

        return {
            "__annotations__": {"size": int, "scale": dataclasses.InitVar[int], "scaled": int,
                                "unit": ClassVar[str]},
            "__module__": __name__, "scaled": dataclasses.field(init=False, default=0),
            "unit": "bytes", "__post_init__": __post_init__,
        }  # fmt: skip

    ours = valueclass(type("Sized", (), body()))
    theirs = dataclasses.dataclass(frozen=True)(type("Sized", (), body()))
    for cls in (ours, theirs):
        made = cls(2, 5)
        assert (made.size, made.scaled, made.unit) == (2, 10, "bytes")
        assert [f.name for f in dataclasses.fields(cls)] == ["size", "scaled"]
        assert dataclasses.replace(made, size=3, scale=2).scaled == 6
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    assert outcome(lambda: ours(2)) == outcome(lambda: theirs(2))
    assert outcome(lambda: ours(2)) == (
        "TypeError", "Sized.__init__() missing 1 required positional argument: 'scale'"
    )  # fmt: skip


def test_subclasses_follow_the_dataclass_rules() -> None:
    @valueclass
    class Base:
        name: str

    @valueclass(slots=True)
    class Child(Base):
        size: int = 0

    child = Child("a", 2)
    assert (repr(child), child == Child("a", 2), hash(child) == hash(Child("a", 2))) == (
        "test_subclasses_follow_the_dataclass_rules.<locals>.Child(name='a', size=2)", True, True
    )  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        child.name = "b"  # type: ignore[misc]
    assert copy.deepcopy(child) == child and copy.deepcopy(child) is not child

    @dataclasses.dataclass(frozen=True)
    class RealChild(Base):
        size: int = 0

    assert RealChild("a", 1) != Base("a") and RealChild("a", 1).size == 1
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):
        valueclass(frozen=False)(type("Mutable", (Base,), {"__annotations__": {"x": "int"}}))
    with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen one"):
        dataclasses.dataclass(type("Mutable", (Base,), {"__annotations__": {"x": "int"}}))
    mutable = dataclasses.dataclass(type("Mutable", (), {"__annotations__": {"x": "int"}}))
    with pytest.raises(TypeError, match="cannot inherit frozen dataclass from a non-frozen one"):
        valueclass(type("Frozen", (mutable,), {"__annotations__": {"y": "int"}}))


def test_weakref_slot_and_unknown_options() -> None:
    import weakref

    @valueclass(slots=True, weakref_slot=True)
    class Referenced:
        name: str

    referenced = Referenced("a")
    assert weakref.ref(referenced)() is referenced and "__weakref__" in Referenced.__slots__
    with pytest.raises(TypeError, match="weakref_slot is True but slots is False"):
        valueclass(weakref_slot=True)(type("Plain", (), {"__annotations__": {"x": "int"}}))
    with pytest.raises(TypeError, match="unexpected keyword argument 'order'"):
        valueclass(order=True)  # type: ignore[call-overload]


MYPY_SNIPPET = """
import dataclasses
from ocistore._valueclass import field, replace, valueclass

@valueclass
class Frozen:
    name: str
    size: int = 0
    tags: list[str] = field(default_factory=list)

@valueclass(frozen=False, slots=True)
class Mutable:
    name: str

value = Frozen("a", 1)
value.size = 2
Mutable("b").name = "c"
Frozen("a", "b")
Frozen(size=1)
dataclasses.replace(value, size=3)
replace(value, size=4).tags.append("x")
"""


def test_type_checkers_see_a_frozen_dataclass(tmp_path: Path) -> None:
    """``dataclass_transform``: mypy knows the fields, the defaults and that it is frozen."""
    from mypy import api

    (tmp_path / "snippet.py").write_text(MYPY_SNIPPET)
    flags = ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache")]
    stdout, _, _ = api.run([*flags, str(tmp_path / "snippet.py")])
    errors = [line.split(": ", 1)[1] for line in stdout.splitlines() if ": error: " in line]
    assert errors == [
        'error: Property "size" defined in "Frozen" is read-only  [misc]',
        'error: Argument 2 to "Frozen" has incompatible type "str"; expected "int"  [arg-type]',
        'error: Missing positional argument "name" in call to "Frozen"  [call-arg]',
    ]


def test_dataclasses_is_imported_only_when_asked_for_fields() -> None:
    """The model's classes are made, compared, replaced and pickled without ``dataclasses``;
    ``fields``/``asdict`` then find real dataclasses."""
    script = """
import pickle, sys
from ocistore._valueclass import replace
from ocistore.model import Descriptor
from ocistore.platform import Platform
one = Descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:" + "a" * 64, 3)
two = replace(one, size=4, platform=Platform("linux", "amd64"))
assert two.size == 4 and two != one and pickle.loads(pickle.dumps(two)) == two
assert {"dataclasses", "inspect"} & set(sys.modules) == set(), "imported too early"
import dataclasses
assert dataclasses.is_dataclass(two) and dataclasses.fields(two)[2].name == "size"
assert dataclasses.asdict(two)["platform"]["architecture"] == "amd64"
assert dataclasses.replace(two, size=5).size == 5
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr
