"""Device profiles: YAML files validated against schemas/profile.schema.json."""

from appliance.config.errors import Location, ProfileError, ProfileIssue, format_path
from appliance.config.loader import LoadedProfile, load_profile
from appliance.config.model import Profile

__all__ = [
    "LoadedProfile",
    "Location",
    "Profile",
    "ProfileError",
    "ProfileIssue",
    "format_path",
    "load_profile",
]
