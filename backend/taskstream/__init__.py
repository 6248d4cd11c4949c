"""taskstream: run slow work in the background and watch every step of it live.

Submit tasks from Python code with `taskstream.submit` (`from taskstream.submit import submit`).
It is not imported here: it loads Celery, redis-py and the kinds (about a second), which
`import taskstream` and the HTTP client (`taskstream.client`) need not pay for.
"""

__version__ = "0.1.0"
