"""Print pip constraints pinning every declared floor: ``name>=X`` becomes ``name==X.*``.

Read from pyproject.toml: the runtime dependencies and the extras named on the command
line (``python .ci/floors.py tf plot legacy``). An environment marker is kept, so the
constraint applies where the requirement does. Run with Python 3.11+ (tomllib).
"""

import re
import sys
from pathlib import Path

import tomllib

project = tomllib.loads(Path(__file__).parent.parent.joinpath("pyproject.toml").read_text())
project = project["project"]
requirements = list(project["dependencies"])
for extra in sys.argv[1:]:
    requirements += project["optional-dependencies"][extra]
for requirement in requirements:
    spec, _, marker = requirement.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9.]*)\s*(,.*)?", spec)
    if match is None:
        sys.exit(f"floors.py: no floor (>=) in {requirement!r}")
    name, floor = match.group(1), match.group(2)
    if "." not in floor:  # pytest>=8 means 8.0, not any 8.x
        floor += ".0"
    print(f"{name}=={floor}.*" + (f"; {marker.strip()}" if marker else ""))
