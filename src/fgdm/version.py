"""The installed version of fgdm (``fgdm --version``, recorded in exported weights)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fgdm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
