# Release images: `REVISION=$(git rev-parse HEAD) docker buildx bake [--push]`.
# Every build is tagged <yyyymmdd>-<commit>: unique per build, never only `latest`.

variable "REGISTRY" {
  # Prefix of every image name, ending in "/" (e.g. "ghcr.io/acme/"); empty for local images.
  default = ""
}

variable "REVISION" {
  # The full commit being built (CI: GITHUB_SHA).
  default = ""
  validation {
    condition     = length(REVISION) >= 12
    error_message = "Set REVISION to the commit being built, e.g. REVISION=$(git rev-parse HEAD)."
  }
}

variable "SOURCE" {
  # Where the source lives, for the org.opencontainers.image.source label.
  default = ""
}

function "release_tag" {
  params = []
  result = "${formatdate("YYYYMMDD", timestamp())}-${substr(REVISION, 0, 12)}"
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
}

target "marts" {
  inherits   = ["_release"]
  dockerfile = "Dockerfile.marts"
  tags       = image("dagster-marts")
}

target "platform" {
  inherits   = ["_release"]
  dockerfile = "Dockerfile.platform"
  tags       = image("dagster-platform")
}
