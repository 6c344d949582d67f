#!/bin/sh
# cfi client bootstrap, written by 'cfi-sh server bootstrap-script' (cfi-sh TEST).
# Run it as root on a freshly installed machine (a preseed late_command through
# in-target, a cloud-init runcmd): it makes the machine a client of the cfi server
# whose ssh key has the fingerprint
#   SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY
# in the group lab. Running it again changes nothing.
set -eu

say() { printf 'cfi bootstrap: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run it as root"

# write FILE MODE: standard input into FILE (atomically), unless it already says that.
write() {
  cat >"$1.cfi-new"
  if cmp -s "$1.cfi-new" "$1"; then rm -f "$1.cfi-new"; return 0; fi
  chmod "$2" "$1.cfi-new"
  mv -f "$1.cfi-new" "$1"
  say "wrote $1"
}

# 1. The announcement: avahi-daemon announces this machine with its group.
mkdir -p /etc/avahi/services
write /etc/avahi/services/cfi.service 0644 <<'EOF'
<?xml version="1.0" standalone='no'?>
<!DOCTYPE service-group SYSTEM "avahi-service.dtd">
<!-- Written by 'cfi-sh client enroll': this machine as a cfi client. 'cfi-sh client leave' removes it. -->
<service-group>
  <name replace-wildcards="yes">%h</name>
  <service protocol="ipv4">
    <type>_cfi._tcp</type>
    <port>22</port>
    <txt-record>group=lab</txt-record>
  </service>
</service-group>
EOF

# 2. The server's key for root: one line, marked with its fingerprint, edited as
#    'cfi-sh client enroll' edits it: the first cfi line is replaced (keeping its
#    options), further ones dropped, other lines kept; without one, it is appended.
keys=/root/.ssh/authorized_keys
line='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHU3V9lSQ8gDEyrA5eOyMu4j8cvJAuFXYpJ60O8MBG/A cfi-sh-server:SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY'
[ -d "${keys%/*}" ] || { mkdir -p "${keys%/*}"; chmod 0700 "${keys%/*}"; }
# Edited into a file first: sh has no pipefail, and a failed edit must install nothing.
edited=$keys.cfi-edit
if [ -f "$keys" ]; then
  awk -v line="$line" '
    NF >= 3 && $1 !~ /^#/ && $NF ~ /^cfi-sh-server:/ {
      if (!done) print substr($0, 1, index($0, $(NF - 2)) - 1) line
      done = 1
      next
    }
    { print }
    END { if (!done) print line }' "$keys" >"$edited" || { rm -f "$edited"; die "cannot edit $keys"; }
else
  printf '%s\n' "$line" >"$edited"
fi
write "$keys" 0600 <"$edited"
rm -f "$edited"

# 3. The pin: cfi-sh, once installed, trusts this server key only.
pin=/etc/cfi/server.pin
mkdir -p "${pin%/*}"
write "$pin" 0644 <<'EOF'
# The cfi server key this client trusts ('cfi-sh client enroll' pinned it).
# A different key is refused until 'cfi-sh client enroll --reset'.
SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY
EOF

# A live machine announces itself now; else avahi-daemon reads the file when it starts.
if avahi-daemon --check 2>/dev/null; then
  avahi-daemon -r || say "cannot reload avahi-daemon: it reads the file when it starts"
fi
for program in avahi-daemon sshd rsync; do
  command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] \
    || say "warning: $program is not installed: the server needs avahi-daemon, openssh-server and rsync here"
done
say "done: this machine announces itself in the group lab and lets the cfi server in"
