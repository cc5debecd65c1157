"""The deployment files (deploy/, docs/deploy.md) agree with the code they start and configure."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from bot.cli import parser as cli_parser
from bot.config import PROJECT_ROOT, load_config
from bot.db import Database
from tests.console_helpers import _free_port

DEPLOY = PROJECT_ROOT / "deploy"
UNITS = DEPLOY / "systemd"
GUIDE = PROJECT_ROOT / "docs" / "deploy.md"
CODE_DIRS = ("bot", "flows", "nlu")

# What the deployment names before the branches that build it are merged (issue 16: the lead's
# `linli serve --workers`, the NLU server helper's `linli nlu serve` and LINLI_NLU_URL). Each
# entry is checked to be still missing from the code: once its branch is merged the test says
# so, and the entry is deleted here, so that from then on it is checked like the rest.
# Commands and variables the deployment names before the code that reads them is merged (a
# branch in flight); empty when everything has landed.
PENDING_COMMANDS: dict[tuple[str, ...], str] = {}
PENDING_VARIABLES: dict[str, str] = {}

# Variables the deployment names that are not Linli's: compose's own (.env), the official
# images' and Rasa's.
COMPOSE_VARIABLES = {"POSTGRES_PASSWORD", "SITE_ADDRESS", "WORKERS"}


# --- small readers of the file formats ----------------------------------------------------------

def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (systemd's EnvironmentFile and compose's env_file), comments skipped."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}: {line!r}"
            assert value == value.strip() and not value.startswith(("'", '"')), line
            values[key] = value
    return values


def unit_file(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def unit_values(unit, section: str, key: str) -> list[str]:
    return [value for k, value in unit[section] if k == key]


def nginx_blocks(text: str) -> list:
    """nginx's syntax as a tree: each directive is (words, children or None)."""
    tokens = re.findall(r"[{};]|[^\s{};]+", re.sub(r"#[^\n]*", "", text))
    root: list = []
    stack, words = [root], []
    for token in tokens:
        if token == ";":
            stack[-1].append((words, None))
            words = []
        elif token == "{":
            block: list = []
            stack[-1].append((words, block))
            stack.append(block)
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces in nginx.conf"
    return root


def caddy_blocks(text: str) -> list:
    """The Caddyfile as a tree: each line is (words, children or None)."""
    root: list = []
    stack = [root]
    for line in text.splitlines():
        words = line.split("#", 1)[0].split() if not line.lstrip().startswith("#") else []
        if not words:
            continue
        if words == ["}"]:
            stack.pop()
        elif words[-1] == "{":
            block: list = []
            stack[-1].append((words[:-1], block))
            stack.append(block)
        else:
            stack[-1].append((words, None))
    assert len(stack) == 1, "unbalanced braces in the Caddyfile"
    return root


def walk(blocks):
    for words, children in blocks:
        yield words, children
        if children:
            yield from walk(children)


def find(blocks, *first: str):
    return [(words, children) for words, children in walk(blocks)
            if tuple(words[:len(first)]) == first]


def size_bytes(text: str) -> int:
    """nginx's sizes ("21m": binary) and Caddy's (go-humanize: "21MB" is 21,000,000 bytes,
    "21MiB" 21 × 1024²)."""
    number, unit = re.fullmatch(r"(\d+)\s*([kKmMgG]?i?[bB]?)", text).groups()
    unit = unit.lower()
    if unit in ("", "b"):
        return int(number)
    binary = len(unit) == 1 or "i" in unit
    return int(number) * (1024 if binary else 1000) ** (" kmg".index(unit[0]))


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yml").read_text(encoding="utf-8"))


def example() -> dict[str, str]:
    return env_file(DEPLOY / "linli.env.example")


def code_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8")
                     for folder in CODE_DIRS for path in (PROJECT_ROOT / folder).rglob("*.py"))


def deploy_texts() -> dict[str, str]:
    files = [path for path in DEPLOY.rglob("*") if path.is_file()] + [GUIDE]
    return {str(path.relative_to(PROJECT_ROOT)): path.read_text(encoding="utf-8")
            for path in files}


# --- compose ------------------------------------------------------------------------------------

