"""The `dimflow` command line: an application over the domain (`dimflow/`) and the flows."""
