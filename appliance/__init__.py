"""Edge appliance that measures social distancing and occupancy from camera video."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("appliance")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
