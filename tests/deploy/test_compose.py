"""Static checks of docker-compose.yml and the Dockerfiles.

Nothing here builds or starts a container. These catch what would otherwise surface only on a
machine with a Docker engine: a file the Compose specification rejects, a wait on a service that
has no healthcheck, a command naming a module that does not exist, a base image that floats,
a container running as root, queues the API routes to that no worker consumes, a service
without limits, and a secret that is missing, not mounted, or leaves the API open.
"""

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from taskstream.settings import SECRET_FILE_SETTINGS, Settings

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
COMPOSE_FILE = ROOT / "docker-compose.yml"
MAKE_SECRETS = ROOT / "docker" / "make-secrets.sh"
SECRETS_MOUNT = "/run/secrets/"
BACKEND_DOCKERFILE = "docker/backend.Dockerfile"
DOCKERFILES = [ROOT / BACKEND_DOCKERFILE, ROOT / "docker/frontend.Dockerfile"]
# Where the API sends every kind that TASK_QUEUES does not name.
DEFAULT_QUEUE: str = Settings.model_fields["default_queue"].default

# A full version (7.4.6), maybe with a variant (-alpine): never latest, never just a major.
PINNED_TAG = re.compile(r"v?\d+\.\d+\.\d+([-.][\w.-]+)?")  # Prometheus tags begin with v
PYTHON = re.compile(r"python[\d.]*")
SHELLS = {"sh", "bash", "ash"}

