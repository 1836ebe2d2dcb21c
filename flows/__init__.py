"""Prefect flows and tasks: effects of transitions delivered from the outbox (and, later, sweeps).

Prefect reads its settings from the environment when first imported; give embedded mode a home
under the project's var/ directory and keep it from phoning home (this network has no internet).
"""

import os
from pathlib import Path

from core.config import get_settings, make_private_dir

make_private_dir(get_settings().var_dir)  # keys and the database live there too: owner only
os.environ.setdefault("PREFECT_HOME", str((get_settings().var_dir / "prefect").resolve()))
# Prefect creates its home but not the parents of it (a fresh checkout has no var/ yet).
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# One line per task run drowns the API's own log; failures are still logged (and recorded).
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
