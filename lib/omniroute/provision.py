"""Generate a deployment's secrets: agent-state tokens, a local CA and TLS certificates.

    python -m omniroute.provision                 # deploy/.env and deploy/secrets/
    python -m omniroute.provision --desk ann      # also a desktop token for agent ann
    python -m omniroute.provision --supervisor acme  # a wallboard token for workspace acme
    python -m omniroute.provision --rotate-tokens # new tokens (restart the services)
    python -m omniroute.provision --rotate-certs  # new agent-state certificate, same CA
    python -m omniroute.provision --rotate-ca     # new CA and certificate
    python -m omniroute.provision --kubernetes    # also deploy/secrets/kubernetes.yaml

(`make deploy-setup ARGS=...` runs it from the repository's virtualenv.)

What it writes, keeping whatever already exists unless asked to rotate it:
- `secrets/ca.pem`, `secrets/ca.key`: a local certificate authority;
- `secrets/agent-state.pem` (certificate then CA: the chain agent-state
  serves) and `secrets/agent-state.key`, valid for the compose and
  Kubernetes service names and localhost (the container's health probe);
- in `.env` (created from `.env.example`): `AGENT_STATE_ADMIN_TOKENS` (the
  router's, the desk service's and an administrator's token),
  `AGENT_STATE_TOKEN` (the router's), `DESK_AGENT_STATE_TOKEN` (the desk
  service's), `AGENT_STATE_DESKTOP_TOKENS` (one per `--desk`: what the agent
  signs in to the desk with), `DESK_SUPERVISOR_TOKENS` (one per
  `--supervisor`: the wallboard of that workspace), `INGEST_API_KEYS` (one
  key, `default`, for every workspace without the steer right: edit it into
  one key per client), `GRAFANA_ADMIN_PASSWORD`.
Tokens are 256-bit random values; nothing is printed except the desktop and
supervisor tokens asked for.
Requires the `cryptography` package (in the `dev` and `setup` extras).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Names agent-state is reached by: compose service, Kubernetes service, the probe.
SERVER_NAMES = (
    "agent-state",
    "omniroute-agent-state",
    "omniroute-agent-state.omniroute",
    "omniroute-agent-state.omniroute.svc",
    "omniroute-agent-state.omniroute.svc.cluster.local",
    "localhost",
)
CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers accept; rotate yearly (deploy/README.md)


@dataclass(frozen=True)
class Options:
    """What to generate or rotate."""

    deploy_dir: Path
    desks: tuple[str, ...] = ()
    supervisors: tuple[str, ...] = ()  # workspaces
    rotate_tokens: bool = False
    rotate_certs: bool = False
    rotate_ca: bool = False
    kubernetes_namespace: str = ""


def token() -> str:
    """A 256-bit bearer token, URL-safe."""
    return secrets.token_urlsafe(32)


def provision(options: Options, now: datetime.datetime | None = None) -> list[str]:
    """Write what is missing (or asked to rotate); return what was written, for the operator."""
    now = now or datetime.datetime.now(datetime.UTC)
    folder = options.deploy_dir / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    done: list[str] = []
    ca_pem, ca_key = folder / "ca.pem", folder / "ca.key"
    server_pem, server_key = folder / "agent-state.pem", folder / "agent-state.key"
    if options.rotate_ca or not (ca_pem.exists() and ca_key.exists()):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(ca_key, _key_bytes(key), private=True)  # mounted nowhere
        _write(ca_pem, _ca_certificate(key, now).public_bytes(serialization.Encoding.PEM))
        done.append(f"new CA: {ca_pem}")
    ca_private = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    assert isinstance(ca_private, ec.EllipticCurvePrivateKey)
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    if (
        options.rotate_ca
        or options.rotate_certs
        or not (server_pem.exists() and server_key.exists())
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _server_certificate(key, ca_private, ca_cert, now)
        _write(server_key, _key_bytes(key))
        chain = cert.public_bytes(serialization.Encoding.PEM) + ca_pem.read_bytes()
        _write(server_pem, chain)
        done.append(f"new agent-state certificate: {server_pem}")

    env_file = options.deploy_dir / ".env"
    if not env_file.exists():
        example = options.deploy_dir / ".env.example"
        env_file.write_text(example.read_text() if example.exists() else "")
        env_file.chmod(0o600)
        done.append(f"created {env_file} from .env.example")
    env = read_env(env_file)
    admins = _json_map(env.get("AGENT_STATE_ADMIN_TOKENS", ""))
    updates: dict[str, str] = {}
    services = ("router", "desk", "admin")
    missing = [name for name in services if not admins.get(name)]
    if options.rotate_tokens or missing:
        fresh = services if options.rotate_tokens else missing
        admins = {**admins, **{name: token() for name in fresh}}
        updates["AGENT_STATE_ADMIN_TOKENS"] = json.dumps(admins, separators=(",", ":"))
        done.append(f"new {', '.join(fresh)} tokens in AGENT_STATE_ADMIN_TOKENS")
    if env.get("AGENT_STATE_TOKEN") != admins["router"]:
        updates["AGENT_STATE_TOKEN"] = admins["router"]
    if env.get("DESK_AGENT_STATE_TOKEN") != admins["desk"]:
        updates["DESK_AGENT_STATE_TOKEN"] = admins["desk"]
    for variable, owners, kind in (
        ("AGENT_STATE_DESKTOP_TOKENS", options.desks, "desktop token for agent"),
        ("DESK_SUPERVISOR_TOKENS", options.supervisors, "supervisor token for workspace"),
    ):
        if options.rotate_tokens or owners or not env.get(variable):
            tokens, issued = _issue(_json_map(env.get(variable, "")), owners, options.rotate_tokens)
            updates[variable] = json.dumps(tokens, separators=(",", ":"))
            done += [f"{kind} {owner}: {new}" for new, owner in issued]
            if options.rotate_tokens and tokens:
                done.append(f"new tokens for every entry in {variable}")
    ingest_keys = _json_any(env.get("INGEST_API_KEYS", ""))
    if options.rotate_tokens or not ingest_keys:
        ingest_keys = ingest_keys or {"default": {"workspaces": ["*"], "steer": False}}
        for entry in ingest_keys.values():
            entry["key"] = token()
        updates["INGEST_API_KEYS"] = json.dumps(ingest_keys, separators=(",", ":"))
        done.append("new ingest API keys in INGEST_API_KEYS")
    if options.rotate_tokens or env.get("GRAFANA_ADMIN_PASSWORD", "") in ("", "admin"):
        updates["GRAFANA_ADMIN_PASSWORD"] = token()
        done.append("new GRAFANA_ADMIN_PASSWORD in .env")
    if updates:
        write_env(env_file, updates)

    if options.kubernetes_namespace:
        manifest = folder / "kubernetes.yaml"
        env = read_env(env_file)
        _write(
            manifest,
            kubernetes_secrets(
                options.kubernetes_namespace,
                env,
                server_pem.read_bytes(),
                server_key.read_bytes(),
                ca_pem.read_bytes(),
            ).encode(),
            private=True,
        )
        done.append(f"Kubernetes Secrets: kubectl apply -f {manifest}")
    return done


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose .env file (single quotes: literal)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def write_env(path: Path, updates: dict[str, str]) -> None:
    """Set `updates` in the .env file in place (appended when absent), single-quoted."""
    lines = path.read_text().splitlines()
    left = dict(updates)
    for i, line in enumerate(lines):
        key = line.partition("=")[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in left:
            lines[i] = f"{key}='{left.pop(key)}'"
    lines += [f"{key}='{value}'" for key, value in left.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def kubernetes_secrets(
    namespace: str, env: dict[str, str], chain: bytes, key: bytes, ca: bytes
) -> str:
    """The Secrets deploy/kubernetes reads: agent-state's tokens and certificate, the
    router's token, the desk's token and supervisor tokens, the CA (what a client of
    agent-state needs to check it), ingest's API keys and webhook secrets."""
    import yaml

    def secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": kind,
            "metadata": {"name": name, "namespace": namespace},
            "stringData": data,
        }

    docs = [
        secret(
            "omniroute-agent-state-tokens",
            {
                "AGENT_STATE_ADMIN_TOKENS": env["AGENT_STATE_ADMIN_TOKENS"],
                "AGENT_STATE_DESKTOP_TOKENS": env.get("AGENT_STATE_DESKTOP_TOKENS") or "{}",
            },
        ),
        secret("omniroute-router-token", {"AGENT_STATE_TOKEN": env["AGENT_STATE_TOKEN"]}),
        secret(
            "omniroute-desk-tokens",
            {
                "AGENT_STATE_TOKEN": env["DESK_AGENT_STATE_TOKEN"],
                "DESK_SUPERVISOR_TOKENS": env.get("DESK_SUPERVISOR_TOKENS") or "{}",
            },
        ),
        secret(
            "omniroute-ingest",
            {
                name: env[name]
                for name in (
                    "INGEST_API_KEYS",
                    "INGEST_SMS_AUTH_TOKEN",
                    "INGEST_PUBLIC_BASE_URL",
                    "INGEST_SOCIAL_APP_SECRET",
                    "INGEST_SOCIAL_VERIFY_TOKEN",
                )
                if env.get(name)
            },
        ),
        secret(
            "omniroute-agent-state-tls",
            {"tls.crt": chain.decode(), "tls.key": key.decode()},
            "kubernetes.io/tls",
        ),
        secret("omniroute-agent-state-ca", {"ca.crt": ca.decode()}),
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def _issue(
    tokens: dict[str, str], owners: tuple[str, ...], rotate: bool
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """`tokens` (token -> owner) with every token new when `rotate`, and a new one for
    each of `owners` (their old one dropped); also the (token, owner) pairs issued."""
    if rotate:
        tokens = {token(): owner for owner in tokens.values()}
    issued = []
    for owner in owners:
        tokens = {t: o for t, o in tokens.items() if o != owner}
        new = token()
        tokens[new] = owner
        issued.append((new, owner))
    return tokens, issued


def _json_any(text: str) -> dict[str, dict[str, object]]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): dict(v) for k, v in value.items() if isinstance(v, dict)}


