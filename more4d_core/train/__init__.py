"""Training of trajectory generators (see ``loop.py``; launch with ``python -m more4d_core.train``)."""
