# syntax=docker/dockerfile:1
# Production image: build wheels in one stage, run as a non-root user in a slim second stage.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md constraints.txt ./
COPY server ./server
COPY protocol ./protocol
COPY loadtest ./loadtest
COPY config ./config
# The versions the test suite passed with (constraints.txt), not whatever is newest today.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NEXGATE_SERVER_HOST=0.0.0.0 NEXGATE_SERVER_PORT=8080 NEXGATE_SERVER_DATA_DIR=/var/lib/nexgate
RUN useradd --system --create-home --uid 10001 nexgate \
    && mkdir -p /var/lib/nexgate && chown nexgate /var/lib/nexgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY config ./config
USER nexgate
# The embedded single node keeps its database, media and generated secret here.
VOLUME ["/var/lib/nexgate"]
EXPOSE 8080 9102
# The port the server is configured with (NEXGATE_SERVER_PORT), not a hard-coded one.
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NEXGATE_SERVER_PORT', '8080'), timeout=2)" || exit 1
CMD ["nexgate", "serve"]
