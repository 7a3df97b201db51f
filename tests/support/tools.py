"""The tools a test tier needs beyond Python: found, or the tier is skipped and named.

`.ci/tools` lists each tool with its Debian package and the tier that needs it;
`make test` runs `.ci/ensure-tools` first, which installs what it can. A tool
still missing skips its tests with the reason, and the session ends with one
line per tier that did not run. With OMNIROUTE_REQUIRE_TOOLS=1 (as CI sets) a
missing tool fails instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS_FILE = Path(__file__).resolve().parents[2] / ".ci" / "tools"


@dataclass(frozen=True)
class Tool:
    command: str
    package: str
    tier: str


def listed() -> dict[str, Tool]:
    """The tools in .ci/tools, by command."""
    tools: dict[str, Tool] = {}
    for line in TOOLS_FILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command, package, tier = line.split(None, 2)
        tools[command] = Tool(command, package, tier)
    return tools


# Tiers skipped in this session, reported by tests/conftest.py at the end.
not_run: dict[str, str] = {}


def require(command: str) -> str:
    """The path of `command`, or skip the calling test (fail under OMNIROUTE_REQUIRE_TOOLS=1)."""
    tool = listed()[command]  # a KeyError here means: add the tool to .ci/tools
    binary = shutil.which(command)
    if binary is not None:
        return binary
    reason = (
        f"{command} not found (Debian package '{tool.package}'; "
        f"`make test` installs it when run as root): not run: {tool.tier}"
    )
    if os.environ.get("OMNIROUTE_REQUIRE_TOOLS") == "1":
        pytest.fail(reason)
    not_run[tool.tier] = reason
    pytest.skip(reason)
