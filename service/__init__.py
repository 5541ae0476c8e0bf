"""The dimflow service: an upload API whose jobs run as Prefect flow runs on warm worker processes."""
