# syntax=docker/dockerfile:1
#
# One image for every crm2 process: the API (`crm2 serve`, the default command),
# the one-shot `crm2 migrate` job and the `crm2 worker` processes.
# It holds crm2-hookspecs, crm2-core and every plugin under plugins/, installed
# as ordinary (non-editable) wheels, exactly as a third party would install them.
#
#   docker build -t crm2 .
#   docker run --rm --env-file .env crm2 crm2 migrate
#   docker run --rm -p 8000:8000 --env-file .env crm2
#
# infra/docker-compose.yml and infra/k8s/ run it scaled out.
# The web console (frontend/) is built in a Node stage against this image's own
# /openapi.json and served by the console plugin from /app/console.

# -- build: a wheel for each local distribution and for every dependency ---------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY . .
# One `pip wheel` for all local distributions (crm2-core with its metrics and tracing
# extras), so that crm2-core's requirement on
# crm2-hookspecs (and a plugin's on another plugin) resolves to the copy built here.
# $plugins is split into words on purpose.
# hadolint ignore=SC2086
RUN set -eu; \
    plugins=""; \
    for dir in plugins/*/; do \
        if [ -f "${dir}pyproject.toml" ]; then plugins="$plugins ./${dir%/}"; fi; \
    done; \
    pip wheel --wheel-dir /wheels ./hookspecs ".[metrics,tracing]" $plugins

# -- openapi: the API the console's typed client is generated from ------------------------
FROM python:3.11-slim AS openapi
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index /wheels/*.whl
RUN crm2 openapi --all-plugins --output /openapi.json

# -- console: the static Next.js build (type-checked against that API) --------------------
FROM node:20-slim AS console
ENV NEXT_TELEMETRY_DISABLED=1
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json frontend/.npmrc ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
COPY --from=openapi /openapi.json ./openapi.json
RUN npm run gen:api && npm run build

# -- runtime: the wheels installed, no source tree, no build tools, not root -----------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index /wheels/*.whl
# pg_dump / pg_restore for the backup plugin's postgres target (Debian 12: PostgreSQL 15)
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 crm2 \
    && useradd --system --uid 10001 --gid crm2 --home-dir /app --create-home crm2
WORKDIR /app
COPY --from=console /frontend/out /app/console
ENV CRM2_CONSOLE_DIST_DIR=/app/console
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8000
# Liveness only; readiness (database, Redis, plugins) is GET /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["crm2", "serve", "--host", "0.0.0.0", "--port", "8000"]
