-- The stack's databases on one PostgreSQL (run once, when the volume is new): Prefect's, MLflow's
-- tracking and registry store, and the API's append-only audit log.
CREATE DATABASE prefect OWNER dimflow;
CREATE DATABASE mlflow OWNER dimflow;
CREATE DATABASE audit OWNER dimflow;
