# The web image: the built SPA, served by an unprivileged nginx that also proxies the API, so the
# browser talks to one origin, over HTTPS and HTTP/2. Build from the repository root:
#   docker build -f docker/frontend.Dockerfile .

# Node 24 LTS, as frontend/package.json's engines ask.
FROM node:24.22.3-bookworm-slim AS build
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

# The current stable line of nginx.
FROM nginxinc/nginx-unprivileged:1.30.6-alpine
USER root
# The stock site listens on 8080 too; ours replaces it. openssl makes the self-signed certificate
# (tls-certificate.sh) in /etc/nginx/tls, which nginx's user may write.
RUN rm /etc/nginx/conf.d/default.conf \
    && apk add --no-cache openssl \
    && install -d -o 101 -g 0 -m 0770 /etc/nginx/tls
# The image's entrypoint renders templates/*.template into conf.d with envsubst at start, so the
# API address can change without a rebuild. The filter keeps envsubst to the template's names.
# Plain HTTP redirects to HTTPS_PORT, the port browsers reach HTTPS on.
ENV API_UPSTREAM=api:8000 \
    API_ORIGIN="" \
    LISTEN=8080 \
    TLS_LISTEN=8443 \
    TLS_CERTIFICATE=/etc/nginx/tls/cert.pem \
    TLS_CERTIFICATE_KEY=/etc/nginx/tls/key.pem \
    PLAIN_HTTP=redirect \
    HTTPS_PORT=8443 \
    WEB_ROOT=/usr/share/nginx/html \
    ACCESS_LOG=/var/log/nginx/access.log \
    NGINX_ENVSUBST_FILTER="^(API_UPSTREAM|API_ORIGIN|LISTEN|TLS_LISTEN|TLS_CERTIFICATE|TLS_CERTIFICATE_KEY|PLAIN_HTTP|HTTPS_PORT|WEB_ROOT|ACCESS_LOG)"
# Run by the image's entrypoint before nginx starts, like its own scripts in that folder.
COPY --chmod=0755 docker/nginx/tls-certificate.sh /docker-entrypoint.d/15-taskstream-tls.sh
COPY docker/nginx/taskstream.conf.template /etc/nginx/templates/
COPY --from=build /src/frontend/dist /usr/share/nginx/html
# Back to the base image's nginx user (101).
USER 101
EXPOSE 8080 8443
