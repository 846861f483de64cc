"""`python -m federated.worker --id bob --port 8777`: kept so that PySyft-style commands
and older lessons still work. The server itself is `federated.server`; the worker class
is `federated.VirtualWorker` (in `federated.virtual_worker`).

Nothing in the package imports this module, so running it does not import it twice.
"""

from federated.virtual_worker import VirtualWorker

__all__ = ["VirtualWorker"]

if __name__ == "__main__":
    from federated.server import main

    main()
