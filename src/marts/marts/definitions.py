"""Code location `marts`. Importing this module parses nothing: Dagster calls `defs` once, at load."""

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    from marts.build import build_definitions
    from marts.project import flights_project

    if flights_project.manifest_path.is_file():
        flights_project.prepare_if_dev()  # images ship the manifest; `dagster dev` re-parses edits
    else:
        flights_project.preparer.prepare(flights_project)  # a fresh source checkout: parse once
    return build_definitions(flights_project)
