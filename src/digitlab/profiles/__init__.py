"""Teach it your handwriting: corrections kept per class or pupil, and profiles that adapt the CNN to them.

See docs/profiles.md. ``digitlab adapt`` builds a profile, ``digitlab predict --profile NAME`` uses it,
``digitlab profiles`` lists them; the web endpoints are in :mod:`digitlab.profiles.api`.
"""

from .core import adapt, get_profile, list_profiles, profile_path, profiles_dir

__all__ = ["adapt", "get_profile", "list_profiles", "profile_path", "profiles_dir"]
