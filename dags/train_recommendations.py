"""
### train_recommendations — recommender, complements, up-sells and repurchase intervals, daily

Runs every day as of the run's `data_interval_end` (midnight UTC), on the warehouse only.
Trains an item-item recommender (cosine kNN, scipy.sparse) on implicit feedback — views,
wishlists, carts and orders, weighted and time-decayed (`include/sql/ml/order_lines.sql`, read
once and shared with the repeat purchases and complements, and `include/sql/ml/interactions.sql`) —
and writes, replacing what a previous run for the same day wrote:

* `recommendations`: each customer's top N for the day (`rank` from 1), never a product the
  customer already bought (unless it is a consumable), out of stock or unknown; the
  popularity fallback under `customer_id = '*'` (the content query uses it for anyone else);
* `product_complements` (co-purchase lift, cross-sell), `product_similarities` (browse
  abandonment), `product_upsells` (same type, dearer);
* `product_repurchase_intervals`: learned days between repeat purchases of consumables (the
  `replenishment` campaign reminds at 75 % of it).

It then evaluates itself offline (leave the last basket out: recall@N and NDCG@N next to a
popularity baseline) and writes a model card `models/recommender/<date>/card.json` (or under
the `s3://` prefix of the Airflow Variable `tm_model_store`).

**Params**
* `top_n` — products kept per customer (default 10).
* `evaluate` — run the offline evaluation (default on; it retrains once more on the held-out
  split, roughly doubling the run time).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from relance.airflow_support import DEFAULT_ARGS, START_DATE, interval_timetable


@dag(
    dag_id="train_recommendations",
    schedule=interval_timetable("@daily"),
    start_date=START_DATE,
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=["relance", "ml"],
    doc_md=__doc__,
    params={
        "top_n": Param(10, type="integer", minimum=1, maximum=50, title="Products per customer",
                       description="How many recommendations to keep per customer."),
        "evaluate": Param(True, type="boolean", title="Offline evaluation",
                          description="Leave-last-basket-out recall/NDCG next to popularity, in the model card."),
    },
)
def train_recommendations():
    @task
    def train(**context) -> dict:
        """Train, write the day's recommendations and product tables, evaluate, write the card."""
        from relance import warehouse
        from relance.ml.recommender import train_recommendations as train_and_write
        from relance.timeutil import as_of

        params = context["params"]
        return train_and_write(warehouse.connect(), as_of(context), top_n=int(params["top_n"]),
                               evaluate=bool(params["evaluate"]))

    train()


train_recommendations()
