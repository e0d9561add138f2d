"""The kernel's exception tree."""


class KernelError(Exception):
    """Base of every error raised by the shared kernel."""


class SecretsError(KernelError):
    """A secret could not be loaded, encrypted or decrypted."""


class DatabaseError(KernelError):
    """The database could not be opened or migrated."""


class BusError(KernelError):
    """The event bus could not publish, consume or acknowledge."""
