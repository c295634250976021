# campaign-api: the GraphQL service, run against an external PostgreSQL (DATABASE_URL).
#
#   docker build -t campaign-api .
#   docker run -e DATABASE_URL=postgresql://user:password@host:5432/db -p 8000:8000 campaign-api
#
# The default command migrates the database, then serves. See docker-compose.yml for a local stack.

# --- build: install the project and its dependencies into a virtualenv -----------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY . .
# A regular (non-editable) install: app/, schema/, resolvers/ and migrations/ (with
# migrations/versions/*.py) land in site-packages, where app/db/migrate.py finds the migrations.
# The check runs from / so that it imports the installed package, not the sources in /src.
RUN pip install . \
 && cd / && python -c "import app.db.migrate as m; assert m.head_revision(), 'no migrations installed'"

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim

RUN groupadd --system --gid 10001 campaign \
 && useradd --system --uid 10001 --gid campaign --home-dir /srv/campaign-api \
        --no-create-home --shell /usr/sbin/nologin campaign \
 && install -d -o campaign -g campaign /srv/campaign-api

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CAMPAIGN_ENVIRONMENT=production \
    CAMPAIGN_HOST=0.0.0.0 \
    CAMPAIGN_PORT=8000

WORKDIR /srv/campaign-api
USER 10001:10001

EXPOSE 8000

# /healthz says the process is up (no database check); slim has no curl, so use urllib.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CAMPAIGN_PORT', '8000'), timeout=4)"]

# exec replaces the shell, so the server runs as PID 1 and gets SIGTERM on `docker stop`.
CMD ["sh", "-c", "campaign-api migrate && exec campaign-api serve"]
