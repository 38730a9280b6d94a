#!/usr/bin/env bash
# Stops the sshd started by start.sh in DIR (only that one: by its pid file).
set -euo pipefail
directory=${1:?usage: stop.sh DIR}
if [ -f "$directory/sshd.pid" ]; then
  kill "$(cat "$directory/sshd.pid")" 2>/dev/null || true
  rm -f "$directory/sshd.pid"
fi