Service = dict[str, Any]
Use = Literal["run", "import", "celery-app"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    services: dict[str, Service] = compose["services"]
    return services


# -- commands ---------------------------------------------------------------------------------


def command_words(command: str | list[str]) -> list[str]:
    """The words a command runs, those of a shell script (`sh -c`, CMD-SHELL) spliced in."""
    words = shlex.split(command) if isinstance(command, str) else [str(word) for word in command]
    if words[:1] == ["CMD-SHELL"]:
        return command_words(" ".join(words[1:]))
    if words[:1] == ["CMD"]:
        words = words[1:]
    spliced: list[str] = []
    for index, word in enumerate(words):
        if index >= 2 and words[index - 1] == "-c" and Path(words[index - 2]).name in SHELLS:
            spliced.extend(command_words(word))
        else:
            spliced.append(word)
    return spliced


def modules_named(words: list[str]) -> list[tuple[str, Use]]:
    """The modules in `python -m X`, `celery -A X` and `uvicorn X:Y`, with how each is used."""
    found: list[tuple[str, Use]] = []
    program = ""
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        name = Path(word).name
        if PYTHON.fullmatch(name) or name in {"celery", "uvicorn"}:
            program = name
        if PYTHON.fullmatch(program) and word == "-m" and following:
            found.append((following, "run"))
            program = following
        elif program == "celery" and word in {"-A", "--app"} and following:
            found.append((following.partition(":")[0], "celery-app"))
        elif program == "celery" and word.startswith("--app="):
            found.append((word.removeprefix("--app=").partition(":")[0], "celery-app"))
        elif program == "uvicorn" and re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", word):
            found.append((word.partition(":")[0], "import"))
    return found


def module_exists(module: str, use: Use) -> bool:
    """Ours by file under backend/ (nothing is imported); anything else by the environment."""
    if use == "celery-app":
        # "pkg.mod" names a module holding the app, "pkg.mod.app" may name the attribute itself.
        candidates = [module, module.rpartition(".")[0]] if "." in module else [module]
        return any(module_exists(candidate, "import") for candidate in candidates)
    path = BACKEND.joinpath(*module.split("."))
    if path.with_suffix(".py").is_file():
        return True
    if (path / "__init__.py").is_file():
        return use == "import" or (path / "__main__.py").is_file()
    if (BACKEND / module.split(".")[0]).exists():
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


def compose_commands(services: dict[str, Service]) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for name, service in services.items():
        for key in ("entrypoint", "command"):
            if key in service:
                commands.append((f"{name} {key}", command_words(service[key])))
        if "test" in service.get("healthcheck", {}):
            commands.append((f"{name} healthcheck", command_words(service["healthcheck"]["test"])))
    return commands


# -- Dockerfiles ------------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined and comments dropped."""
    parsed: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        parsed.append((keyword.upper(), arguments.strip()))
        pending = ""
    return parsed


def base_images(dockerfile: Path) -> list[str]:
    """Every image a build pulls: FROM and COPY --from that name no earlier stage."""
    global_args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []

    def pulled(reference: str) -> None:
        resolved = re.sub(
            r"\$\{?(\w+)\}?", lambda match: global_args.get(match[1], match[0]), reference
        )
        if resolved not in stages and not resolved.isdigit():
            images.append(resolved)

    for keyword, arguments in instructions(dockerfile):
        words = arguments.split()
        if keyword == "ARG" and not stages and not images:
            name, _, default = arguments.partition("=")
            global_args[name] = default.strip("\"'")
        elif keyword == "FROM":
            positional = [word for word in words if not word.startswith("--")]
            pulled(positional[0])
            if len(positional) == 3 and positional[1].lower() == "as":
                stages.add(positional[2])
        elif keyword in {"COPY", "ADD"}:
            for word in words:
                if word.startswith("--from="):
                    pulled(word.removeprefix("--from="))
    return images


def is_pinned(image: str) -> bool:
    name = image.partition("@")[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    return PINNED_TAG.fullmatch(tag) is not None


def final_user(dockerfile: Path) -> str | None:
    user: str | None = None
    for keyword, arguments in instructions(dockerfile):
        if keyword == "FROM":
            user = None
        elif keyword == "USER":
            user = arguments
    return user


def dockerfile_commands(dockerfile: Path) -> list[tuple[str, list[str]]]:
    commands: list[tuple[str, list[str]]] = []
    for keyword, arguments in instructions(dockerfile):
        if keyword in {"CMD", "ENTRYPOINT"}:
            words = json.loads(arguments) if arguments.startswith("[") else arguments
            commands.append((f"{dockerfile.name} {keyword}", command_words(words)))
    return commands


# -- tests ------------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    # The schema ships inside check-jsonschema: this runs offline.
    tool = Path(sys.executable).with_name("check-jsonschema")
    if not tool.exists():
        pytest.fail(f"{tool} is missing: check-jsonschema is a dev dependency (uv sync)")
    result = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_has_a_healthcheck(services: dict[str, Service]) -> None:
    missing = [
        name
        for name, service in services.items()
        if not service.get("healthcheck", {}).get("test")
        or service["healthcheck"].get("disable")
        or service["healthcheck"]["test"] == ["NONE"]
    ]
    assert missing == []


def test_dependencies_exist_and_waits_for_health_have_a_healthcheck(
    services: dict[str, Service],
) -> None:
    problems: list[str] = []
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if isinstance(depends_on, list):
            depends_on = {target: {"condition": "service_started"} for target in depends_on}
        for target, options in depends_on.items():
            if target not in services:
                problems.append(f"{name} depends on {target}, which is not a service")
            elif (
                options["condition"] == "service_healthy" and "healthcheck" not in services[target]
            ):
                problems.append(f"{name} waits for {target} to be healthy: it has no healthcheck")
    assert problems == []


def test_commands_name_modules_that_exist(services: dict[str, Service]) -> None:
    commands = compose_commands(services)
    for dockerfile in DOCKERFILES:
        commands += dockerfile_commands(dockerfile)
    missing = [
        f"{where}: {module}"
        for where, words in commands
        for module, use in modules_named(words)
        if not module_exists(module, use)
    ]
    assert missing == []
    assert any(modules_named(words) for _, words in commands)


def test_module_check_catches_a_misspelt_module() -> None:
    words = command_words(["CMD", "celery", "-A", "taskstrem.worker.app", "worker"])

    assert modules_named(words) == [("taskstrem.worker.app", "celery-app")]
    assert not module_exists("taskstrem.worker.app", "celery-app")
    assert module_exists("taskstream.worker.app", "celery-app")
    assert not module_exists("taskstream.worker", "run")  # a package without __main__
    assert module_exists("taskstream.api", "run")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_pins_every_base_image(dockerfile: Path) -> None:
    images = base_images(dockerfile)

    assert images
    assert [image for image in images if not is_pinned(image)] == []


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("python:3.11.14-slim-bookworm", True),
        ("ghcr.io/astral-sh/uv:0.13.9", True),
        ("localhost:5000/redis:7.4.6-alpine", True),
        ("prom/prometheus:v3.7.3", True),
        ("prom/prometheus:v3", False),
        ("redis:7-alpine", False),
        ("redis:latest", False),
        ("redis", False),
        ("localhost:5000/redis", False),
    ],
)
def test_pinning_rule(image: str, pinned: bool) -> None:
    assert is_pinned(image) is pinned


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_runs_as_a_non_root_user(dockerfile: Path) -> None:
    user = final_user(dockerfile)

    assert user is not None, "the final stage sets no USER"
    assert user.partition(":")[0] not in {"root", "0"}


