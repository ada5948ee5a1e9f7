#!/bin/bash
# Starts ui-server with ./config/docker.yaml, which ui-server renders itself from TEMPORAL_*
# environment variables (its "# enable-template" header). Passing "bash" opens a shell instead.
set -eu
for arg in "$@"; do
  if [[ $arg == bash ]]; then exec bash; fi
done
exec ./ui-server --env docker start
