"""``campaign_report``: what the messages earned (SPEC §9).

* :mod:`relance.results.attribution` — last-touch attribution of orders → ``conversions``;
* :mod:`relance.results.experiments` — A/B results and holdout lift → ``report_ab_results``,
  ``report_holdout_lift`` (the ``ab_results`` and ``holdout_lift`` views show the newest day);
* :mod:`relance.results.stats` — the intervals and tests.
"""

from relance.results.report import run_report

__all__ = ["run_report"]
