# The service's image: web (gunicorn), Celery worker and beat, the event consumer and `migrate`
# all run from it (docker-compose.yml). Slim, non-root, no compiler: every pinned package ships a wheel.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_ENV=production \
    LOG_DIR=/var/log/user-service \
    PROMETHEUS_MULTIPROC_DIR=/run/user-service/metrics \
    SECRET_KEY_FILE=/var/lib/user-service/secret_key \
    FIELD_ENCRYPTION_KEYS_FILE=/var/lib/user-service/field_encryption_keys \
    DOCUMENT_STORAGE_DIR=/var/lib/user-service/documents
# Uploaded files go to DOCUMENT_STORAGE_DIR, a volume in docker-compose.yml: never under /app,
# the image's code, which is read-only for the service's user.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /var/log/user-service /run/user-service/metrics /var/lib/user-service/documents \
 && chown app:app /var/log/user-service /run/user-service/metrics /var/lib/user-service \
      /var/lib/user-service/documents
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays root-owned and read-only for the service's user.
COPY . .
USER app
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
ENTRYPOINT ["docker/entrypoint"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "config.wsgi"]
