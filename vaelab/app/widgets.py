"""Presets the tabs share: image boxes, LaTeX delimiters, the model picker, number formatting."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

STATIC = Path(__file__).parent / "static"  # the page's own scripts and styles (package data)

# Markdown that renders $inline$ and $$display$$ formulas
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]


def asset(name: str) -> str:
    """The text of a script or style in ``static/``, for a ``gr.HTML``'s ``js_on_load`` or ``css_template``."""
    return (STATIC / name).read_text(encoding="utf-8")


def default_choice(choices: list[tuple[str, str]], preferred) -> str | None:
    """The first of ``preferred`` among the choices' values, else the first choice (or ``None``)."""
    names = [value for _, value in choices]
    return next((n for n in preferred if n in names), names[0] if names else None)


def model_picker(choices: list[tuple[str, str]], preferred, **kwargs) -> gr.Dropdown:
    """A dropdown of checkpoints (``(label, name)`` pairs) starting at the preferred one."""
    return gr.Dropdown(choices, value=default_choice(choices, preferred), **kwargs)


def fmt(v, digits=3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "n/a"


def tab_intro(summary: str, ready: bool, missing: str) -> bool:
    """A tab's first lines: its plain-language summary, then — when none of the shipped models
    applies — ``missing`` (what would, and how to get it). Returns ``ready``: whether to lay out
    the rest."""
    gr.Markdown(summary)
    if not ready:
        gr.Markdown(missing)
    return ready


def whole_number(value, lo: int, hi: int, message: str) -> int:
    """``value`` as an int in ``lo``…``hi``; otherwise a ``gr.Error`` with ``message`` (what the
    number is and its range, in the user's words)."""
    try:
        v = int(value)
        if v != float(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise gr.Error(message)
    if not lo <= v <= hi:
        raise gr.Error(message)
    return v


def keyed(fn, components: dict):
    """Wire a handler that returns ``{name: value}`` to the components of those names: Gradio gets
    ``{component: value}`` (names left out are not updated). Handlers stay plain functions that
    tests read by name, and no handler returns a long positional tuple."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if not out:  # nothing to change: a single skip leaves every output as it is
            return gr.skip()
        unknown = set(out) - set(components)
        if unknown:
            raise KeyError(f"{fn.__name__} returned outputs with no component: {sorted(unknown)}")
        return {components[k]: v for k, v in out.items()}
    return wrapper


def follow_trained(mine, picker, choices_for) -> None:
    """Keep ``picker``'s choices in step with the models this browser session trained: when the
    session's list ``mine`` (a ``gr.State`` of names) changes, the picker offers
    ``choices_for(extra_cards)`` — the tab's own choices over its shipped cards plus those."""
    from vaelab.app.catalogue import trained_cards

    def update(names):
        return gr.update(choices=choices_for(trained_cards(names)))

    mine.change(update, mine, picker, show_progress="hidden", queue=False, api_visibility="private")
