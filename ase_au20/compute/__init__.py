"""Where work runs: the Dask engine (local cluster, remote scheduler or this process) and the
process settings its workers need. Imports no model, calculator or workflow: a task brings
its own function and says how its calculator is built (``BuildSpec``)."""
