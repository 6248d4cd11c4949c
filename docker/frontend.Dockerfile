# The web image: the built SPA, served by an unprivileged nginx that also proxies the API, so the
# browser talks to one origin. Build from the repository root:
#   docker build -f docker/frontend.Dockerfile .

FROM node:20.20.2-bookworm-slim AS build
# The repository's layout, kept: the client bundles the event table from backend/ (imported as
# ../../../backend/... from frontend/client/src), the only file of the backend it needs.
WORKDIR /src/frontend
# Dependencies first, from the lockfile alone: this layer is rebuilt only when it changes.
COPY frontend/package.json frontend/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund
COPY backend/taskstream/events/types.json /src/backend/taskstream/events/types.json
COPY frontend/ ./
RUN npm run build

FROM nginxinc/nginx-unprivileged:1.28.0-alpine
# The stock site listens on 8080 too; ours replaces it.
RUN rm /etc/nginx/conf.d/default.conf
# The image's entrypoint renders templates/*.template into conf.d with envsubst at start, so the
# API address can change without a rebuild. The filter keeps envsubst to these five names.
ENV API_UPSTREAM=api:8000 \
    API_ORIGIN="" \
    LISTEN=8080 \
    WEB_ROOT=/usr/share/nginx/html \
    ACCESS_LOG=/var/log/nginx/access.log \
    NGINX_ENVSUBST_FILTER="^(API_UPSTREAM|API_ORIGIN|LISTEN|WEB_ROOT|ACCESS_LOG)"
COPY docker/nginx/taskstream.conf.template /etc/nginx/templates/
COPY --from=build /src/frontend/dist /usr/share/nginx/html
# The base image already runs as its nginx user (101); said again so this file shows it.
USER 101
EXPOSE 8080
