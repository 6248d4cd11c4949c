"""On PYTHONPATH of the processes `bench.hiredis` starts without hiredis: Python imports this
module at start-up, before anything imports redis-py, and `import hiredis` then fails as if the
package were not installed, so redis-py (and kombu through it) parses replies and packs commands
in Python."""

import sys

sys.modules["hiredis"] = None  # type: ignore[assignment]  # `import hiredis` -> ImportError
