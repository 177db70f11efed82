"""marshrut (маршрут): individual professional development routes for school teachers.

The package's layers, each importable on its own:

- `marshrut.engine`: reading and validating regions, deficit profiles, the solver, the plan files;
- `marshrut.datasets`: the sample regions and their generator;
- `marshrut.api`: the HTTP service and the planners' web page;
- `marshrut.benchmarks`: measurements against the tools a planner would otherwise use;
- `marshrut.cli`: the `marshrut` command, on top of them all.

This module imports nothing but `time`, so that `import marshrut.engine` loads the engine alone.
"""

import time as _time

__version__ = "0.2.0"

# When this package was first imported: the start of a command's own work where the process is older
# (a shell that ran other commands and then exec'd ours: engine.deadline.Deadline.since_process_start).
IMPORTED = _time.monotonic()
