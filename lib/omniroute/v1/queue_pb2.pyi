import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QueueStats(_message.Message):
    __slots__ = ("name", "waiting", "oldest_wait_s", "offered", "in_progress", "scheduled", "answered_today", "answered_within_target_today", "answered_without_target_today", "service_rate_per_s", "estimated_wait_s", "waiting_ids", "offered_ids", "in_progress_ids", "closed", "opens_at", "closes_at", "timezone", "held_ids", "callbacks", "callback_ids", "callback_channels", "refuses_transfers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    OLDEST_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    OFFERED_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_TODAY_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_WITHIN_TARGET_TODAY_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_WITHOUT_TARGET_TODAY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_RATE_PER_S_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    WAITING_IDS_FIELD_NUMBER: _ClassVar[int]
    OFFERED_IDS_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_IDS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    OPENS_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    HELD_IDS_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_IDS_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_CHANNELS_FIELD_NUMBER: _ClassVar[int]
    REFUSES_TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    waiting: int
    oldest_wait_s: float
    offered: int
    in_progress: int
    scheduled: int
    answered_today: int
    answered_within_target_today: int
    answered_without_target_today: int
    service_rate_per_s: float
    estimated_wait_s: float
    waiting_ids: _containers.RepeatedScalarFieldContainer[str]
    offered_ids: _containers.RepeatedScalarFieldContainer[str]
    in_progress_ids: _containers.RepeatedScalarFieldContainer[str]
    closed: bool
    opens_at: _timestamp_pb2.Timestamp
    closes_at: _timestamp_pb2.Timestamp
    timezone: str
    held_ids: _containers.RepeatedScalarFieldContainer[str]
    callbacks: int
    callback_ids: _containers.RepeatedScalarFieldContainer[str]
    callback_channels: _containers.RepeatedScalarFieldContainer[str]
    refuses_transfers: bool
    def __init__(self, name: _Optional[str] = ..., waiting: _Optional[int] = ..., oldest_wait_s: _Optional[float] = ..., offered: _Optional[int] = ..., in_progress: _Optional[int] = ..., scheduled: _Optional[int] = ..., answered_today: _Optional[int] = ..., answered_within_target_today: _Optional[int] = ..., answered_without_target_today: _Optional[int] = ..., service_rate_per_s: _Optional[float] = ..., estimated_wait_s: _Optional[float] = ..., waiting_ids: _Optional[_Iterable[str]] = ..., offered_ids: _Optional[_Iterable[str]] = ..., in_progress_ids: _Optional[_Iterable[str]] = ..., closed: _Optional[bool] = ..., opens_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closes_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., timezone: _Optional[str] = ..., held_ids: _Optional[_Iterable[str]] = ..., callbacks: _Optional[int] = ..., callback_ids: _Optional[_Iterable[str]] = ..., callback_channels: _Optional[_Iterable[str]] = ..., refuses_transfers: _Optional[bool] = ...) -> None: ...

class QueueSnapshot(_message.Message):
    __slots__ = ("workspace", "taken_at", "day", "queues")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    taken_at: _timestamp_pb2.Timestamp
    day: str
    queues: _containers.RepeatedCompositeFieldContainer[QueueStats]
    def __init__(self, workspace: _Optional[str] = ..., taken_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., day: _Optional[str] = ..., queues: _Optional[_Iterable[_Union[QueueStats, _Mapping]]] = ...) -> None: ...
