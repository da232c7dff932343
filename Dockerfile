# syntax=docker/dockerfile:1
# One image for the six services. The command picks which one runs:
#   docker run ... ecommerce-backend python -m product_service
#   docker run ... ecommerce-backend python -m product_service migrate
# docker-compose.yml builds it once and runs each service (and the migrations) from it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- builder: the locked runtime dependencies, in a virtualenv at /opt/venv -------------------
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# Only the lock and the project file: this layer is rebuilt when dependencies change, not code.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# --- runtime: slim Python, the venv, the code, a user without privileges ----------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ecommerce-backend" \
      org.opencontainers.image.description="Event-driven e-commerce services (python -m <service>)"

ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Each package is its own directory (COPY of a directory copies its contents).
COPY shared_core/ shared_core/
COPY shared_runtime/ shared_runtime/
COPY shared_events/ shared_events/
COPY user_service/ user_service/
COPY product_service/ product_service/
COPY cart_service/ cart_service/
COPY order_service/ order_service/
COPY payment_service/ payment_service/
COPY notification_service/ notification_service/
# Code owned by root and read-only to the app user; bytecode compiled now, not at start.
RUN python -m compileall -q /app

USER 10001:10001
# The public port (the gateway's) and the internal one (the other services'): <PREFIX>_PORT and
# <PREFIX>_INTERNAL_PORT must say the same.
EXPOSE 8000 8001

# Liveness of the process: /health on $PORT (the service's <PREFIX>_PORT must be the same).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=2)"]

CMD ["python", "-m", "user_service"]
