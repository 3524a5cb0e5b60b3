"""The `heartml` command line, one module per lifecycle area (data, training, registry,
package, serving) under the root command in main.py.

Settings and logging are built in the root callback, never at import time. Known failures end
with one line on stderr and exit code 2, not a traceback.
"""

from heartml.cli.main import app, run

__all__ = ["app", "run"]