def test_compose_services_hang_together():
    spec = compose()
    services = spec["services"]
    assert set(services) == {"postgres", "migrate", "linli", "nlu", "caddy"}
    assert services["postgres"]["image"] == "postgres:15"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["caddy"]["image"] == "caddy:2"
    for name in ("migrate", "linli", "nlu"):
        build = services[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == PROJECT_ROOT and (context / build["dockerfile"]).is_file(), name
    assert services["nlu"]["profiles"] == ["nlu"]
    # The workers wait for a healthy database and for migrations that finished successfully.
    assert services["linli"]["depends_on"]["migrate"]["condition"] == \
        "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in services.items():
        for other in service.get("depends_on", {}):
            assert other in services, f"{name} depends on {other}, not a service"
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in services
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert source in ("./config.yml",) or (DEPLOY / source).is_file(), volume
            else:
                assert source in spec["volumes"], f"{name}: volume {source} is not declared"
    # Caddy's fixed address is in the network's subnet and is what the guide and the Caddyfile
    # tell staff to name in console.trusted_proxies.
    address = services["caddy"]["networks"]["linli"]["ipv4_address"]
    subnet = spec["networks"]["linli"]["ipam"]["config"][0]["subnet"]
    assert ip_address(address) in ip_network(subnet)
    assert f"trusted_proxies: [{address}]" in GUIDE.read_text(encoding="utf-8")
    assert f"[{address}]" in (DEPLOY / "Caddyfile").read_text(encoding="utf-8")


def test_compose_workers_listen_where_caddy_sends():
    spec = compose()
    environment = spec["services"]["linli"]["environment"]
    caddy = caddy_blocks((DEPLOY / "Caddyfile").read_text(encoding="utf-8"))
    upstreams = {words[1] for words, _ in find(caddy, "reverse_proxy")}
    assert upstreams == {f"linli:{environment['LINLI_TELEGRAM_WEBHOOK_PORT']}",
                         f"linli:{environment['LINLI_CONSOLE_PORT']}"}
    assert environment["LINLI_CONSOLE_HOST"] == "0.0.0.0"
    assert environment["LINLI_TELEGRAM_WEBHOOK_LISTEN"] == "0.0.0.0"
    assert environment["LINLI_DATABASE_URL"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/" in environment["LINLI_DATABASE_URL"]


# --- commands -----------------------------------------------------------------------------------

def deploy_commands() -> dict[str, list[str]]:
    """Every `linli …` command the deployment runs, as argv after `linli`, by where it is."""
    commands = {}
    for name, service in compose()["services"].items():
        if "command" in service and service.get("image") == "linli:local":
            argv = [re.sub(r"\$\{\w+:-(\w+)\}", r"\1", word) for word in service["command"]]
            assert argv[0] == "linli", name
            commands[f"compose.yml {name}"] = argv[1:]
    for unit in UNITS.glob("*.service"):
        for command in unit_values(unit_file(unit), "Service", "ExecStart"):
            program, *argv = command.split()
            assert program == "/opt/linli/.venv/bin/linli", unit.name
            commands[unit.name] = argv
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    for line in dockerfile.splitlines():
        instruction, _, rest = line.partition(" ")
        if instruction == "RUN":
            for part in rest.split("&&"):
                program, *argv = part.split()
                if program == "linli":
                    commands[f"Dockerfile RUN linli {' '.join(argv)}"] = argv
        elif instruction == "CMD":
            program, *argv = json.loads(rest)
            assert program == "linli", line
            commands["Dockerfile CMD"] = argv
    return commands


def parses(argv: list[str]) -> bool:
    try:
        cli_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def test_every_linli_command_the_deployment_runs_exists():
    commands = deploy_commands()
    ran = {tuple(argv[:2]) for argv in commands.values()}
    assert ("db", "upgrade") in ran and ("serve", "--workers") in ran and ("nlu", "serve") in ran
    assert ("i18n", "compile") in ran and ("nlu", "train") in ran
    for where, argv in commands.items():
        pending = PENDING_COMMANDS.get(tuple(argv[:2]))
        if pending:
            assert not parses(argv), (f"{where}: `linli {' '.join(argv)}` parses now: "
                                      f"{pending} is merged, delete it from PENDING_COMMANDS")
        else:
            assert parses(argv), f"{where}: `linli {' '.join(argv)}` is not a linli command"


def test_every_linli_command_the_guide_gives_exists():
    guide = GUIDE.read_text(encoding="utf-8")
    commands = [line.split() for line in
                re.findall(r"(?:/bin/linli|exec linli linli) ([^#&|>\\\n']+)", guide)]
    assert len(commands) >= 6 and ["staff", "add-user", "li.na", "--role", "admin"] in commands
    for argv in commands:
        if tuple(argv[:2]) not in PENDING_COMMANDS:
            assert parses(argv), f"docs/deploy.md: `linli {' '.join(argv)}` is not a command"


def test_sizes_are_read_as_each_proxy_reads_them():
    assert size_bytes("21m") == size_bytes("21MiB") == 21 * 1024 ** 2
    assert size_bytes("21MB") == 21_000_000 and size_bytes("512") == 512


def test_a_command_that_does_not_exist_is_caught():
    assert not parses(["db", "migrate"]) and parses(["db", "upgrade"])


# --- environment --------------------------------------------------------------------------------

def test_every_linli_variable_the_deployment_names_exists_in_the_code():
    code = code_text()
    named = {}
    for where, text in deploy_texts().items():
        for variable in re.findall(r"\bLINLI_[A-Z0-9_]*[A-Z0-9]\b", text):
            named.setdefault(variable, where)
    assert len(named) >= 12, sorted(named)  # the pattern still finds them
    for variable, where in sorted(named.items()):
        if variable in PENDING_VARIABLES:
            assert f'"{variable}"' not in code, (
                f"{variable} is in the code now ({PENDING_VARIABLES[variable]} is merged): "
                "delete it from PENDING_VARIABLES")
        else:
            assert f'"{variable}"' in code, f"{where} names {variable}, which no code reads"


def test_compose_reads_only_variables_its_env_example_defines():
    text = (DEPLOY / "compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", text))
    used |= set(re.findall(r"\{\$(\w+)\}", (DEPLOY / "Caddyfile").read_text(encoding="utf-8")))
    assert used == COMPOSE_VARIABLES
    assert set(env_file(DEPLOY / "compose.env.example")) == COMPOSE_VARIABLES
    caddy_env = compose()["services"]["caddy"]["environment"]
    assert "SITE_ADDRESS" in caddy_env


def test_the_env_example_is_read_by_the_code_as_meant(tmp_path, monkeypatch):
    """Its values pass the code's own checks, and its placeholder secret is refused."""
    from bot.channels.telegram.settings import Settings
    from bot.keys import SecretKeyError, secret_key

    values = example()
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LINLI_CONFIG")
    config = load_config(PROJECT_ROOT / "config.yml")
    assert config.console.port == int(values["LINLI_CONSOLE_PORT"])
    assert config.database_url == values["LINLI_DATABASE_URL"]
    settings = Settings.from_env()
    assert settings.webhook_port == int(values["LINLI_TELEGRAM_WEBHOOK_PORT"])
    # The public URL's path is the path the webhook listens on: the proxy passes it unchanged.
    assert urlparse(settings.webhook_url).path == settings.webhook_path
    with pytest.raises(SecretKeyError):
        secret_key(tmp_path)


def guide_console_sections() -> list[dict]:
    """The `console:` settings docs/deploy.md tells operators to put in config.yml."""
    guide = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"^    console:\n((?:      .*\n)+)", guide, re.MULTILINE)
    return [yaml.safe_load(textwrap.dedent(block)) for block in blocks]


