"""taskstream: run slow work in the background and watch every step of it live."""

__version__ = "0.1.0"
