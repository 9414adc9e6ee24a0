"""The files operators run it with: compose.yaml valid by the Compose spec, the proxy keeping SSE unbuffered,
the image running as a non-root user with a health check. (Docker itself does not run on the build machine.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import REPO

CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def test_compose_file_is_valid_by_the_compose_spec() -> None:
    # check-jsonschema carries the Compose spec's JSON schema itself: no network needed.
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(REPO / "compose.yaml")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_postgres_a_migration_two_processes_and_an_https_proxy() -> None:
    services = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))["services"]
    servers = [name for name, service in services.items() if service.get("image") == "tsunagi:latest" and "command" not in service]
    assert servers == ["tsunagi-1", "tsunagi-2"]
    assert services["migrate"]["command"] == ["tsunagi", "db", "upgrade"]
    for name in servers:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    for name in [*servers, "migrate"]:
        assert services[name]["environment"]["ENCRYPTION_KEYS"].startswith("${ENCRYPTION_KEYS:?"), "required, never defaulted"
    assert "443:443" in services["proxy"]["ports"]
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert "reverse_proxy tsunagi-1:8080 tsunagi-2:8080" in caddyfile
    assert "flush_interval -1" in caddyfile, "Server-Sent Events must not be buffered by the proxy"


def test_the_image_runs_as_a_user_and_checks_its_health() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any("/healthz" in line for line in lines)
    assert lines[-1].startswith("CMD") and "serve" in lines[-1]
