"""The app's tabs, one module each: plain handlers at the top, ``render()`` at the bottom."""
