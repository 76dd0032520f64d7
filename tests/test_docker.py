"""The Docker files, checked without Docker: what ``docker compose up`` would trip over.

The compose files are parsed as compose reads them (PyYAML, then variables interpolated) and
the Dockerfile instruction by instruction. The shell snippets the containers run (healthchecks, the
cluster nodes' start command) are run here with bash against stand-in servers.
"""

from __future__ import annotations

import http.server
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from typer.testing import CliRunner

from encore.cli import cli
from encore.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
SINGLE = DOCKER / "compose.yaml"
CLUSTER = DOCKER / "compose.cluster.yaml"
COMPOSE_FILES = [SINGLE, CLUSTER]
QDRANT_IMAGE = "qdrant/qdrant"
DEFAULT_P2P_PORT = 6335


# --- reading the files ---------------------------------------------------------------------------


def interpolate(value: object) -> object:
    """What compose makes of the file's strings on a host that sets no variables: ``${X:-default}``
    is the default, ``${X}`` and ``$X`` are empty, and ``$$`` is a literal ``$``."""
    if isinstance(value, str):
        value = value.replace("$$", "\0")
        value = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)
        value = re.sub(r"\$[A-Za-z_][A-Za-z0-9_]*", "", value)
        return value.replace("\0", "$")
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def load_compose(path: Path) -> dict:
    return interpolate(yaml.safe_load(path.read_text()))


def services(path: Path) -> dict[str, dict]:
    return load_compose(path)["services"]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def command_tokens(service: dict) -> list[str]:
    """The words of the service's command; ``bash -c SCRIPT`` is split into the script's words."""
    cmd = service.get("command") or []
    tokens = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if tokens[:2] in (["bash", "-c"], ["sh", "-c"]):
        tokens = shlex.split(tokens[2])
    return tokens


def flag(tokens: list[str], name: str) -> str | None:
    return tokens[tokens.index(name) + 1] if name in tokens else None


def is_qdrant(service: dict) -> bool:
    return str(service.get("image", "")).split(":")[0] == QDRANT_IMAGE


def qdrant_nodes(path: Path) -> dict[str, dict]:
    return {name: s for name, s in services(path).items() if is_qdrant(s)}


def app(path: Path) -> tuple[str, dict]:
    built = [(name, s) for name, s in services(path).items() if "build" in s]
    assert len(built) == 1, f"{path.name}: expected one service built from the Dockerfile"
    return built[0]


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of every published port (short or long syntax)."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((port.get("host_ip", "0.0.0.0"), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host_ip, int(parts[-2]), int(parts[-1])))
    return out


def container_ports(service: dict) -> set[int]:
    return {int(str(p).split("/")[0]) for p in service.get("expose") or []} | {c for _, _, c in published(service)}


def mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of every volume entry."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((vol.get("source", ""), vol["target"]))
        else:
            parts = vol.split(":")
            out.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return out


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile(name: str) -> list[str]:
    return [args for instr, args in dockerfile_instructions() if instr == name]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec form (a JSON list), not {args!r}"
    return value


def dockerfile_argv() -> list[str]:
    """What the container runs by default: ENTRYPOINT then CMD (exec forms)."""
    entrypoint, cmd = dockerfile("ENTRYPOINT"), dockerfile("CMD")
    return (exec_form(entrypoint[-1]) if entrypoint else []) + (exec_form(cmd[-1]) if cmd else [])


def healthcheck_argv(args: str) -> list[str]:
    """The command of a Dockerfile ``HEALTHCHECK [options] CMD [...]``."""
    _, _, command = args.partition("CMD ")
    return exec_form(command.strip())


def dockerignore_keeps(rel: str) -> bool:
    """Whether the build context keeps ``rel`` under the repository's .dockerignore (last match wins)."""
    path = ROOT / ".dockerignore"
    if not path.is_file():
        return True
    keep = True
    parts = rel.split("/")
    for raw in path.read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        # A pattern matching a parent folder covers everything in it.
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch(p, pattern) or fnmatch(p, pattern.removeprefix("**/")) for p in prefixes):
            keep = negate
    return keep


