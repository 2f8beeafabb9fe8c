"""Model variants, one module per family, all on :class:`vaelab.models.base.AutoEncoder`.

Every module in this package is imported by :func:`vaelab.registry._load_all`, so a new variant
is a new file with a ``@register`` line and nothing else.
"""