def test_the_migrate_unit_s_command_runs_with_the_guide_s_settings(env, tmp_path):
    """`linli db upgrade` as linli-migrate.service runs it: the env file's variables, the
    config file elsewhere with the guide's console settings (only the database and the data
    dir are the test's own)."""
    (systemd_console, compose_console) = guide_console_sections()
    raw = yaml.safe_load((PROJECT_ROOT / "config.yml").read_text(encoding="utf-8"))
    raw["console"] = systemd_console
    config_path = tmp_path / "etc" / "config.yml"
    config_path.parent.mkdir()
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    variables = {**env, **example(), "LINLI_CONFIG": str(config_path),
                 "LINLI_DATABASE_URL": env["LINLI_DATABASE_URL"],
                 "LINLI_DATA_DIR": env["LINLI_DATA_DIR"]}
    (program,) = unit_values(unit_file(UNITS / "linli-migrate.service"), "Service", "ExecStart")
    argv = program.split()[1:]
    done = subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=PROJECT_ROOT,
                          env=variables, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "database is up to date" in done.stderr
    database = Database(env["LINLI_DATABASE_URL"])
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        database.dispose()
    config = load_config(config_path)
    assert config.console.secure_cookie
    assert config.console.trusted_proxies == (ip_network("127.0.0.1"),)
    caddy = compose()["services"]["caddy"]["networks"]["linli"]["ipv4_address"]
    raw["console"] = compose_console
    config_path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = load_config(config_path)
    assert config.console.trusted_proxies == (ip_network(caddy),)
    assert config.console.secure_cookie


