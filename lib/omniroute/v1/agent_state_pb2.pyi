import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from omniroute.v1 import agent_pb2 as _agent_pb2
from omniroute.v1 import inquiry_pb2 as _inquiry_pb2
from omniroute.v1 import task_pb2 as _task_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliverMessageRequest(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: _task_pb2.ConversationMessage
    def __init__(self, message: _Optional[_Union[_task_pb2.ConversationMessage, _Mapping]] = ...) -> None: ...

class DeliverMessageResponse(_message.Message):
    __slots__ = ("watched",)
    WATCHED_FIELD_NUMBER: _ClassVar[int]
    watched: bool
    def __init__(self, watched: _Optional[bool] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("session_expires_at",)
    SESSION_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    session_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, session_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TransferTaskRequest(_message.Message):
    __slots__ = ("agent_id", "inquiry_id", "target_agent_id", "reason", "request_id", "target_queue", "note")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_QUEUE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    inquiry_id: str
    target_agent_id: str
    reason: str
    request_id: str
    target_queue: str
    note: str
    def __init__(self, agent_id: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., target_agent_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ..., target_queue: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class TransferTaskResponse(_message.Message):
    __slots__ = ("reservation", "agent", "target")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    reservation: _agent_pb2.Reservation
    agent: _agent_pb2.Agent
    target: _agent_pb2.Agent
    def __init__(self, reservation: _Optional[_Union[_agent_pb2.Reservation, _Mapping]] = ..., agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ..., target: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ...) -> None: ...

class UpsertAgentRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: _agent_pb2.Agent
    def __init__(self, agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ...) -> None: ...

class GetAgentRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("workspace", "status", "skill", "min_proficiency", "language", "tier", "free_on_channel")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    MIN_PROFICIENCY_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    FREE_ON_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    status: _agent_pb2.AgentStatus
    skill: str
    min_proficiency: int
    language: str
    tier: _agent_pb2.Tier
    free_on_channel: _inquiry_pb2.Channel
    def __init__(self, workspace: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.AgentStatus, str]] = ..., skill: _Optional[str] = ..., min_proficiency: _Optional[int] = ..., language: _Optional[str] = ..., tier: _Optional[_Union[_agent_pb2.Tier, str]] = ..., free_on_channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents",)
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Agent]
    def __init__(self, agents: _Optional[_Iterable[_Union[_agent_pb2.Agent, _Mapping]]] = ...) -> None: ...

class SetStatusRequest(_message.Message):
    __slots__ = ("agent_id", "status", "reason", "request_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    status: _agent_pb2.AgentStatus
    reason: str
    request_id: str
    def __init__(self, agent_id: _Optional[str] = ..., status: _Optional[_Union[_agent_pb2.AgentStatus, str]] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RouterFence(_message.Message):
    __slots__ = ("group", "partition", "generation")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    group: str
    partition: int
    generation: int
    def __init__(self, group: _Optional[str] = ..., partition: _Optional[int] = ..., generation: _Optional[int] = ...) -> None: ...

class ReserveAgentRequest(_message.Message):
    __slots__ = ("agent_id", "inquiry_id", "channel", "workspace", "assignment", "fence", "request_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    inquiry_id: str
    channel: _inquiry_pb2.Channel
    workspace: str
    assignment: _task_pb2.Assignment
    fence: RouterFence
    request_id: str
    def __init__(self, agent_id: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., channel: _Optional[_Union[_inquiry_pb2.Channel, str]] = ..., workspace: _Optional[str] = ..., assignment: _Optional[_Union[_task_pb2.Assignment, _Mapping]] = ..., fence: _Optional[_Union[RouterFence, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ReserveAgentResponse(_message.Message):
    __slots__ = ("reservation", "agent", "already_reserved")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_RESERVED_FIELD_NUMBER: _ClassVar[int]
    reservation: _agent_pb2.Reservation
    agent: _agent_pb2.Agent
    already_reserved: bool
    def __init__(self, reservation: _Optional[_Union[_agent_pb2.Reservation, _Mapping]] = ..., agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ..., already_reserved: _Optional[bool] = ...) -> None: ...

class ReserveAgentsRequest(_message.Message):
    __slots__ = ("reservations",)
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[ReserveAgentRequest]
    def __init__(self, reservations: _Optional[_Iterable[_Union[ReserveAgentRequest, _Mapping]]] = ...) -> None: ...

class ReserveAgentResult(_message.Message):
    __slots__ = ("reserved", "refused")
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    reserved: ReserveAgentResponse
    refused: ReserveRefusal
    def __init__(self, reserved: _Optional[_Union[ReserveAgentResponse, _Mapping]] = ..., refused: _Optional[_Union[ReserveRefusal, _Mapping]] = ...) -> None: ...

class ReserveRefusal(_message.Message):
    __slots__ = ("code", "message", "agent", "last_event")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    agent: _agent_pb2.Agent
    last_event: _task_pb2.TaskEvent
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ..., last_event: _Optional[_Union[_task_pb2.TaskEvent, _Mapping]] = ...) -> None: ...

class ReserveAgentsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReserveAgentResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReserveAgentResult, _Mapping]]] = ...) -> None: ...

class TaskRequest(_message.Message):
    __slots__ = ("agent_id", "inquiry_id", "reason", "request_id", "reservation_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    inquiry_id: str
    reason: str
    request_id: str
    reservation_id: str
    def __init__(self, agent_id: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ..., reservation_id: _Optional[str] = ...) -> None: ...

class CompleteTaskRequest(_message.Message):
    __slots__ = ("agent_id", "inquiry_id", "resolution", "follow_up", "escalation", "request_id")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UP_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    inquiry_id: str
    resolution: _task_pb2.Resolution
    follow_up: _task_pb2.FollowUp
    escalation: _task_pb2.Escalation
    request_id: str
    def __init__(self, agent_id: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., resolution: _Optional[_Union[_task_pb2.Resolution, str]] = ..., follow_up: _Optional[_Union[_task_pb2.FollowUp, _Mapping]] = ..., escalation: _Optional[_Union[_task_pb2.Escalation, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class WithdrawOfferRequest(_message.Message):
    __slots__ = ("workspace", "inquiry_id", "reason", "fence", "request_id")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    inquiry_id: str
    reason: str
    fence: RouterFence
    request_id: str
    def __init__(self, workspace: _Optional[str] = ..., inquiry_id: _Optional[str] = ..., reason: _Optional[str] = ..., fence: _Optional[_Union[RouterFence, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class WithdrawOfferResponse(_message.Message):
    __slots__ = ("withdrawn", "agent")
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    withdrawn: _agent_pb2.Reservation
    agent: _agent_pb2.Agent
    def __init__(self, withdrawn: _Optional[_Union[_agent_pb2.Reservation, _Mapping]] = ..., agent: _Optional[_Union[_agent_pb2.Agent, _Mapping]] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("workspace", "inquiry_id")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_ID_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    inquiry_id: str
    def __init__(self, workspace: _Optional[str] = ..., inquiry_id: _Optional[str] = ...) -> None: ...

class GetReservationResponse(_message.Message):
    __slots__ = ("reservation", "last_event")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    reservation: _agent_pb2.Reservation
    last_event: _task_pb2.TaskEvent
    def __init__(self, reservation: _Optional[_Union[_agent_pb2.Reservation, _Mapping]] = ..., last_event: _Optional[_Union[_task_pb2.TaskEvent, _Mapping]] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("workspace",)
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    def __init__(self, workspace: _Optional[str] = ...) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("reservations", "as_of")
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[_agent_pb2.Reservation]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, reservations: _Optional[_Iterable[_Union[_agent_pb2.Reservation, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchOffersRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("reservation", "assignment", "offered_at", "status", "reason", "message")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_OPEN: _ClassVar[Offer.Status]
        STATUS_WITHDRAWN: _ClassVar[Offer.Status]
        STATUS_TIMED_OUT: _ClassVar[Offer.Status]
        STATUS_MESSAGE: _ClassVar[Offer.Status]
    STATUS_OPEN: Offer.Status
    STATUS_WITHDRAWN: Offer.Status
    STATUS_TIMED_OUT: Offer.Status
    STATUS_MESSAGE: Offer.Status
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    OFFERED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reservation: _agent_pb2.Reservation
    assignment: _task_pb2.Assignment
    offered_at: _timestamp_pb2.Timestamp
    status: Offer.Status
    reason: str
    message: _task_pb2.ConversationMessage
    def __init__(self, reservation: _Optional[_Union[_agent_pb2.Reservation, _Mapping]] = ..., assignment: _Optional[_Union[_task_pb2.Assignment, _Mapping]] = ..., offered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[Offer.Status, str]] = ..., reason: _Optional[str] = ..., message: _Optional[_Union[_task_pb2.ConversationMessage, _Mapping]] = ...) -> None: ...

class WatchAgentsRequest(_message.Message):
    __slots__ = ("workspace",)
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    def __init__(self, workspace: _Optional[str] = ...) -> None: ...
