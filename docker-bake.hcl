# Rendered from deploy/templates/docker-bake.hcl.j2 by `uv run render-deploy` from the [tool.platform]
# tables of the pyprojects: edit the template or the tables, never this file.
# Release images: `REVISION=$(git rev-parse HEAD) docker buildx bake -f docker-bake.hcl [--load|--push]`.
# Every build is tagged <yyyymmdd>-<commit>: unique per build, never only `latest`.
# `-f docker-bake.hcl`: without it bake also reads compose.yml, whose env files a clean checkout lacks.
# Written for buildx 0.13 (Debian's), so no `validation` blocks (buildx 0.14+).

variable "REGISTRY" {
  # Prefix of every image name, ending in "/" (e.g. "ghcr.io/acme/"); empty for local images.
  default = ""
}

variable "REVISION" {
  # The full commit being built (CI: GITHUB_SHA).
  default = ""
}

variable "SOURCE" {
  # Where the source lives, for the org.opencontainers.image.source label.
  default = ""
}

function "commit" {
  params = []
  # Fails with "pattern did not match" unless REVISION is a commit: set REVISION=$(git rev-parse HEAD).
  result = regex("^[0-9a-f]{12}", REVISION)
}

function "release_tag" {
  params = []
  result = "${formatdate("YYYYMMDD", timestamp())}-${commit()}"
}

function "image" {
  params = [name]
  result = ["${REGISTRY}${name}:${release_tag()}"]
}

group "default" {
  targets = ["ingest_raw", "marts", "platform"]
}

target "_release" {
  context = "."
  args = {
    VERSION  = release_tag()
    REVISION = REVISION
    CREATED  = timestamp()
    SOURCE   = SOURCE
  }
}

target "ingest_raw" {
  inherits   = ["_release"]
  dockerfile = "Dockerfile.ingest"
  tags       = image("dagster-ingest-raw")
  # The image's own reference, which its code server advertises for the run containers.
  args       = { IMAGE = image("dagster-ingest-raw")[0] }
}

target "marts" {
  inherits   = ["_release"]
  dockerfile = "Dockerfile.marts"
  tags       = image("dagster-marts")
  # The image's own reference, which its code server advertises for the run containers.
  args       = { IMAGE = image("dagster-marts")[0] }
}

target "platform" {
  inherits   = ["_release"]
  dockerfile = "Dockerfile.platform"
  tags       = image("dagster-platform")
}