def test_pulled_images_are_pinned(services: dict[str, Service]) -> None:
    floating = [
        f"{name}: {service['image']}"
        for name, service in services.items()
        if "build" not in service and not is_pinned(service["image"])
    ]
    assert floating == []


def test_redis_is_not_published(services: dict[str, Service]) -> None:
    redis = services["redis"]

    assert "ports" not in redis
    assert redis.get("network_mode") != "host"


def test_backend_services_share_one_configuration(services: dict[str, Service]) -> None:
    backend = [
        service
        for service in services.values()
        if service.get("build", {}).get("dockerfile") == BACKEND_DOCKERFILE
    ]
    shared = ("REDIS_URL", "REDIS_PASSWORD_FILE", "TASK_QUEUES", "DEFAULT_QUEUE")
    settings = {tuple(service["environment"].get(key) for key in shared) for service in backend}

    assert len(backend) >= 3
    assert len(settings) == 1


def test_every_routed_queue_has_a_worker_and_no_worker_idles(services: dict[str, Service]) -> None:
    environment = services["api"]["environment"]
    routed = {environment.get("DEFAULT_QUEUE", DEFAULT_QUEUE)}
    routed |= set(json.loads(environment.get("TASK_QUEUES", "{}")).values())
    consumed: set[str] = set()
    for service in services.values():
        words = command_words(service.get("command", []))
        if "celery" in words and "worker" in words:
            option = "-Q" if "-Q" in words else "--queues"
            consumed |= set(words[words.index(option) + 1].split(","))

    assert consumed == routed


# -- limits and restarts ----------------------------------------------------------------------


def test_every_service_runs_under_an_init_with_a_memory_limit(services: dict[str, Service]) -> None:
    problems: list[str] = []
    for name, service in services.items():
        if service.get("init") is not True:
            problems.append(f"{name}: no init: true (signals, and exited children reaped)")
        limit = service.get("mem_limit") or (
            service.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory")
        )
        if not limit:
            problems.append(f"{name}: no memory limit")
    assert problems == []


def test_services_restart_unless_they_are_one_shot(services: dict[str, Service]) -> None:
    """One-shot: a service others wait on to complete; it must not be restarted once done."""
    one_shot = {
        target
        for service in services.values()
        if isinstance(service.get("depends_on"), dict)
        for target, options in service["depends_on"].items()
        if options.get("condition") == "service_completed_successfully"
    }
    wrong: dict[str, str] = {}
    for name, service in services.items():
        restart = str(service.get("restart", "no"))
        if name in one_shot:
            fits = restart == "no" or restart.startswith("on-failure")
        else:
            fits = restart in {"always", "unless-stopped"}
        if not fits:
            wrong[name] = restart
    assert wrong == {}


