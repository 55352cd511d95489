"""For the `piccolo` command line run from the repository (e.g. `piccolo migrations new`)."""

from server.piccolo_conf import APP_REGISTRY, DB

__all__ = ["APP_REGISTRY", "DB"]
