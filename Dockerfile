# workmail-forwarder container image.
#   docker build -t workmail-forwarder .
#   docker run --rm -p 9464:9464 -e WMF_QUEUE_URL=... -e SPLUNK_HEC_URL=... \
#     -e SPLUNK_HEC_TOKEN=... -v wmf-state:/var/lib/workmail-forwarder workmail-forwarder
# Deployment on ECS, Kubernetes and systemd: docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG RUST_IMAGE=rust:1.85-slim-bookworm

# Native stage: the Rust engine (native/) as an abi3 wheel, built by maturin. Debian
# bookworm on both sides, so the wheel links against the final image's glibc.
FROM ${RUST_IMAGE} AS native
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src/native
COPY native ./
RUN python3 -m venv /opt/maturin \
    && /opt/maturin/bin/pip install --no-cache-dir "maturin>=1.7,<2" \
    && /opt/maturin/bin/maturin build --release --locked -o /wheels

# Build stage: the project, its dependencies and the native wheel into a virtualenv.
# Every Python dependency ships wheels, so no compiler is needed here; the venv is all
# that moves on.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY forwarder ./forwarder
COPY --from=native /wheels /wheels
RUN python -m venv /opt/workmail-forwarder \
    && /opt/workmail-forwarder/bin/pip install --no-cache-dir . /wheels/*.whl

# Final stage: the interpreter, the venv, the config. No pip cache, no sources, no root.
FROM ${PYTHON_IMAGE}
ARG UID=10001
ENV PATH=/opt/workmail-forwarder/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid "${UID}" workmail-forwarder \
    && useradd --system --uid "${UID}" --gid workmail-forwarder --no-create-home \
       --home-dir /var/lib/workmail-forwarder --shell /usr/sbin/nologin workmail-forwarder \
    && mkdir -p /var/lib/workmail-forwarder /etc/workmail-forwarder \
    && chown workmail-forwarder:workmail-forwarder /var/lib/workmail-forwarder \
    && chmod 0750 /var/lib/workmail-forwarder
COPY --from=build /opt/workmail-forwarder /opt/workmail-forwarder
COPY deploy/config/container.yaml /etc/workmail-forwarder/config.yaml
# Checkpoints (SQLite) and the dead-letter file; the root filesystem can be read-only.
VOLUME ["/var/lib/workmail-forwarder"]
WORKDIR /var/lib/workmail-forwarder
USER ${UID}:${UID}
EXPOSE 9464
# SIGTERM: stop reading, drain for shutdown_grace (25s), commit, exit 0.
STOPSIGNAL SIGTERM
# No curl in the slim image: the interpreter asks /healthz (a 503 raises, exit 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
ENTRYPOINT ["workmail-forwarder"]
CMD ["run", "--config", "/etc/workmail-forwarder/config.yaml", "--log-format", "json"]
