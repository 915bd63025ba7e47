#!/usr/bin/env bash
# Installs the npm packages the tests run as real peers (oidc-provider, a certified OpenID
# Provider) into proxy/tests/peers/node_modules, and Node.js itself when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  ./scripts/ensure-packages.sh nodejs npm
fi
peers=proxy/tests/peers
if [ ! -d "$peers/node_modules/oidc-provider" ]; then
  echo "installing the test peers from npm ($peers/package.json)"
  # Node 20 prints an "unsupported runtime" notice for oidc-provider 9; it works
  (cd "$peers" && npm install --no-audit --no-fund --loglevel=error)
fi
