# jobserver: one image for the server, the one-shot migration and the @internal workers.
# Build: docker build -t jobserver .   (another base: --build-arg PYTHON_IMAGE=...)
ARG PYTHON_IMAGE=python:3.12-slim

# --- build: a virtualenv at /app/.venv holding the locked dependencies and the app -------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# The venv must link the base image's own interpreter, which the runtime stage shares.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /app
# Dependencies first: this layer is rebuilt only when pyproject.toml or uv.lock change.
# --all-extras: every broker (rabbitmq, nats, sqs), so JOBSERVER_BROKER_URL picks any.
COPY pyproject.toml uv.lock ./
# The SDK is a workspace member: the lock is checked against its pyproject even though the
# image does not install it (it is a development dependency only).
COPY sdk/pyproject.toml sdk/README.md ./sdk/
RUN uv sync --locked --no-dev --all-extras --no-install-project
# The app is installed editable: app/db/migrate.py finds migrations/ next to app/.
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN uv sync --locked --no-dev --all-extras

# --- runtime: the interpreter, the venv and the app; no uv, no compilers ------------------
FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it and volumes can be chowned.
RUN groupadd --system --gid 10001 jobserver \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --create-home jobserver \
    && mkdir -p /data \
    && chown 10001:10001 /data
WORKDIR /app
# Two layers: a code-only change ships a small app layer on top of the unchanged venv.
COPY --from=build /app/.venv /app/.venv
COPY pyproject.toml alembic.ini ./
COPY migrations ./migrations
COPY app ./app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    JOBSERVER_DATA_DIR=/data
USER 10001:10001
EXPOSE 8000
# Liveness only (/health): a replica stays up while PostgreSQL or Redis are away; readiness
# (/ready) is for the load balancer. No curl in the image, so Python asks.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('JOBSERVER_PORT', '8000'), timeout=4)"]
CMD ["jobserver", "serve", "--host", "0.0.0.0"]