# --- the proxies --------------------------------------------------------------------------------

def webhook_pattern(blocks, kind: str) -> str:
    if kind == "nginx":
        (words, _), = [(w, c) for w, c in find(blocks, "location", "~")]
        return words[2]
    (words, _), = find(blocks, "path_regexp")
    return words[1]


@pytest.mark.parametrize("kind", ["nginx", "caddy"])
def test_the_proxy_routes_the_webhook_path_and_everything_else_to_the_console(kind):
    from bot.channels.web import MAX_UPLOAD
    from bot.config import ConsoleSettings

    values = example()
    webhook_port, console_port = (values["LINLI_TELEGRAM_WEBHOOK_PORT"],
                                  values["LINLI_CONSOLE_PORT"])
    path = urlparse(values["LINLI_TELEGRAM_WEBHOOK_URL"]).path
    if kind == "nginx":
        whole = nginx_blocks((DEPLOY / "nginx.conf").read_text(encoding="utf-8"))
        upstreams = {words[1]: [w[1] for w, _ in children if w[0] == "server"]
                     for words, children in find(whole, "upstream")}
        blocks, = [children for _, children in find(whole, "server")
                   if children and ["listen", "443", "ssl", "http2"] in [w for w, _ in children]]
        assert ["return", "301", "https://$host$request_uri"] in [w for w, _ in walk(whole)]

        def target(location: list[str]) -> tuple[list[str], list[str]]:
            (_, children), = [(w, c) for w, c in find(blocks, "location")
                                  if w[1:] == location]
            (proxy,), = [w[1:] for w, _ in children if w[0] == "proxy_pass"]
            limit = [w[1] for w, _ in children if w[0] == "client_max_body_size"]
            return upstreams[proxy.removeprefix("http://")], limit

        webhook, webhook_limit = target(["~", webhook_pattern(blocks, kind)])
        assert webhook == [f"127.0.0.1:{webhook_port}"]
        chat, chat_limit = target(["/chat"])
        rest, _ = target(["/"])
        events, _ = target(["/chat/events"])
        assert chat == rest == events == [f"127.0.0.1:{console_port}"]
        server_limit = [w[1] for w, _ in blocks if w[0] == "client_max_body_size"]
        _, events_block = find(blocks, "location", "/chat/events")[0]
        assert ["proxy_buffering", "off"] in [w for w, _ in events_block]
        # Behind nginx the console sees nginx's one hop as the client.
        assert ["proxy_set_header", "X-Forwarded-For", "$remote_addr"] in \
            [w for w, _ in walk(blocks)]
    else:
        blocks = caddy_blocks((DEPLOY / "Caddyfile").read_text(encoding="utf-8"))

        def handle(matcher: list[str]):
            (_, children), = [(w, c) for w, c in find(blocks, "handle") if w[1:] == matcher]
            proxy, = [w[1] for w, _ in children if w[0] == "reverse_proxy"]
            limit = [w[1] for w, _ in walk(children) if w[0] == "max_size"]
            return proxy.split(":")[1], limit

        (_, matcher), = find(blocks, "@webhook")
        assert ["method", "POST"] in [w for w, _ in matcher]
        webhook, webhook_limit = handle(["@webhook"])
        assert webhook == webhook_port
        chat, chat_limit = handle(["/chat*"])
        rest, server_limit = handle([])
        assert chat == rest == console_port
    pattern = webhook_pattern(blocks, kind)
    assert re.fullmatch(pattern.strip("^$"), path)
    for other in ("/", "/chat", "/chat/send", "/login", "/open", "/open311/v2/requests.json",
                  "/requests/R-123456", "/123456789/x", "/12345abc"):
        assert not re.fullmatch(pattern.strip("^$"), other), other
    # Bodies: Telegram's small updates, the web chat's 20 MB uploads, the console's forms.
    assert size_bytes(webhook_limit[0]) <= 1024 ** 2
    assert size_bytes(chat_limit[0]) >= MAX_UPLOAD + 64 * 1024
    assert size_bytes(min(server_limit, key=size_bytes)) >= ConsoleSettings().max_form_bytes


def test_no_console_route_has_the_webhook_path_shape(config, db):
    """The proxies send every "/<digits>" to the webhook: no console page may look like that."""
    from starlette.routing import Mount

    from bot.console.app import create_app

    app = create_app(config, db)
    paths = ["/123456789", "/7"]
    for route in app.routes:
        if isinstance(route, Mount):
            assert not route.path.strip("/").isdigit()
            continue
        for path in paths:
            assert not route.path_regex.fullmatch(path), route.path


