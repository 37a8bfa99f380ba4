# The one image every chatmesh Deployment runs (k8s/base): the command picks
# the process, e.g. `python -m msgsvc`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY chatmesh ./chatmesh
COPY gateway ./gateway
COPY msgsvc ./msgsvc
COPY sessionsvc ./sessionsvc
COPY presencesvc ./presencesvc
COPY notifysvc ./notifysvc
RUN pip install .

# Matches the pods' securityContext (runAsUser 10001, read-only root).
USER 10001:10001
CMD ["python", "-m", "gateway"]