def test_redis_keeps_every_key_and_persists_them(services: dict[str, Service]) -> None:
    words = command_words(services["redis"]["command"])

    def option(name: str) -> str:
        assert name in words, f"redis-server runs without {name}"
        return words[words.index(name) + 1]

    assert option("--appendonly") == "yes"
    assert option("--maxmemory-policy") == "noeviction"
    assert re.fullmatch(r"\$\{REDIS_MAXMEMORY:-\d+[kmg]b\}", option("--maxmemory"))
    assert option("--requirepass")
    assert "redis-data:/data" in services["redis"]["volumes"]


# -- secrets ----------------------------------------------------------------------------------


def make_secrets(directory: Path) -> str:
    result = subprocess.run(
        ["sh", str(MAKE_SECRETS), str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_every_secret_is_a_file_that_make_secrets_makes(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    declared = {name: Path(secret["file"]) for name, secret in compose["secrets"].items()}
    made = tmp_path / "secrets"

    make_secrets(made)

    assert {path.parent for path in declared.values()} == {Path("secrets")}
    assert sorted(path.name for path in made.iterdir()) == sorted(p.name for p in declared.values())
    assert made.stat().st_mode & 0o777 == 0o700


def test_make_secrets_is_random_and_never_changes_a_secret(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    make_secrets(first)
    kept = {path.name: path.read_text() for path in first.iterdir()}
    (first / "session_secret").write_text("chosen by hand\n")

    assert "none changed" in make_secrets(first)
    assert (first / "session_secret").read_text() == "chosen by hand\n"
    assert {p.name: p.read_text() for p in first.iterdir() if p.name != "session_secret"} == {
        name: text for name, text in kept.items() if name != "session_secret"
    }
    make_secrets(second)
    assert all((second / name).read_text() != text for name, text in kept.items())


def test_file_settings_name_secrets_the_service_mounts(
    compose: dict[str, Any], services: dict[str, Service]
) -> None:
    problems: list[str] = []
    for name, service in services.items():
        mounted = set(service.get("secrets", []))
        for variable, value in service.get("environment", {}).items():
            if not variable.endswith("_FILE"):
                continue
            secret = str(value).removeprefix(SECRETS_MOUNT)
            if secret not in mounted or secret not in compose["secrets"]:
                problems.append(f"{name}: {variable} names {value}, which is not mounted")
            if variable.removesuffix("_FILE").lower() not in SECRET_FILE_SETTINGS:
                problems.append(f"{name}: {variable} is no setting that reads a file")
        for secret in mounted - set(compose["secrets"]):
            problems.append(f"{name}: mounts {secret}, which is not declared")
    assert problems == []


def test_the_api_reads_what_make_secrets_makes_and_refuses_to_run_open(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {k: str(v) for k, v in compose["services"]["api"]["environment"].items()}
    assert environment["REQUIRE_API_KEYS"] == "true"
    made = tmp_path / "secrets"
    make_secrets(made)
    monkeypatch.chdir(tmp_path)  # no .env but this one's, which there is not
    for variable, value in environment.items():
        if variable.endswith("_FILE"):  # where compose mounts it, here where it was made
            file = compose["secrets"][value.removeprefix(SECRETS_MOUNT)]["file"]
            value = str(made / Path(file).name)
        monkeypatch.setenv(variable, value)

    settings = Settings()

    assert settings.auth_required
    assert len(settings.session_secret.get_secret_value()) >= 32
    assert settings.watch_token_secrets
    password = (made / "redis_password").read_text().strip()
    assert settings.redis_url == f"redis://:{password}@redis:6379/0"
    # Without the keys, the same service would not start.
    monkeypatch.delenv("API_KEYS_FILE")
    with pytest.raises(ValueError, match="REQUIRE_API_KEYS is true"):
        Settings()
