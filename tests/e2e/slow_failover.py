"""An update_db_config_for_tenant that stalls on its first call, so a test can kill the worker
running it. The marker file (TB_SLOW_FAILOVER_MARK) says the stall began."""

import os
import time
from pathlib import Path

from breaker_worker.failover import update_db_config_for_tenant as choose_first_healthy


def update_db_config_for_tenant(tenant_id, alias):
    marker = Path(os.environ["TB_SLOW_FAILOVER_MARK"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(60)  # killed long before this ends
    return choose_first_healthy(tenant_id, alias)