def nginx_setup(folder: Path, site: str, extra: str = "") -> Path:
    """deploy/nginx.conf (`site`, maybe with other ports) under a main config of its own in
    `folder`, with a self-signed certificate where certbot's would be. Returns the main config."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "linli.example.org")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    live = "/etc/letsencrypt/live/linli.example.org/"
    assert site.count(live) == 2
    site = site.replace(live + "fullchain.pem", str(folder / "cert.pem"))
    site = site.replace(live + "privkey.pem", str(folder / "key.pem"))
    (folder / "site.conf").write_text(site, encoding="utf-8")
    main = folder / "nginx.conf"
    main.write_text(
        f"{extra}pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{}}\n"
        f"http {{\n  client_body_temp_path {folder}/body;\n  proxy_temp_path {folder}/proxy;\n"
        f"  include {folder}/site.conf;\n}}\n", encoding="utf-8")
    return main


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_config(tmp_path):
    main = nginx_setup(tmp_path, (DEPLOY / "nginx.conf").read_text(encoding="utf-8"))
    done = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(main)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


class _Backend(BaseHTTPRequestHandler):
    """A worker's port: answers its own name and records what the proxy sent it."""

    def _answer(self):
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size)
        self.server.seen.append((self.command, self.path, len(body),
                                 self.headers.get("X-Forwarded-For"),
                                 self.headers.get("X-Forwarded-Proto")))
        data = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_sends_each_request_where_the_guide_says(tmp_path):
    """nginx itself, on free ports, in front of two recording servers standing for the
    webhook and console ports: what goes where, the body limits, the forwarded client."""
    values = example()
    backends = {}
    for name in ("webhook", "console"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
        server.name, server.seen = name, []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        backends[name] = server
    tls, plain = _free_port(), _free_port()
    site = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    for old, new in [
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen 127.0.0.1:{plain};"),
        ("listen [::]:80;", ""),
        (f"server 127.0.0.1:{values['LINLI_TELEGRAM_WEBHOOK_PORT']};",
         f"server 127.0.0.1:{backends['webhook'].server_port};"),
        (f"server 127.0.0.1:{values['LINLI_CONSOLE_PORT']};",
         f"server 127.0.0.1:{backends['console'].server_port};"),
    ]:
        assert site.count(old) == 1, old
        site = site.replace(old, new)
    main = nginx_setup(tmp_path, site, extra="daemon off;\nmaster_process off;\n")
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(main)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None, nginx.stderr.read().decode()
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

        def ask(method: str, path: str, body: bytes = b"", **headers) -> tuple[int, bytes]:
            connection = http.client.HTTPSConnection("127.0.0.1", tls, context=context,
                                                     timeout=10)
            connection.request(method, path, body=body,
                               headers={"Host": "linli.example.org", **headers})
            answer = connection.getresponse()
            data = answer.read()
            connection.close()
            return answer.status, data

        path = urlparse(values["LINLI_TELEGRAM_WEBHOOK_URL"]).path
        assert ask("POST", path, b'{"update_id": 1}', **{"X-Forwarded-For": "6.6.6.6"}) == \
            (200, b"webhook")
        # The forged hop is dropped: the worker sees nginx's own view of the client.
        assert backends["webhook"].seen == [("POST", path, 16, "127.0.0.1", "https")]
        assert ask("GET", path)[0] == 403
        for route in ("/", "/login", "/chat", "/chat/events?after=3", "/open311/v2/services.json",
                      "/requests/R-123456", path + "/x"):
            assert ask("GET", route) == (200, b"console"), route
        three_mb = bytes(3 * 1024 * 1024)
        assert ask("POST", "/chat/send", three_mb) == (200, b"console")
        assert ask("POST", "/login", three_mb)[0] == 413
        assert ask("POST", path, bytes(2 * 1024 * 1024))[0] == 413
        # Over the web chat's limit: refused on the declared length, before the body comes.
        with socket.create_connection(("127.0.0.1", tls)) as raw, \
                context.wrap_socket(raw) as conn:
            conn.sendall(b"POST /chat/send HTTP/1.1\r\nHost: linli.example.org\r\n"
                         b"Content-Length: 30000000\r\n\r\n")
            assert conn.recv(100).startswith(b"HTTP/1.1 413")
        assert len(backends["webhook"].seen) == 1
        plain_connection = http.client.HTTPConnection("127.0.0.1", plain, timeout=10)
        plain_connection.request("GET", "/chat", headers={"Host": "linli.example.org"})
        answer = plain_connection.getresponse()
        assert answer.status == 301
        assert answer.getheader("Location") == "https://linli.example.org/chat"
    finally:
        nginx.terminate()
        nginx.wait(10)
        for server in backends.values():
            server.shutdown()


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
def test_caddy_accepts_the_caddyfile(monkeypatch):
    monkeypatch.setenv("SITE_ADDRESS", "linli.example.org")
    done = subprocess.run(["caddy", "adapt", "--config", str(DEPLOY / "Caddyfile")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


# --- systemd ------------------------------------------------------------------------------------

def test_the_units_run_the_workers_after_the_migrations_hardened():
    workers = unit_file(UNITS / "linli.service")
    migrate = unit_file(UNITS / "linli-migrate.service")
    nlu = unit_file(UNITS / "linli-nlu.service")
    assert "linli-migrate.service" in unit_values(workers, "Unit", "Requires")[0].split()
    assert "linli-migrate.service" in unit_values(workers, "Unit", "After")[0].split()
    assert unit_values(migrate, "Service", "Type") == ["oneshot"]
    data_dir = example()["LINLI_DATA_DIR"]
    for unit in (workers, migrate, nlu):
        service = dict(unit["Service"])
        assert service["EnvironmentFile"] == "/etc/linli/linli.env"
        assert service["User"] == "linli"
        assert service["NoNewPrivileges"] == "yes" and service["PrivateTmp"] == "yes"
        assert service["ProtectSystem"] == "strict"
        assert data_dir in service["ReadWritePaths"].split()
        assert "MemoryDenyWriteExecute" not in service  # cffi and the ML runtimes need it off
    service = dict(workers["Service"])
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 30
    # The console's NLU inbox writes its exports into the project's nlu/ (bot/console/nlu_inbox).
    assert "/opt/linli/nlu" in service["ReadWritePaths"].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    """`systemd-analyze verify` checks each key and that the program exists: the units are
    copied with the program pointed at this checkout's `linli`."""
    linli = Path(sys.executable).parent / "linli"
    assert linli.is_file()
    for unit in UNITS.glob("*.service"):
        text = unit.read_text(encoding="utf-8")
        (tmp_path / unit.name).write_text(text.replace("/opt/linli/.venv/bin/linli", str(linli)),
                                          encoding="utf-8")
    units = sorted(str(path) for path in tmp_path.glob("*.service"))
    assert len(units) == 3
    done = subprocess.run(["systemd-analyze", "verify", *units],
                          capture_output=True, text=True, check=False, cwd=tmp_path)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


# --- the image and the guide --------------------------------------------------------------------

def test_the_image_installs_what_run_installs_for_the_product_only():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.10-slim-bookworm$", dockerfile, re.MULTILINE)
    run_script = (PROJECT_ROOT / "run").read_text(encoding="utf-8")
    run_packages = set(re.search(r"DEBIAN_PACKAGES=\(([^)]*)\)", run_script).group(1).split())
    installed = set(re.search(r"--no-install-recommends ([a-z0-9 .+-]+?)\s*\\",
                              dockerfile).group(1).split())
    assert installed == {"espeak-ng"} and installed <= run_packages
    assert "[test]" not in dockerfile and "--require-hashes -r requirements-offline.txt" in \
        dockerfile
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert ".venv" in ignored and "var" in ignored
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for name in source.split():
            assert (PROJECT_ROOT / name).exists(), f"COPY {name}: not in the repository"
            assert name not in ignored


def test_the_guide_gives_the_connection_sum_of_the_real_pool():
    from bot.db import make_engine

    engine = make_engine("postgresql+psycopg2://linli:x@127.0.0.1:1/linli")
    try:
        per_worker = engine.pool.size() + engine.pool._max_overflow
    finally:
        engine.dispose()
    guide = GUIDE.read_text(encoding="utf-8")
    assert f"up to **{per_worker} connections per worker**" in guide
    assert f"workers per machine × {per_worker} +" in guide
    rows = re.findall(r"^\| (\d+) × (\d+) \| (\d+) \+ 13", guide, re.MULTILINE)
    assert len(rows) >= 4
    for machines, workers, needed in rows:
        assert int(machines) * int(workers) * per_worker == int(needed)
    command = compose()["services"]["postgres"]["command"]
    assert "max_connections=200" in command
