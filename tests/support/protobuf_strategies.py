"""Hypothesis strategies for any protobuf message: valid on the wire, absurd in content.

`messages(SomeMessage)` draws instances of the generated class with every
field possibly set: strings from the empty to the long and odd (control
characters, right-to-left marks, emoji), integers over the field's whole
range, enum fields with values the enum does not define, repeated fields and
maps with a few entries, nested messages to a bounded depth, timestamps from
year 1 to 9999. `wire_garbage()` draws bytes that are usually not a message
at all. Both feed the bad-input suites (tests/integration/test_bad_input_*.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

M = TypeVar("M", bound=Message)

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)

# Strings a person, a forger or a broken client might send.
_ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "a" * 10_000,
        "\x00",
        "\u202e\u0645\u0631\u062d\u0628\u0627",
        "ü😀\U0010ffff",
        "../../etc/passwd",
        "*",
        "AGENT_STATUS_AVAILABLE",
        "chat",
        "0",
        "-1",
    ]
)
_STRINGS = _ODD_STRINGS | st.text(max_size=40)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in (
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SFIXED32,
    ):
        return st.sampled_from([0, -1, 1, *_INT32]) | st.integers(*_INT32)
    if kind in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
    ):
        return st.sampled_from([0, -1, 1, *_INT64]) | st.integers(*_INT64)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.sampled_from([0, 1, _UINT32[1]]) | st.integers(*_UINT32)
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.sampled_from([0, 1, _UINT64[1]]) | st.integers(*_UINT64)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return _STRINGS
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_ENUM:
        # Defined values, and ones no build defines (open enums keep them).
        defined = [v.number for v in field.enum_type.values]
        return st.sampled_from(defined) | st.integers(*_INT32)
    raise AssertionError(f"no strategy for field type {kind} ({field.full_name})")


def _timestamp() -> st.SearchStrategy[dict[str, int]]:
    # The whole valid range, its edges, and nanos of every size.
    seconds = st.sampled_from([0, -62135596800, 253402300799, -1]) | st.integers(
        -62135596800, 253402300799
    )
    return st.fixed_dictionaries({"seconds": seconds, "nanos": st.integers(0, 999_999_999)})


def _fields(descriptor: Descriptor, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                if depth <= 0:
                    continue
                values: st.SearchStrategy[Any] = _fields(value_field.message_type, depth - 1)
            else:
                values = _scalar(value_field)
            optional[field.name] = st.dictionaries(_scalar(key_field), values, max_size=4)
            continue
        if field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                one: st.SearchStrategy[Any] = _timestamp()
            elif depth <= 0:
                continue
            else:
                one = _fields(field.message_type, depth - 1)
        else:
            one = _scalar(field)
        is_repeated = field.is_repeated
        optional[field.name] = st.lists(one, max_size=4) if is_repeated else one
    return st.fixed_dictionaries({}, optional=optional)


def _build(message: Message, values: dict[str, Any]) -> None:
    descriptor = message.DESCRIPTOR
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.message_type is not None:
                    _build(target[key], item)
                else:
                    target[key] = item
        elif field.message_type is not None:
            if field.is_repeated:
                for item in value:
                    _build(target.add(), item)
            else:
                _build(target, value)
                if not value:
                    target.SetInParent()  # present, all defaults
        elif field.is_repeated:
            target.extend(value)
        else:
            setattr(message, name, value)


def messages(message_type: type[M], depth: int = 3) -> st.SearchStrategy[M]:
    """Instances of `message_type` with arbitrary, often absurd, field values."""

    def build(values: dict[str, Any]) -> M:
        message = message_type()
        _build(message, values)
        return message

    return _fields(message_type.DESCRIPTOR, depth).map(build)


def wire_garbage() -> st.SearchStrategy[bytes]:
    """Bytes for a record value: empty, random, truncated varints, wrong wire types."""
    return st.sampled_from(
        [b"", b"\x00", b"\xff" * 16, b"\x08", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05abc"]
    ) | st.binary(min_size=1, max_size=256)
