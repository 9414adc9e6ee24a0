# tsunagi as operators run it: one image, several processes (compose.yaml runs two behind a proxy).
# The risk model is not in the image: train it with `make model` (or `tsunagi risk train`) and mount
# models/risk at /models/risk; without it the keyword floor screens alone and supervisors are told.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch's CPU build first: the default wheel brings gigabytes of CUDA libraries this service never uses.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot bot
COPY moderation moderation
# Editable: the code finds its migrations and content beside it, in /app.
RUN pip install -e .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /app tsunagi
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=build /app /app
COPY alembic.ini ./
COPY alembic alembic
COPY content content
# Secrets (LINE_*, DATABASE_URL, ENCRYPTION_KEYS) come from the environment at run time (compose.yaml),
# never from the image: `serve` refuses to start without ENCRYPTION_KEYS.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CONTENT_DIR=/app/content \
    RISK_MODEL_DIR=/models/risk \
    LOG_FORMAT=json
USER tsunagi
EXPOSE 8080
# /healthz answers 200 while the service works (also when "degraded", which a restart would not fix).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["tsunagi", "serve", "--host", "0.0.0.0", "--port", "8080"]
