#!/usr/bin/env bash
# Build the documentation site and take the README's screenshots of it in headless Chromium:
# docs/img/site-home.png (the home page) and docs/img/site-api.png (the sagan.nn API page).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXTRAS=docs . scripts/setup.sh
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$site"
shot() {  # PAGE OUT
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1000 \
        --screenshot="$2" "file://$site/$1" 2>/dev/null
}
shot index.html docs/img/site-home.png
shot api/nn/index.html docs/img/site-api.png
echo "docs/img/site-home.png docs/img/site-api.png"
