"""`make deploy-setup` (omniroute.provision): what compose needs, the desk's tokens, rotation."""

from __future__ import annotations

import json
import re
from pathlib import Path

from omniroute.provision import Options, main, provision, read_env, write_env

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def fresh(tmp_path: Path) -> Path:
    """A deploy folder with the shipped .env.example and nothing generated yet."""
    (tmp_path / ".env.example").write_text((DEPLOY / ".env.example").read_text())
    return tmp_path


def test_every_variable_compose_requires_is_set_by_the_setup_step(tmp_path: Path) -> None:
    provision(Options(deploy_dir=fresh(tmp_path)))
    env = read_env(tmp_path / ".env")
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", (DEPLOY / "docker-compose.yml").read_text()))
    assert {"DESK_AGENT_STATE_TOKEN", "DESK_SUPERVISOR_TOKENS"} <= required
    assert sorted(name for name in required if not env.get(name)) == []


def test_the_desk_gets_its_own_administrator_token(tmp_path: Path) -> None:
    provision(Options(deploy_dir=fresh(tmp_path)))
    env = read_env(tmp_path / ".env")
    admins = json.loads(env["AGENT_STATE_ADMIN_TOKENS"])
    assert set(admins) == {"router", "desk", "admin"}
    assert len(set(admins.values())) == 3
    assert env["DESK_AGENT_STATE_TOKEN"] == admins["desk"]
    assert env["AGENT_STATE_TOKEN"] == admins["router"]


def test_an_older_setup_gains_the_desk_token_without_rotating_the_others(tmp_path: Path) -> None:
    provision(Options(deploy_dir=fresh(tmp_path)))
    env = read_env(tmp_path / ".env")
    before = json.loads(env["AGENT_STATE_ADMIN_TOKENS"])
    older = {name: before[name] for name in ("router", "admin")}
    write_env(tmp_path / ".env", {"AGENT_STATE_ADMIN_TOKENS": json.dumps(older)})
    provision(Options(deploy_dir=tmp_path))
    after = json.loads(read_env(tmp_path / ".env")["AGENT_STATE_ADMIN_TOKENS"])
    assert {name: after[name] for name in ("router", "admin")} == older
    assert after["desk"] and after["desk"] not in older.values()


def test_a_supervisor_token_per_workspace_is_printed_and_replaced_on_request(
    tmp_path: Path, capsys: object
) -> None:
    fresh(tmp_path)
    assert main(["--dir", str(tmp_path), "--supervisor", "acme", "--supervisor", "globex"]) == 0
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    tokens = json.loads(read_env(tmp_path / ".env")["DESK_SUPERVISOR_TOKENS"])
    assert sorted(tokens.values()) == ["acme", "globex"]
    for token, workspace in tokens.items():
        assert f"supervisor token for workspace {workspace}: {token}" in printed
    provision(Options(deploy_dir=tmp_path, supervisors=("acme",)))
    again = json.loads(read_env(tmp_path / ".env")["DESK_SUPERVISOR_TOKENS"])
    assert sorted(again.values()) == ["acme", "globex"]
    old_acme = next(t for t, w in tokens.items() if w == "acme")
    assert old_acme not in again  # the old token no longer opens the wallboard
    provision(Options(deploy_dir=tmp_path, rotate_tokens=True))
    rotated = json.loads(read_env(tmp_path / ".env")["DESK_SUPERVISOR_TOKENS"])
    assert sorted(rotated.values()) == ["acme", "globex"] and not set(rotated) & set(again)
