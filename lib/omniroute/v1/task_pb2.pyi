import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from omniroute.v1 import agent_pb2 as _agent_pb2
from omniroute.v1 import inquiry_pb2 as _inquiry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Resolution(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOLUTION_UNSPECIFIED: _ClassVar[Resolution]
    RESOLUTION_RESOLVED: _ClassVar[Resolution]
    RESOLUTION_FOLLOW_UP: _ClassVar[Resolution]
    RESOLUTION_ESCALATED: _ClassVar[Resolution]
RESOLUTION_UNSPECIFIED: Resolution
RESOLUTION_RESOLVED: Resolution
RESOLUTION_FOLLOW_UP: Resolution
RESOLUTION_ESCALATED: Resolution

class Assignment(_message.Message):
    __slots__ = ("inquiry_id", "workspace", "agent_id", "tier", "queue", "offer_expires_at", "attempt", "reservation_id", "channel", "assigned_at", "inquiry", "escalation_step", "history", "callback")
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_STEP_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    inquiry_id: str
    workspace: str
    agent_id: str
    tier: _agent_pb2.Tier
    queue: str
    offer_expires_at: _timestamp_pb2.Timestamp
    attempt: int
    reservation_id: str
    channel: _inquiry_pb2.Channel
    assigned_at: _timestamp_pb2.Timestamp
    inquiry: _inquiry_pb2.Inquiry
    escalation_step: int
    history: _containers.RepeatedScalarFieldContainer[str]
    callback: Callback
    def __init__(self, inquiry_id: _Optional[str] = ..., workspace: _Optional[str] = ..., agent_id: _Optional[str] = ..., tier: _Optional[_Union[_agent_pb2.Tier, str]] = ..., queue: _Optional[str] = ..., offer_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., reservation_id: _Optional[str] = ..., channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ..., assigned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inquiry: _Optional[_Union[_inquiry_pb2.Inquiry, _Mapping]] = ..., escalation_step: _Optional[int] = ..., history: _Optional[_Iterable[str]] = ..., callback: _Optional[_Union[Callback, _Mapping]] = ...) -> None: ...

class Callback(_message.Message):
    __slots__ = ("number", "origin_channel")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    number: str
    origin_channel: _inquiry_pb2.Channel
    def __init__(self, number: _Optional[str] = ..., origin_channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ...) -> None: ...

class FollowUp(_message.Message):
    __slots__ = ("due_at", "note")
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    due_at: _timestamp_pb2.Timestamp
    note: str
    def __init__(self, due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class Escalation(_message.Message):
    __slots__ = ("target_tier", "target_skill", "reason", "target_queue")
    TARGET_TIER_FIELD_NUMBER: _ClassVar[int]
    TARGET_SKILL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TARGET_QUEUE_FIELD_NUMBER: _ClassVar[int]
    target_tier: _agent_pb2.Tier
    target_skill: str
    reason: str
    target_queue: str
    def __init__(self, target_tier: _Optional[_Union[_agent_pb2.Tier, str]] = ..., target_skill: _Optional[str] = ..., reason: _Optional[str] = ..., target_queue: _Optional[str] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("event_id", "type", "inquiry_id", "workspace", "agent_id", "reservation_id", "channel", "occurred_at", "reason", "resolution", "follow_up", "escalation", "target_agent_id", "target_queue", "note", "callback")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[TaskEvent.Type]
        TYPE_OFFERED: _ClassVar[TaskEvent.Type]
        TYPE_ACCEPTED: _ClassVar[TaskEvent.Type]
        TYPE_DECLINED: _ClassVar[TaskEvent.Type]
        TYPE_OFFER_TIMEOUT: _ClassVar[TaskEvent.Type]
        TYPE_COMPLETED: _ClassVar[TaskEvent.Type]
        TYPE_ABANDONED: _ClassVar[TaskEvent.Type]
        TYPE_WITHDRAWN: _ClassVar[TaskEvent.Type]
        TYPE_TRANSFERRED: _ClassVar[TaskEvent.Type]
        TYPE_CALLBACK_REQUESTED: _ClassVar[TaskEvent.Type]
    TYPE_UNSPECIFIED: TaskEvent.Type
    TYPE_OFFERED: TaskEvent.Type
    TYPE_ACCEPTED: TaskEvent.Type
    TYPE_DECLINED: TaskEvent.Type
    TYPE_OFFER_TIMEOUT: TaskEvent.Type
    TYPE_COMPLETED: TaskEvent.Type
    TYPE_ABANDONED: TaskEvent.Type
    TYPE_WITHDRAWN: TaskEvent.Type
    TYPE_TRANSFERRED: TaskEvent.Type
    TYPE_CALLBACK_REQUESTED: TaskEvent.Type
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_QUEUE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    type: TaskEvent.Type
    inquiry_id: str
    workspace: str
    agent_id: str
    reservation_id: str
    channel: _inquiry_pb2.Channel
    occurred_at: _timestamp_pb2.Timestamp
    reason: str
    resolution: Resolution
    follow_up: FollowUp
    escalation: Escalation
    target_agent_id: str
    target_queue: str
    note: str
    callback: Callback
    def __init__(self, event_id: _Optional[str] = ..., type: _Optional[_Union[TaskEvent.Type, str]] = ..., inquiry_id: _Optional[str] = ..., workspace: _Optional[str] = ..., agent_id: _Optional[str] = ..., reservation_id: _Optional[str] = ..., channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., resolution: _Optional[_Union[Resolution, str]] = ..., follow_up: _Optional[_Union[FollowUp, _Mapping]] = ..., escalation: _Optional[_Union[Escalation, _Mapping]] = ..., target_agent_id: _Optional[str] = ..., target_queue: _Optional[str] = ..., note: _Optional[str] = ..., callback: _Optional[_Union[Callback, _Mapping]] = ...) -> None: ...

class ConversationMessage(_message.Message):
    __slots__ = ("workspace", "inquiry_id", "agent_id", "message", "joined_at")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    inquiry_id: str
    agent_id: str
    message: _inquiry_pb2.Inquiry
    joined_at: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., message: _Optional[_Union[_inquiry_pb2.Inquiry, _Mapping]] = ..., joined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
