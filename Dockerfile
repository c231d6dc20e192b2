# crm-qualify: the sync daemon. Configured by CRMQ_* environment variables alone, or with a TOML
# file mounted at /config/crm-qualify.toml (found in the working directory) or named by
# CRMQ_CONFIG; secrets from env or /run/secrets via *_file options; state on the /data volume.
#
# Base image pinned by digest: the multi-platform index of python:3.11-slim (Python 3.11.15,
# Debian trixie) as published in August 2026 (docker-library/repo-info). It was not pulled
# here (no docker engine): check it with `docker buildx imagetools inspect python:3.11-slim`,
# which also gives the new digest when you update.
FROM python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A numeric user and group, so Kubernetes' runAsNonRoot can verify them.
RUN groupadd --system --gid 10001 crmq \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /data \
       --shell /usr/sbin/nologin crmq \
    && mkdir -p /data /config \
    && chown 10001:10001 /data

WORKDIR /app

# 1. Dependencies, pinned, runtime only (no test tools): this layer is rebuilt only when
#    constraints.txt changes, not on every change to the source.
COPY constraints.txt ./
RUN pip install --no-cache-dir -r constraints.txt

# 2. The package itself, without touching dependencies; `pip check` fails the build if
#    constraints.txt no longer covers what pyproject.toml asks for.
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY adapters ./adapters
COPY mappings ./mappings
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && pip check \
    && rm -rf /app

# The working directory: a crm-qualify.toml mounted here is found without CRMQ_CONFIG.
WORKDIR /config
USER 10001:10001

# No CRMQ_CONFIG: with no file mounted the built-in defaults and CRMQ_* variables are the whole
# configuration. The state store goes on the volume (this variable wins over the TOML's
# sync.state_path); the port and log format are the TOML's, or their defaults (9108; JSON
# lines when no terminal is attached).
ENV CRMQ_SYNC__STATE_PATH=/data/crm-qualify.sqlite
VOLUME ["/data"]
EXPOSE 9108

# Asks /healthz at the port the configuration sets ([server] port in the TOML, or
# CRMQ_SERVER__PORT), found the same way the daemon finds it.
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
    CMD ["crm-qualify", "healthcheck"]

ENTRYPOINT ["crm-qualify"]
CMD ["run"]
