"""Airflow plugin: the Relance "Campaigns" page in the Airflow UI (nav entry → /plugin/campaigns,
which frames /relance/campaigns, served by the API server behind its authentication).
The ``relance`` package itself is kept off the plugin manager by ``.airflowignore``."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from relance.webui.app import PAGE_PATH, URL_PREFIX, create_app


class RelanceCampaignsPlugin(AirflowPlugin):
    name = "relance_campaigns"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Relance campaigns"}]
    external_views = [{"name": "Campaigns", "href": f"{URL_PREFIX}{PAGE_PATH}", "destination": "nav",
                       "url_route": "campaigns", "category": None}]
