FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md alembic.ini celeryconfig.py ./
COPY models ./models
COPY tasks ./tasks
COPY workers ./workers
COPY migrations ./migrations
RUN pip install --constraint constraints.txt ".[ops]" && useradd --create-home loyalty
USER loyalty
CMD ["celery", "-A", "workers.app", "worker", "-Q", "loyalty.adjustments", "-l", "info"]
