# The backend image: the API by default; docker-compose.yml runs the Celery workers from it too.
# Build from the repository root:
#   docker build -f docker/backend.Dockerfile .

# Both stages use this one base: the virtualenv is built in the first and copied unchanged into
# the second, and its scripts point at the interpreter at /usr/local/bin.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# Compile bytecode now (the runtime user cannot write __pycache__), copy files out of the cache
# mount instead of linking them, and use the image's Python rather than downloading one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first, from the lock alone: this layer is rebuilt only when uv.lock changes. What
# runs, and the tracing extra (TRACING_ENABLED); never the development tools. --locked: a lock
# that no longer matches pyproject.toml fails the build.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --extra tracing --no-install-project
# Then the project itself, as a regular (non-editable) install: the runtime needs no source tree.
COPY README.md ./
COPY backend ./backend
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --extra tracing --no-editable

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 taskstream \
    && useradd --system --uid 10001 --gid taskstream --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin taskstream
COPY --from=build /opt/venv /opt/venv
# API_HOST: inside a container the API must listen beyond loopback to be reachable at all.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    API_HOST=0.0.0.0
# Numeric, so an orchestrator can verify it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
CMD ["python", "-m", "taskstream.api"]
