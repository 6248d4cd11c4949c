"""The Celery worker: `celery -A taskstream.worker.app worker`."""
