"""Writes the JSON Schema files of ``schemas/`` from the models (``models.domain.schemas``).

Run it after changing a command or a result, and commit the files; a test fails until they
match: ``.venv/bin/python scripts/generate_schemas.py [directory]``. Kept out of ``models/``, which
writes no files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # Run as a file, scripts/ is on the path, not the project's packages.
    sys.path.insert(0, str(ROOT))

from models.domain.commands import COMMAND_MODELS  # noqa: E402
from models.domain.schemas import command_schema, result_schema  # noqa: E402

SCHEMA_DIR = ROOT / "schemas"
REGENERATE = ".venv/bin/python scripts/generate_schemas.py"


def generated() -> dict[str, str]:
    """File name to content, exactly as committed under ``schemas/``."""
    schemas = {
        **{f"{name}.json": command_schema(model) for name, model in COMMAND_MODELS.items()},
        "command_result.json": result_schema(),
    }
    return {name: json.dumps(schema, indent=2) + "\n" for name, schema in schemas.items()}


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(f"wrote {path}")
