# tabpilot in a slim image: `docker run IMAGE train ...`, or serve a registered model:
#   docker run -p 5000:5000 -e MLFLOW_TRACKING_URI=http://mlflow:5000 IMAGE \
#       serve --model models:/titanic@champion --host 0.0.0.0 --port 5000
# BASE only changes for machines without Docker Hub (benchmarks/docker_image.sh builds a stand-in).
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DVC_NO_ANALYTICS=1 \
    TABPILOT_WARM=0

RUN apt-get update \
    && apt-get install -y --no-install-recommends git libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 tabpilot

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md params.yaml dvc.yaml ./
COPY tabpilot ./tabpilot
COPY tasks ./tasks
COPY flows ./flows
# Bytecode at build time: PYTHONDONTWRITEBYTECODE would make every command compile its imports again.
RUN pip install --no-deps . && (python -m compileall -q -j 0 /usr/local/lib > /dev/null 2>&1 || true) \
    && chown -R tabpilot:tabpilot /app

USER tabpilot
EXPOSE 5000
ENTRYPOINT ["tabpilot"]
CMD ["--help"]
