"""Protobuf encoding for events on Kafka, and time conversions.

`decode` turns any failure into `InvalidEvent` with a reason fit for a
dead-letter record, so a consumer never crashes on a bad payload.
"""

from __future__ import annotations

import re
from typing import TypeVar

from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

M = TypeVar("M", bound=Message)

#: Longest site (store, branch, desk id) of an in-person inquiry or of an agent.
MAX_SITE_LENGTH = 200
#: A phone number in E.164 (a callback's number): "+", then a country code that
#: does not start with 0, 8 to 15 digits in all.
E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def is_e164(number: str) -> bool:
    """Whether `number` is a phone number in E.164 form, e.g. "+15550001111"."""
    return E164.fullmatch(number) is not None


class InvalidEvent(ValueError):
    """An event that cannot be used: undecodable or missing a required field."""


def encode(message: Message) -> bytes:
    """Serialise a protobuf message for a Kafka record value."""
    return message.SerializeToString()


def decode(message_type: type[M], data: bytes | None) -> M:
    """Parse a Kafka record value; raises `InvalidEvent` naming the problem."""
    if data is None:
        raise InvalidEvent(f"empty record where a {message_type.DESCRIPTOR.name} was expected")
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError) as exc:
        raise InvalidEvent(f"not a valid {message_type.DESCRIPTOR.name}: {exc}") from None
    return message


def require(message: Message, *fields: str) -> None:
    """Raise `InvalidEvent` when one of the named scalar fields is empty."""
    for field in fields:
        if not getattr(message, field):
            raise InvalidEvent(f"{message.DESCRIPTOR.name}.{field} is required")


def timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp from seconds since the epoch."""
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def seconds(ts: Timestamp) -> float:
    """Seconds since the epoch from a protobuf Timestamp (0.0 when unset)."""
    return ts.seconds + ts.nanos / 1e9