def _json_map(text: str) -> dict[str, str]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _write(path: Path, data: bytes, private: bool = False) -> None:
    """Write `data`; `private` files (the CA key, the Kubernetes Secrets) are owner-only.

    agent-state's key must stay readable to the container's own user (uid
    10001) through the bind mount; the secrets folder is 0700, so other users
    of the host cannot reach it.
    """
    path.write_bytes(data)
    path.chmod(0o600 if private else 0o644)


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Omniroute local CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    now: datetime.datetime,
) -> x509.Certificate:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_NAMES]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-state")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m omniroute.provision", description=__doc__)
    parser.add_argument("--dir", default="deploy", help="the deploy folder (default: deploy)")
    parser.add_argument(
        "--desk", action="append", default=[], help="agent id to give a desktop token"
    )
    parser.add_argument(
        "--supervisor",
        action="append",
        default=[],
        metavar="WORKSPACE",
        help="workspace to give a supervisor (wallboard) token",
    )
    parser.add_argument("--rotate-tokens", action="store_true")
    parser.add_argument("--rotate-certs", action="store_true")
    parser.add_argument("--rotate-ca", action="store_true")
    parser.add_argument(
        "--kubernetes",
        nargs="?",
        const="omniroute",
        default="",
        metavar="NAMESPACE",
        help="also write secrets/kubernetes.yaml for NAMESPACE (default omniroute)",
    )
    args = parser.parse_args(argv)
    options = Options(
        deploy_dir=Path(args.dir),
        desks=tuple(args.desk),
        supervisors=tuple(args.supervisor),
        rotate_tokens=args.rotate_tokens,
        rotate_certs=args.rotate_certs,
        rotate_ca=args.rotate_ca,
        kubernetes_namespace=args.kubernetes,
    )
    for line in provision(options) or ["nothing to do: every secret exists"]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
