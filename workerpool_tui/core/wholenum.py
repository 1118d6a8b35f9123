"""JSON numbers with no fractional part where an integer is expected.

In JSON Schema (and so in the API's OpenAPI document) ``2.0`` is the integer ``2``; JSON
itself does not tell them apart and some clients (JavaScript among them) cannot. msgspec
reads ``2.0`` as a float and refuses it for an ``int`` field. :func:`whole_floats_as_ints`
rewrites exactly those values, guided by the target type, so that a strict conversion then
accepts them; every other value, a payload's own floats included, stays as sent.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import msgspec
from msgspec import inspect as mi

_T = TypeVar("_T")
_LIMIT = 2.0**63


@cache
def _info(type_: Any) -> mi.Type:
    return mi.type_info(type_)


def _walk(value: Any, t: mi.Type) -> Any:
    if isinstance(t, mi.IntType):
        if isinstance(value, float) and value.is_integer() and abs(value) <= _LIMIT:
            return int(value)
        return value
    if isinstance(t, mi.UnionType):
        if any(isinstance(m, mi.FloatType) for m in t.types):
            return value
        for member in t.types:
            if isinstance(member, mi.IntType) and isinstance(value, float):
                return _walk(value, member)
            if isinstance(value, dict) and isinstance(member, (mi.StructType, mi.DictType)):
                return _walk(value, member)
            if isinstance(value, list) and isinstance(member, (mi.ListType, mi.TupleType)):
                return _walk(value, member)
        return value
    if isinstance(t, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in t.fields}
        return {k: _walk(v, fields[k]) if k in fields else v for k, v in value.items()}
    if isinstance(t, mi.DictType) and isinstance(value, dict):
        return {k: _walk(v, t.value_type) for k, v in value.items()}
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)) and isinstance(
        value, list
    ):
        return [_walk(v, t.item_type) for v in value]
    if isinstance(t, mi.TupleType) and isinstance(value, list):
        return [_walk(v, item) for v, item in zip(value, t.item_types, strict=False)] + value[
            len(t.item_types) :
        ]
    return value


def whole_floats_as_ints(value: Any, type_: Any) -> Any:
    """``value`` (decoded JSON) with each whole float that ``type_`` expects as an int made
    an int; nothing else changes."""
    return _walk(value, _info(type_))


def convert(value: Any, type_: type[_T]) -> _T:
    """``msgspec.convert`` (strict), also taking ``2.0`` where an integer is expected."""
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError:
        return msgspec.convert(whole_floats_as_ints(value, type_), type_)
