# One image for every paysaga process: the API (default command), the worker
# (`python worker.py`), the sandbox channel and the migration job (`python -m db.migrate`).
# Build: docker build -t paysaga .   Run it all: docker-compose up (see README).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md settings.py logs.py worker.py worker_health.py stack.py processes.py \
    telemetry.py temporal_client.py ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY api api
COPY channels channels
COPY sandbox sandbox
COPY db db
COPY metrics metrics
RUN python -m venv /opt/paysaga \
    && /opt/paysaga/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/paysaga/bin/python -m compileall -q /opt/paysaga/lib

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app paysaga
COPY --from=build /opt/paysaga /opt/paysaga
WORKDIR /app
ENV PATH=/opt/paysaga/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PAYSAGA_API_HOST=0.0.0.0 \
    PAYSAGA_WORKER_HEALTH_HOST=0.0.0.0
USER paysaga
EXPOSE 8000 8001
CMD ["uvicorn", "--factory", "api.app:create_app", "--host", "0.0.0.0", "--port", "8000", \
     "--timeout-graceful-shutdown", "30", "--no-server-header"]
