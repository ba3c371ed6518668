"""A send task in a process of its own, for tests/test_reliability.py to SIGKILL.

``python tests/reliability_worker.py '<json>'`` runs what the ``send_batch`` task runs
(:func:`relance.dispatch.send_batch` with the task's SES v2 client, through the fault proxy of
``AWS_ENDPOINT_URL_SESV2``) and kills itself with SIGKILL at a fault point:

* ``after_claim`` — once the task has taken its batch (the lease renewed), before any row;
* ``before_ses_call`` — once the ``kill_at``-th row is claimed ``sending``, before SES is called;
* ``after_record`` — once the ``kill_at``-th row's outcome is recorded.

(``after_ses_call`` needs no hook here: the proxy kills this process once the emulator accepted
the ``kill_at``-th message, before the answer comes back.)

``python tests/reliability_worker.py --zygote`` imports all that once, then forks one such
process per JSON line read on stdin (the job, with its environment), printing
``{"pid": …}`` when it starts and ``{"exit": …}`` (its exit code, -9 when killed) when it ends:
a kill test then costs a fork, not a Python start-up. The zygote runs no thread, so forking it
is safe.
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


def shipped_campaigns() -> dict:
    from relance.campaigns.config import load_campaigns

    return {cid: c.model_copy(update={"holdout_pct": 0}) for cid, c in load_campaigns().items()}


def main(args: dict, campaigns: dict | None = None) -> None:
    from relance import warehouse
    from relance.dispatch import send_batch
    from relance.messaging.ses import Pacer, SesSender, ses_client
    from relance.warehouse import Warehouse
    from relance.warehouse.cursor import CursorStatements

    wh = warehouse.connect(args["warehouse_url"], upgrade_schema=False)
    campaigns = campaigns or shipped_campaigns()
    hooked, seen = HOOKS.get(args["kill_point"]), 0

    def then_maybe_die(execute):
        def execute_then_maybe_die(self, name, params=None, conn=None):
            nonlocal seen
            result = execute(self, name, params) if conn is None else execute(self, name, params, conn)
            if name == hooked and result and conn is None:  # committed (execute calls itself with its conn)
                seen += 1
                if seen == args["kill_at"]:
                    os.kill(os.getpid(), signal.SIGKILL)
            return result
        return execute_then_maybe_die

    # this process only: it is about to die (the send loop's claim and outcome go through the cursor)
    Warehouse.execute = then_maybe_die(Warehouse.execute)
    CursorStatements.execute = then_maybe_die(CursorStatements.execute)
    now = datetime.fromisoformat(args["now"])
    sender = SesSender(ses_client(connect_timeout=1, read_timeout=2), Pacer(1000), base_delay=0.01)
    send_batch(wh, args["batch_id"], campaigns, sender, datetime.fromisoformat(args["as_of"]), clock=lambda: now)


def zygote() -> None:
    import boto3  # noqa: F401  (imported once, before any fork)
    import sqlalchemy  # noqa: F401

    from relance.dispatch import send_batch  # noqa: F401

    campaigns = shipped_campaigns()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.environ.update(job["env"])
                main(job["args"], campaigns)
            except BaseException:  # noqa: BLE001
                import traceback

                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--zygote":
        zygote()
    else:
        main(json.loads(sys.argv[1]))
