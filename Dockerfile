# crm-qualify: the sync daemon. Configuration from /config/crm-qualify.toml and CRMQ_* env;
# secrets from env or /run/secrets via *_file options; state on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY connector ./connector
COPY adapters ./adapters
COPY mappings ./mappings
RUN pip install . && rm -rf /app/build

RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin crmq \
    && mkdir -p /data /config && chown crmq /data
USER crmq

ENV CRMQ_CONFIG=/config/crm-qualify.toml \
    CRMQ_SYNC__STATE_PATH=/data/crm-qualify.sqlite \
    CRMQ_LOGGING__FORMAT=json \
    CRMQ_SERVER__PORT=9108
VOLUME ["/data"]
EXPOSE 9108

HEALTHCHECK --interval=60s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CRMQ_SERVER__PORT', '9108') + '/healthz', timeout=4)"]

ENTRYPOINT ["crm-qualify"]
CMD ["run"]
