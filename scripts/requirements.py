"""Print the project's install requirements from setup.cfg, one per line (for pip download)."""

import configparser
from pathlib import Path

config = configparser.ConfigParser()
config.read(Path(__file__).resolve().parents[1] / "setup.cfg")
print("\n".join(line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()))
