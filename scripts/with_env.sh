#!/usr/bin/env bash
# Run one command inside the project environment: scripts/with_env.sh python -m pytest ...
set -eo pipefail
# shellcheck disable=SC1091
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/activate.sh"
exec "$@"
