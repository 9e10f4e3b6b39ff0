# syntax=docker/dockerfile:1
# Production image: build wheels in one stage, run as a non-root user in a slim second stage.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY server ./server
COPY protocol ./protocol
COPY loadtest ./loadtest
COPY config ./config
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NEXGATE_SERVER_HOST=0.0.0.0 NEXGATE_SERVER_DATA_DIR=/var/lib/nexgate
RUN useradd --system --create-home --uid 10001 nexgate \
    && mkdir -p /var/lib/nexgate && chown nexgate /var/lib/nexgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY config ./config
USER nexgate
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
CMD ["nexgate", "serve"]
