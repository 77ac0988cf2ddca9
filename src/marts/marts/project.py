"""The dbt project shipped inside this package, wherever the package is installed.

`dagster-dbt project prepare-and-package --file <this file>` writes its manifest ahead (image build);
`dagster dev` re-parses it on load (`prepare_if_dev`). Only the lazy definitions import this module.
"""

from pathlib import Path

from dagster_dbt import DbtProject

PROJECT_DIR = Path(__file__).parent / "dbt_project"

flights_project = DbtProject(project_dir=PROJECT_DIR)
