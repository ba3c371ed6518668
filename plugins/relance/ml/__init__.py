"""Models on the warehouse: customer segments and purchase propensity (``segments``), the
recommender with its offline evaluation (``recommender``, ``evaluation``, both built on the
item-item model of ``itemknn``), the SQL they read (``include/sql/ml``), and the model store
(``store``). Plain functions taking a :class:`relance.warehouse.Warehouse`: the DAGs
``build_segments`` and ``train_recommendations`` only call them.

Heavy imports (pandas, scikit-learn, scipy) happen inside these modules, which the DAG files
import inside their task bodies only.
"""
