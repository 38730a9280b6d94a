#!/usr/bin/env bash
# Starts a throw-away OpenSSH server on 127.0.0.1 for benchmarks and manual runs: the
# shell twin of `stackctl_host::testing::TestSshd` (same config), for scripts that are
# not Rust tests.
#
#   tests/support/sshd/start.sh DIR      # creates DIR, prints `source DIR/env` lines
#   tests/support/sshd/stop.sh DIR
#
# DIR/env then sets SSHD_PORT, SSHD_USER, SSHD_CLIENT_KEY, SSHD_KNOWN_HOSTS and
# SSHD_HOST_FINGERPRINT. Needs `openssh-server` (and root, for /run/sshd and to log in
# as root).
set -euo pipefail

directory=${1:?usage: start.sh DIR}
mkdir -p "$directory"
directory=$(cd "$directory" && pwd)
mkdir -p /run/sshd

for key in ssh_host_ed25519_key client_ed25519_key; do
  [ -f "$directory/$key" ] || ssh-keygen -q -t ed25519 -N '' -C "stackctl-$key" -f "$directory/$key"
done
cp "$directory/client_ed25519_key.pub" "$directory/authorized_keys"

# A free port: a random one that nothing answers on (at most 20 tries), below the
# kernel's ephemeral range (32768-60999) so no outgoing connection can hold it, and
# apart from the fixed edge ports the tests publish (18xxx-19xxx, 22000-31999).
for _ in $(seq 20); do
  port=$((12000 + RANDOM % 6000))
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done

cat >"$directory/sshd_config" <<CONFIG
ListenAddress 127.0.0.1:$port
HostKey $directory/ssh_host_ed25519_key
AuthorizedKeysFile $directory/authorized_keys
PidFile $directory/sshd.pid
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
UseDNS no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
LogLevel VERBOSE
CONFIG

/usr/sbin/sshd -f "$directory/sshd_config" -E "$directory/sshd.log"

# Wait (at most 10 s) for the banner.
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port" && head -c 4 <&3 | grep -q SSH-) 2>/dev/null; then
    break
  fi
  sleep 0.1
done

echo "[127.0.0.1]:$port $(cat "$directory/ssh_host_ed25519_key.pub")" >"$directory/known_hosts"
cat >"$directory/env" <<ENV
SSHD_PORT=$port
SSHD_USER=$(id -un)
SSHD_CLIENT_KEY=$directory/client_ed25519_key
SSHD_KNOWN_HOSTS=$directory/known_hosts
SSHD_HOST_FINGERPRINT=$(ssh-keygen -lf "$directory/ssh_host_ed25519_key.pub" | awk '{print $2}')
ENV
cat "$directory/env"
