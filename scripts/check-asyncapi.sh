#!/usr/bin/env bash
# Validate AsyncAPI documents with the official JavaScript parser (@asyncapi/parser 3.x).
#
# Usage: scripts/check-asyncapi.sh [FILE...]   (default: asyncapi/v1-schema.yaml)
# Paths are relative to the repository root. Needs node (20+) and npm; the parser is
# installed into a temporary folder that is removed on exit, nothing is installed globally.
# Exit status: 0 when every document parses without errors, 1 otherwise.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$#" -eq 0 ]; then
  set -- asyncapi/v1-schema.yaml
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A package.json of its own keeps npm from walking up and installing somewhere else.
printf '{ "private": true }\n' > "$tmp/package.json"
if ! npm install --prefix "$tmp" --no-audit --no-fund --silent '@asyncapi/parser@^3.6'; then
  echo "error: could not install @asyncapi/parser" >&2
  exit 1
fi

# ES modules ignore NODE_PATH: run a copy beside node_modules so the import resolves.
cp scripts/check-asyncapi.mjs "$tmp/check-asyncapi.mjs"
node "$tmp/check-asyncapi.mjs" "$@"
