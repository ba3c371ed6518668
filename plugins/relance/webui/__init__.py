"""The Campaigns page of the Airflow UI (see :mod:`relance.webui.app`)."""
