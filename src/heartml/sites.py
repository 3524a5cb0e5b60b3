"""What a site name may be: one rule for the API, the CLI, the store and the calibration folders.

Light (no SQLAlchemy): the settings and the server import it at start-up.
"""

from __future__ import annotations

import re

SITE_MAX = 64
# A site also names a folder of calibrations (heartml.calibration.files): it starts with a
# letter or a digit, so that "." and ".." are never site names.
SITE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SITE_RULE = f"1 to {SITE_MAX} characters of A-Z, a-z, 0-9, '_', '.' and '-', starting with a letter or digit"
SITE_ERROR = "site"  # the type of the API's 422 item for a site that breaks SITE_RULE


def site_message(site: object) -> str:
    """What is wrong with a site that breaks the rule, in the words every door uses."""
    return f"site {site!r} is not allowed; expected {SITE_RULE}"


def is_site(value: object) -> bool:
    return type(value) is str and SITE_PATTERN.fullmatch(value) is not None
