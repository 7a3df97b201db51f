"""The router's state tables (Faust tables, changelog topics): reading and writing them.

Values are the routing core's plain dicts (JSON). Keys that name an inquiry or
a thread are scoped by workspace (`workspace/id`): two workspaces may use the
same ids. Every write happens inside a stream event, so Faust puts it on that
event's partition, the workspace's.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from omniroute_router.config import WorkspaceConfig
from omniroute_router.decisions import Changes
from omniroute_router.model import AgentView, QueuedInquiry
from omniroute_router.routing import WorkspaceRouter

Table = MutableMapping[str, Any]


class RoutingTables:
    """The five tables: inquiries, agents, threads, workspaces (-> partition), sweeps."""

    def __init__(self) -> None:
        self.inquiries: Table = {}
        self.agents: Table = {}
        self.threads: Table = {}
        self.workspaces: Table = {}
        self.sweeps: Table = {}

    def load(self, workspace: str, config: WorkspaceConfig) -> WorkspaceRouter:
        """A workspace's routing state as the tables hold it."""
        router = WorkspaceRouter(workspace, config)
        for key, value in self.inquiries.items():
            if value.get("workspace") != workspace:
                continue
            if "finished_at" in value:
                router.restore_finished(value.get("id", key), value["finished_at"])
            else:
                router.restore_inquiry(QueuedInquiry.from_dict(value))
        for value in self.agents.values():
            if value.get("workspace") == workspace:
                router.restore_agent(AgentView.from_dict(value))
        prefix = workspace + "/"
        for key, value in self.threads.items():
            if key.startswith(prefix):
                router.restore_thread(key[len(prefix) :], value[0], value[1])
        return router

    def persist(self, router: WorkspaceRouter, changes: Changes) -> None:
        """Write (or delete) what changed."""
        for inquiry_id in changes.inquiries:
            key = f"{router.workspace}/{inquiry_id}"
            inquiry = router.inquiries.get(inquiry_id)
            if inquiry is not None:
                self.inquiries[key] = inquiry.to_dict()
            elif inquiry_id in router.finished:
                self.inquiries[key] = {
                    "id": inquiry_id,
                    "workspace": router.workspace,
                    "finished_at": router.finished[inquiry_id],
                }
            else:
                self.inquiries.pop(key, None)
        for agent_id in changes.agents:
            agent = router.agents.get(agent_id)
            if agent is None:
                self.agents.pop(agent_id, None)
            else:
                self.agents[agent_id] = agent.to_dict()
        for thread in changes.threads:
            key = f"{router.workspace}/{thread}"
            if thread in router.threads:
                self.threads[key] = list(router.threads[thread])
            else:
                self.threads.pop(key, None)

    def place(self, workspace: str, partition: int) -> None:
        """Record the partition a workspace lives on (ticks visit every one)."""
        if self.workspaces.get(workspace) != partition:
            self.workspaces[workspace] = partition

    def workspaces_on(self, partition: int) -> list[str]:
        """Every workspace ever seen on `partition`."""
        return [ws for ws, owner in list(self.workspaces.items()) if owner == partition]

    def sweep_checkpoint(self, partition: int) -> int | None:
        """The next inquiries offset the sweep reads on `partition`, if it swept before."""
        found = self.sweeps.get(str(partition))
        return None if found is None else int(found)

    def set_sweep_checkpoint(self, partition: int, offset: int) -> None:
        """Record how far the sweep has read `partition`."""
        self.sweeps[str(partition)] = offset