# --- stand-in servers for the shell snippets -----------------------------------------------------


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        type(self).paths.append(self.path)
        body = b"ok"
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[int, type[_StatusHandler]]]:
    handler = type("Handler", (_StatusHandler,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_bash(script: str, *, cwd: Path | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout)


# --- compose: both files -------------------------------------------------------------------------


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_image_is_pinned(path: Path) -> None:
    for name, service in services(path).items():
        image = service.get("image")
        assert image, f"{path.name}: service {name} names no image (built ones get a versioned tag too)"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and "/" not in tag, f"{path.name}: {name} uses {image!r}, with no tag"
        assert tag != "latest", f"{path.name}: {name} uses {image!r}; pin a version"


def test_both_files_run_the_same_qdrant_version_within_the_clients_reach() -> None:
    images = {s["image"] for path in COMPOSE_FILES for s in qdrant_nodes(path).values()}
    assert len(images) == 1, f"the compose files pin different Qdrant versions: {sorted(images)}"
    server = images.pop().split(":v")[1]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    client = next(d for d in deps if d.startswith("qdrant-client")).split("==")[1]
    (s_major, s_minor), (c_major, c_minor) = (tuple(map(int, v.split(".")[:2])) for v in (server, client))
    # qdrant-client warns against (and may fail with) servers more than one minor version apart.
    assert s_major == c_major and abs(s_minor - c_minor) <= 1, f"server {server} vs qdrant-client {client}"


def test_the_two_deployments_are_separate_projects() -> None:
    # Without their own project names both files (same folder) would share containers and volumes.
    names = [load_compose(path).get("name") for path in COMPOSE_FILES]
    assert all(names) and len(set(names)) == len(names), names


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_the_app_points_at_a_qdrant_service_of_the_same_file(path: Path) -> None:
    name, service = app(path)
    url = urlsplit(environment(service)["ENCORE_QDRANT_URL"])
    all_services = services(path)
    assert url.scheme == "http" and url.hostname in all_services, f"{path.name}: {url.geturl()} is no service here"
    target = all_services[url.hostname]
    assert is_qdrant(target), f"{path.name}: {url.hostname} is not a Qdrant service"
    assert url.port in container_ports(target), f"{path.name}: {url.hostname} does not listen on {url.port}"
    assert url.port == 6333, "qdrant-client's url= speaks REST, on Qdrant's port 6333"
    assert depends_on(service).get(url.hostname) == "service_healthy", (
        f"{path.name}: {name} must wait until {url.hostname} is ready")


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_encore_variable_is_a_setting_with_a_valid_value(path: Path, monkeypatch) -> None:
    fields = set(Settings.model_fields)
    for name, service in services(path).items():
        env = {k: v for k, v in environment(service).items() if k.startswith("ENCORE_")}
        for key in env:
            assert key.removeprefix("ENCORE_").lower() in fields, f"{path.name}: {name} sets {key}, not a setting"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        Settings()  # raises if a value does not parse (e.g. ENCORE_WORLD_SHARDS: "six")


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_named_volumes_are_declared_and_used(path: Path) -> None:
    compose = load_compose(path)
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for source, target in mounts(service):
            assert source, f"{path.name}: {name} mounts an anonymous volume at {target}; name it so data survives"
            if source[0] not in "./~$":
                assert source in declared, f"{path.name}: {name} uses volume {source!r}, not declared"
                used.add(source)
    assert declared == used, f"{path.name}: volumes declared but unused: {sorted(declared - used)}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_depends_on_names_services_of_the_same_file(path: Path) -> None:
    all_services = services(path)
    for name, service in all_services.items():
        for dep, condition in depends_on(service).items():
            assert dep in all_services and dep != name, f"{path.name}: {name} depends on unknown {dep!r}"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in all_services[dep], f"{path.name}: {dep} has no healthcheck to wait for"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_every_service_has_a_healthcheck(path: Path) -> None:
    for name, service in services(path).items():
        if "healthcheck" in service:
            assert not service["healthcheck"].get("disable"), f"{path.name}: {name} disables its healthcheck"
            assert service["healthcheck"]["test"], f"{path.name}: {name} has an empty healthcheck"
            continue
        build = service.get("build")
        assert build, f"{path.name}: {name} has no healthcheck"
        built_from = (path.parent / build["context"] / build["dockerfile"]).resolve()
        assert built_from == DOCKERFILE.resolve()
        assert dockerfile("HEALTHCHECK"), f"{path.name}: {name} relies on the image's HEALTHCHECK, which is missing"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_published_ports_do_not_collide(path: Path) -> None:
    seen: dict[int, str] = {}
    for name, service in services(path).items():
        for _, host_port, _ in published(service):
            assert host_port not in seen, f"{path.name}: host port {host_port} published by {seen[host_port]} and {name}"
            seen[host_port] = name


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_the_app_is_built_from_the_dockerfile_and_its_port_published(path: Path) -> None:
    name, service = app(path)
    build = service["build"]
    assert (path.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    exposed = {int(p.split("/")[0]) for args in dockerfile("EXPOSE") for p in args.split()}
    assert {c for _, _, c in published(service)} & exposed, f"{path.name}: {name} publishes none of EXPOSE {exposed}"
    data = [t for _, t in mounts(service)]
    assert environment(service).get("ENCORE_DATA_DIR", "/data") in data, f"{path.name}: the data folder is no volume"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_qdrant_storage_is_on_a_volume_of_its_own(path: Path) -> None:
    sources = []
    for name, node in qdrant_nodes(path).items():
        storage = [s for s, t in mounts(node) if t == "/qdrant/storage"]
        assert storage, f"{path.name}: {name} keeps its data in the container (no volume at /qdrant/storage)"
        sources += storage
    assert len(sources) == len(set(sources)), f"{path.name}: Qdrant nodes share a storage volume: {sources}"


# --- the cluster -----------------------------------------------------------------------------------


def test_the_cluster_has_three_nodes_with_cluster_mode_on() -> None:
    nodes = qdrant_nodes(CLUSTER)
    assert len(nodes) == 3, sorted(nodes)
    for name, node in nodes.items():
        assert environment(node).get("QDRANT__CLUSTER__ENABLED") == "true", f"{name}: cluster mode is off"


def test_the_cluster_nodes_are_wired_by_uri_and_bootstrap() -> None:
    nodes = qdrant_nodes(CLUSTER)
    first = [n for n, s in nodes.items() if flag(command_tokens(s), "--bootstrap") is None]
    assert len(first) == 1, f"exactly one node starts the cluster (no --bootstrap), got {first}"
    first_uri = flag(command_tokens(nodes[first[0]]), "--uri")
    for name, node in nodes.items():
        tokens = command_tokens(node)
        p2p = int(environment(node).get("QDRANT__CLUSTER__P2P__PORT", DEFAULT_P2P_PORT))
        assert "./qdrant" in tokens, f"{name}: the command does not run ./qdrant"
        assert flag(tokens, "--uri") == f"http://{name}:{p2p}", f"{name}: --uri must be its own name and p2p port"
        assert p2p in container_ports(node)
        if name != first[0]:
            assert flag(tokens, "--bootstrap") == first_uri, f"{name}: --bootstrap must be the first node's --uri"
            assert first[0] in depends_on(node), f"{name} must start after {first[0]}"


def test_the_app_asks_for_shards_and_replicas_the_cluster_can_hold() -> None:
    env = environment(app(CLUSTER)[1])
    n_nodes = len(qdrant_nodes(CLUSTER))
    for tier in ("CATALOG", "WORLD"):
        shards, replicas = int(env[f"ENCORE_{tier}_SHARDS"]), int(env[f"ENCORE_{tier}_REPLICAS"])
        assert shards >= n_nodes and shards % n_nodes == 0, f"{tier}: {shards} shards do not spread over {n_nodes} nodes"
        assert 2 <= replicas <= n_nodes, f"{tier}: {replicas} replicas on {n_nodes} nodes survive no node loss"
    assert all(depends_on(app(CLUSTER)[1]).get(n) == "service_healthy" for n in qdrant_nodes(CLUSTER))


def test_a_joining_node_waits_for_the_first_then_runs_qdrant_with_its_flags(tmp_path: Path) -> None:
    node = qdrant_nodes(CLUSTER)["qdrant-2"]
    script = node["command"][2]
    port = _free_port()
    script = script.replace("/dev/tcp/qdrant-1/6335", f"/dev/tcp/127.0.0.1/{port}")
    stub = tmp_path / "qdrant"
    stub.write_text('#!/bin/sh\necho "qdrant $*"\n')
    stub.chmod(0o755)

    proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1.5)  # node 1's peer port is not up: still waiting
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))
            listener.listen()
            out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert out.strip() == "qdrant --bootstrap http://qdrant-1:6335 --uri http://qdrant-2:6335"

    # A restart (raft state on the volume) does not wait for node 1: the node rejoins from its state.
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "raft_state.json").write_text("{}")
    done = _run_bash(script, cwd=tmp_path, timeout=5)
    assert done.returncode == 0 and done.stdout.startswith("qdrant --bootstrap")


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_the_qdrant_healthcheck_asks_readyz_and_follows_its_status(path: Path, http_server) -> None:
    port, handler = http_server
    for name, node in qdrant_nodes(path).items():
        test = node["healthcheck"]["test"]
        assert test[:3] == ["CMD", "bash", "-c"], f"{name}: the Qdrant image has bash, not curl"
        script = test[3].replace("/dev/tcp/127.0.0.1/6333", f"/dev/tcp/127.0.0.1/{port}")
        assert script != test[3], f"{name}: the healthcheck does not ask port 6333"
        handler.status = 200
        assert _run_bash(script).returncode == 0, f"{name}: a ready node is reported unhealthy"
        handler.status = 503
        assert _run_bash(script).returncode != 0, f"{name}: a node that is not ready is reported healthy"
        assert set(handler.paths) == {"/readyz"}
    nothing = test[3].replace("/dev/tcp/127.0.0.1/6333", f"/dev/tcp/127.0.0.1/{_free_port()}")
    assert _run_bash(nothing).returncode != 0, "a node that does not answer is reported healthy"


