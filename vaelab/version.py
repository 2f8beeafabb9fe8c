"""vaelab's version, in a module of its own so any module can read it without importing the
package's ``__init__`` (which imports half the library)."""

__version__ = "0.2.0"
