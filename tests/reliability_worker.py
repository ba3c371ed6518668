"""A send task in a process of its own, for tests/test_reliability.py to SIGKILL.

``python tests/reliability_worker.py '<json>'`` runs what the ``send_batch`` task runs
(:func:`relance.dispatch.send_batch` with the task's SES v2 client, through the fault proxy of
``AWS_ENDPOINT_URL_SESV2``) and kills itself with SIGKILL at a fault point:

* ``after_claim`` — once the task has taken its batch (the lease renewed), before any row;
* ``before_ses_call`` — once the ``kill_at``-th row is claimed ``sending``, before SES is called;
* ``after_record`` — once the ``kill_at``-th row's outcome is recorded.

(``after_ses_call`` needs no hook here: the proxy kills this process once the emulator accepted
the ``kill_at``-th message, before the answer comes back.)
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tests")]

HOOKS = {"after_claim": "outbox/renew_lease", "before_ses_call": "outbox/claim_for_sending",
         "after_record": "outbox/record_outcome"}


def main(args: dict) -> None:
    from relance import warehouse
    from relance.campaigns.config import load_campaigns
    from relance.dispatch import send_batch
    from relance.messaging.ses import Pacer, SesSender, ses_client

    wh = warehouse.connect(args["warehouse_url"], upgrade_schema=False)
    campaigns = {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in load_campaigns().items()}
    hooked, seen = HOOKS.get(args["kill_point"]), 0
    execute = wh.execute

    def execute_then_maybe_die(name, params=None, conn=None):
        nonlocal seen
        result = execute(name, params, conn)
        if name == hooked and result and conn is None:  # committed (execute calls itself with its conn)
            seen += 1
            if seen == args["kill_at"]:
                os.kill(os.getpid(), signal.SIGKILL)
        return result

    wh.execute = execute_then_maybe_die
    now = datetime.fromisoformat(args["now"])
    sender = SesSender(ses_client(connect_timeout=1, read_timeout=2), Pacer(1000), base_delay=0.01)
    send_batch(wh, args["batch_id"], campaigns, sender, datetime.fromisoformat(args["as_of"]), clock=lambda: now)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
