#!/usr/bin/env bash
# Installs PyPI packages the tests run as real peers (rotel, an OTLP collector) when python3
# cannot import them. Arguments: module=package pairs.
set -euo pipefail
for pair in "$@"; do
  module=${pair%%=*} package=${pair#*=}
  python3 -c "import $module" 2>/dev/null && continue
  echo "installing $package from PyPI"
  # Debian's own python refuses user installs into the system (PEP 668) unless told
  python3 -m pip install --quiet "$package" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$package"
done
