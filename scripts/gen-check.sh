#!/bin/sh
# Regenerates src/gen from proto/ and fails if that changed anything, new files included.
set -e
npx buf generate
changes=$(git status --porcelain -- src/gen)
if [ -n "$changes" ]; then
  echo "src/gen differs from what proto/ generates; run npm run gen and commit:" >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- src/gen >&2
  exit 1
fi
echo "src/gen matches proto/"
