__all__ = ["PortsentryError", "__version__"]

__version__: str

class PortsentryError(Exception): ...
