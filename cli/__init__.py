"""marshrut (маршрут): individual professional development routes for school teachers.

The package's layers, each importable on its own:

- `marshrut.engine`: reading and validating regions, deficit profiles, the solver, the plan files;
- `marshrut.datasets`: the sample regions and their generator;
- `marshrut.api`: the HTTP service and the planners' web page;
- `marshrut.benchmarks`: measurements against the tools a planner would otherwise use;
- `marshrut.cli`: the `marshrut` command, on top of them all.

This module imports nothing, so that `import marshrut.engine` loads the engine alone.
"""

__version__ = "0.2.0"
