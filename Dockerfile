# The image of the Kubernetes deployment (deploy/k8s/): the code server, every run pod and the
# migration Job. Built from this repository's own files; the package is installed, not linked
# (no -e): the image holds no checkout.
#   docker build -t registry.example.internal/modelarts-etl:0.1.0 .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# What the wheel is built from (pyproject.toml: the package, its SQL files, the README it names)
WORKDIR /build
COPY pyproject.toml README.md ./
COPY pipelines ./pipelines
COPY sql ./sql
RUN pip install '.[k8s]' && cd / && rm -rf /build

# An unprivileged user; Dagster's home (the chart mounts the instance's dagster.yaml there) and
# the data directory (reports, spill files) are its own.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /opt/dagster modelarts-etl \
    && mkdir -p /opt/dagster/dagster_home /var/lib/modelarts-etl/reports \
    && chown -R modelarts-etl:modelarts-etl /opt/dagster /var/lib/modelarts-etl
USER 10001
WORKDIR /opt/dagster
ENV DAGSTER_HOME=/opt/dagster/dagster_home \
    PIPELINES_DATA_DIR=/var/lib/modelarts-etl

# The chart's code server runs `dagster api grpc` with values.yaml's dagsterApiGrpcArgs; this is
# the same command for a plain `docker run`.
EXPOSE 3030
CMD ["dagster", "api", "grpc", "--module-name", "pipelines.definitions", "--host", "0.0.0.0", "--port", "3030"]
