# workerpool-tui: `serve` (the pool and the HTTP API, headless) in a container.
# Deployment, the compose file and every setting used here: docs/deployment.md.
#
#   docker build -t workerpool-tui .
#   docker run --rm -p 127.0.0.1:8080:8080 -e WORKERPOOL__SERVER__AUTH_TOKEN=... workerpool-tui

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- build: the wheel of this checkout, and the wheels of its dependencies
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workerpool_tui ./workerpool_tui
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres,fast]"

# ---- runtime: installed from those wheels only, run as a user without privileges
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/workerpool workerpool \
    && mkdir /data && chown workerpool:workerpool /data
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels "workerpool-tui[postgres,fast]" \
    && rm -rf /tmp/wheels

# Settings as environment variables: WORKERPOOL__SECTION__KEY is `section.key` of config.toml.
# The API listens on every interface of the container; set a token (docs/deployment.md).
# The SQLite store lives in /data (mount a volume there); WORKERPOOL__STORE__URL
# (postgresql://...) makes the container an instance of a cluster instead.
ENV PYTHONUNBUFFERED=1 \
    WORKERPOOL__SERVER__HOST=0.0.0.0 \
    WORKERPOOL__SERVER__PORT=8080 \
    WORKERPOOL__STORE__PATH=/data/tasks.db \
    WORKERPOOL__LOGGER__LEVEL=info

USER workerpool
WORKDIR /home/workerpool
EXPOSE 8080

# /health needs no token; 503 (a cluster instance that lost PostgreSQL) counts as unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('WORKERPOOL__SERVER__PORT', '8080'), timeout=4)"]

# serve exits 0 on SIGTERM after draining running tasks (worker.shutdown_timeout, 30 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["workerpool-tui"]
CMD ["serve"]
