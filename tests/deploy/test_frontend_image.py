"""The frontend image, checked without building it: what its entrypoint would render and run.

The nginx tests render the site template by string replacement; the image renders it with the
entrypoint's envsubst, fed the names its NGINX_ENVSUBST_FILTER picks. Here the real awk and
envsubst do that with the Dockerfile's own environment, so a placeholder the image would leave
unrendered (or render differently from the tests) fails here rather than at a container's start.
"""

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.nginx import CERTIFICATE_SCRIPT, TEMPLATE, render_site
from tests.deploy.test_compose import COMPOSE_FILE, ROOT, base_images, instructions

DOCKERFILE = ROOT / "docker" / "frontend.Dockerfile"
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
# What else a running container's environment holds: the base image's, Docker's and compose's.
OTHER_VARIABLES = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/",
    "HOSTNAME": "0123456789ab",
    "NGINX_VERSION": "1.30.6",
    "PKG_RELEASE": "1",
    "TLS_SELF_SIGNED_NAMES": "",
}


def final_stage_environment() -> dict[str, str]:
    environment: dict[str, str] = {}
    for keyword, arguments in instructions(DOCKERFILE):
        if keyword == "FROM":
            environment = {}
        elif keyword == "ENV":
            for word in shlex.split(arguments):
                name, _, value = word.partition("=")
                environment[name] = value
    return environment


def picked_by_filter(environment: dict[str, str]) -> set[str]:
    """The names the image's 20-envsubst-on-templates.sh hands envsubst: its awk, run here."""
    pattern = environment["NGINX_ENVSUBST_FILTER"]
    program = "END { for (name in ENVIRON) { print ( name ~ /" + pattern + '/ ) ? name : "" } }'
    result = subprocess.run(
        ["awk", program],
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return set(result.stdout.split())


@pytest.fixture(scope="module")
def frontend() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["frontend"]
    return service


def test_the_filter_picks_exactly_the_templates_placeholders() -> None:
    image = final_stage_environment()
    placeholders = set(PLACEHOLDER.findall(TEMPLATE.read_text()))

    assert placeholders <= set(image), "a placeholder without a default in the image"
    assert picked_by_filter({**OTHER_VARIABLES, **image}) == placeholders


def test_envsubst_renders_the_template_as_the_tests_do() -> None:
    environment = {
        "LISTEN": "127.0.0.1:8080",
        "TLS_LISTEN": "127.0.0.1:8443",
        "TLS_CERTIFICATE": "/etc/nginx/tls/cert.pem",
        "TLS_CERTIFICATE_KEY": "/etc/nginx/tls/key.pem",
        "PLAIN_HTTP": "redirect",
        "HTTPS_PORT": "443",
        "WEB_ROOT": "/usr/share/nginx/html",
        "API_UPSTREAM": "api:8000",
        "API_ORIGIN": "https://api.example.org",
        "ACCESS_LOG": "/var/log/nginx/access.log",
    }
    image = final_stage_environment()
    names = picked_by_filter({**OTHER_VARIABLES, **image, **environment})
    rendered = subprocess.run(
        ["envsubst", " ".join(f"${{{name}}}" for name in sorted(names))],
        input=TEMPLATE.read_text(),
        env={**OTHER_VARIABLES, **image, **environment},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout

    assert rendered == render_site(
        listen=environment["LISTEN"],
        tls_listen=environment["TLS_LISTEN"],
        certificate=Path(environment["TLS_CERTIFICATE"]),
        certificate_key=Path(environment["TLS_CERTIFICATE_KEY"]),
        plain_http=environment["PLAIN_HTTP"],
        https_port=int(environment["HTTPS_PORT"]),
        web_root=Path(environment["WEB_ROOT"]),
        api_upstream=environment["API_UPSTREAM"],
        api_origin=environment["API_ORIGIN"],
        access_log=environment["ACCESS_LOG"],
    )
    assert "$host:443$request_uri" in rendered  # nginx's own variables left alone


def test_the_certificate_script_runs_before_nginx_starts() -> None:
    copies = [
        arguments.split()
        for keyword, arguments in instructions(DOCKERFILE)
        if keyword == "COPY" and "docker/nginx/tls-certificate.sh" in arguments
    ]

    assert len(copies) == 1
    destination = Path(copies[0][-1])
    # The entrypoint runs /docker-entrypoint.d/*.sh that are executable, before it execs nginx.
    assert destination.parent == Path("/docker-entrypoint.d")
    assert destination.suffix == ".sh"
    assert "--chmod=0755" in copies[0]
    assert CERTIFICATE_SCRIPT.stat().st_mode & 0o111


def test_compose_publishes_the_ports_the_image_listens_on(frontend: dict[str, Any]) -> None:
    image = final_stage_environment()
    container_ports = {str(mapping).rpartition(":")[2] for mapping in frontend["ports"]}

    assert container_ports == {image["LISTEN"], image["TLS_LISTEN"]}
    assert f"https://127.0.0.1:{image['TLS_LISTEN']}/" in frontend["healthcheck"]["test"]
    # The made certificate lives in the volume, so it outlives the container.
    volume_targets = {str(volume).split(":")[1] for volume in frontend["volumes"]}
    assert str(Path(image["TLS_CERTIFICATE"]).parent) in volume_targets
    assert frontend["environment"]["HTTPS_PORT"] == "${HTTPS_PORT:-" + image["TLS_LISTEN"] + "}"


def test_node_is_the_major_the_frontend_asks_for_everywhere() -> None:
    engines = json.loads((ROOT / "frontend" / "package.json").read_text())["engines"]["node"]
    wanted = re.fullmatch(r">=(\d+)", engines)
    assert wanted is not None, engines
    build_image = next(image for image in base_images(DOCKERFILE) if image.startswith("node:"))
    makefile = re.search(r"^NODE_MAJOR := (\d+)$", (ROOT / "Makefile").read_text(), re.M)
    assert makefile is not None

    assert re.fullmatch(rf"node:{wanted[1]}\.\d+\.\d+-bookworm-slim", build_image)
    assert makefile[1] == wanted[1]