# --- the Dockerfile ---------------------------------------------------------------------------------


def test_the_base_image_is_pinned_and_slim() -> None:
    (base,) = dockerfile("FROM")
    image = base.split()[0]
    assert ":" in image and not image.endswith(":latest"), image
    assert "slim" in image, f"{image}: use a slim base"


def test_every_copy_source_exists_and_reaches_the_build_context() -> None:
    copies = dockerfile("COPY")
    assert copies
    for args in copies:
        words = [w for w in args.split() if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert dockerignore_keeps(source), f"COPY {source}: left out of the build context by .dockerignore"


def test_the_build_context_leaves_out_the_heavy_folders() -> None:
    for heavy in (".venv", "data", ".git", "bench/.cache", "tests/artifacts"):
        assert not dockerignore_keeps(heavy), f"{heavy} would be sent to the Docker daemon on every build"
    assert not dockerignore_keeps("encore/__pycache__/x.pyc")


def test_the_image_serves_on_every_interface_on_the_exposed_port() -> None:
    argv = dockerfile_argv()
    assert argv[:2] == ["encore", "serve"], f"the container runs {argv}"
    assert flag(argv, "--host") == "0.0.0.0", "inside a container, 127.0.0.1 is unreachable from outside"
    port = int(flag(argv, "--port") or 8000)
    exposed = {int(p.split("/")[0]) for args in dockerfile("EXPOSE") for p in args.split()}
    assert exposed == {port}
    for path in COMPOSE_FILES:
        assert {c for _, _, c in published(app(path)[1])} == {port}, f"{path.name} publishes another port"
    # The options exist on the real command.
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "--host" in help_text and "--port" in help_text


def test_the_image_runs_as_an_unprivileged_user_with_a_data_volume() -> None:
    instructions = dockerfile_instructions()
    users = [args for instr, args in instructions if instr == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the server must not run as root"
    volumes = [v for args in dockerfile("VOLUME") for v in (exec_form(args) if args.startswith("[") else args.split())]
    env = " ".join(dockerfile("ENV"))
    assert "ENCORE_DATA_DIR=/data" in env and "/data" in volumes
    user = users[-1]
    assert any(f"chown {user}" in args for args in dockerfile("RUN")), "the data folder must belong to the user"


def test_the_image_installs_ffmpeg_and_the_models_from_wheels() -> None:
    runs = " ".join(dockerfile("RUN"))
    assert "ffmpeg" in runs, "decoding uploads needs ffmpeg"
    bootstrap = (ROOT / "scripts" / "_bootstrap.sh").read_text()
    musicnn = re.search(r"--no-deps \"(musicnn==[\d.]+)\"", bootstrap).group(1)
    # The same pinned wheel as a local install, without its TensorFlow 1.x / numpy<1.17 pins.
    assert re.search(rf"pip install --no-deps {re.escape(musicnn)}\b", runs), f"install {musicnn} with --no-deps"
    env = " ".join(dockerfile("ENV"))
    assert "HF_HUB_OFFLINE=1" in env, "no model hub at run time"


def test_the_image_healthcheck_asks_health_on_the_served_port(http_server) -> None:
    port, handler = http_server
    (args,) = dockerfile("HEALTHCHECK")
    argv = healthcheck_argv(args)
    served = int(flag(dockerfile_argv(), "--port") or 8000)
    assert f"127.0.0.1:{served}/v1/health" in argv[-1]
    argv = [sys.executable if a == "python" else a.replace(f"127.0.0.1:{served}", f"127.0.0.1:{port}")
            for a in argv]
    handler.status = 200
    assert subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
    handler.status = 503
    assert subprocess.run(argv, capture_output=True, timeout=20).returncode != 0
    assert set(handler.paths) == {"/v1/health"}


# --- docs/DOCKER.md ---------------------------------------------------------------------------------


def test_the_docker_guide_names_real_settings_files_and_versions() -> None:
    guide = (ROOT / "docs" / "DOCKER.md").read_text()
    fields = set(Settings.model_fields)
    for var in set(re.findall(r"\bENCORE_[A-Z0-9_]+", guide)):
        assert var.removeprefix("ENCORE_").lower() in fields, f"docs/DOCKER.md names {var}, not a setting"
    for path in set(re.findall(r"\b(?:docker|scripts|encore|tests)/[\w./-]+\.(?:yaml|py|sh)|docker/Dockerfile", guide)):
        assert (ROOT / path).exists(), f"docs/DOCKER.md names {path}, which does not exist"
    (qdrant,) = {s["image"] for s in qdrant_nodes(SINGLE).values()}
    assert all(tag == qdrant for tag in re.findall(r"qdrant/qdrant:v[\d.]+", guide)), "the guide names another Qdrant"
    # Names compose gives things: <project>_<volume>, <project>_default (the network).
    known = {"encore_catalog", "encore_world"}  # the collections, not compose names
    for path in COMPOSE_FILES:
        compose = load_compose(path)
        known |= {f"{compose['name']}_{v}" for v in [*(compose.get("volumes") or {}), "default"]}
        assert f"-f docker/{path.name} up" in guide, f"the guide does not say how to start {path.name}"
    for name in set(re.findall(r"\bencore(?:-cluster)?_[\w-]+", guide)):
        assert name in known, f"docs/DOCKER.md names {name}, which neither compose file creates"
