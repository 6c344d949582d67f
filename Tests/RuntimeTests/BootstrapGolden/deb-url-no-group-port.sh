#!/bin/sh
# cfi client bootstrap, written by 'cfi-sh server bootstrap-script' (cfi-sh TEST).
# Run it as root on a freshly installed machine (a preseed late_command through
# in-target, a cloud-init runcmd): it makes the machine a client of the cfi server
# whose ssh key has the fingerprint
#   SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY
# in no group (the server files it as unknown). Running it again changes nothing.
set -eu

say() { printf 'cfi bootstrap: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run it as root"

# 1. cfi-sh, from the server.
url='https://srv.example/pool/cfi-sh.deb?a=1&b='\''x'\'''
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "downloading $url"
if command -v curl >/dev/null 2>&1; then
  curl -fsS -o "$work/cfi-sh.deb" "$url" || die "cannot download $url"
elif command -v wget >/dev/null 2>&1; then
  wget -q -O "$work/cfi-sh.deb" "$url" || die "cannot download $url"
else
  die "neither curl nor wget is installed, so $url cannot be downloaded (install one, or use a script made without --deb-url)"
fi
# (no --deb-sha256: the download is not checked)
export DEBIAN_FRONTEND=noninteractive
version=$(dpkg-deb -f "$work/cfi-sh.deb" Version) || die "$url is not a .deb"
# apt-get installs the .deb and what it depends on in one step, waiting up to 10 minutes
# for the dpkg lock (cloud-init or unattended-upgrades hold it at first boot); apt's own
# user reads the .deb. Standard input is the script itself when it is piped into sh:
# nothing may read it.
chmod 0755 "$work"
if [ "$(dpkg-query -W -f '${Status} ${Version}' cfi-sh 2>/dev/null)" = "install ok installed $version" ]; then
  say "cfi-sh $version is installed already"
else
  apt-get install -y -q -o DPkg::Lock::Timeout=600 "$work/cfi-sh.deb" </dev/null \
    || die "cannot install cfi-sh $version (apt-get install failed)"
fi
dpkg-query -W -f '${Status}' cfi-sh 2>/dev/null | grep -q 'install ok installed' || die "cfi-sh is not installed"
for program in avahi-daemon sshd; do
  command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] \
    || say "warning: $program is not installed: the server needs avahi-daemon and openssh-server here (cfi-sh recommends them)"
done

# 2. Enrollment with the server's key pinned: its options for cfi-sh-enroll.service.
defaults=/etc/default/cfi-sh
line='ENROLL_OPTIONS="--port 2222 --server-fingerprint SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY"'
if ! grep -qxF "$line" "$defaults" 2>/dev/null; then
  { grep -v '^ENROLL_OPTIONS=' "$defaults" 2>/dev/null || true; printf '%s\n' "$line"; } >"$defaults.cfi-new"
  mv -f "$defaults.cfi-new" "$defaults"
  say "wrote the enrollment options in $defaults"
fi

# 3. On a live machine (avahi-daemon running), at once; else, or while no server answers,
#    at boot through cfi-sh-enroll.service (it tries until a server answers).
if avahi-daemon --check 2>/dev/null; then
  status=0
  cfi-sh client enroll --wait 30s --port 2222 --server-fingerprint SHA256:0tKRGV3agls0CHAC0cGlyvM15p3+GEr3iZThbkM6OmY </dev/null || status=$?
  case $status in
    0) say "enrolled"; exit 0 ;;
    3) say "no cfi server answered yet: cfi-sh-enroll.service tries again" ;;
    *) die "cfi-sh client enroll failed (status $status)" ;;
  esac
fi
systemctl enable cfi-sh-enroll.service || die "cannot enable cfi-sh-enroll.service"
if [ -d /run/systemd/system ] && avahi-daemon --check 2>/dev/null; then
  systemctl --no-block start cfi-sh-enroll.service || say "cannot start cfi-sh-enroll.service now: it starts at boot"
fi
say "cfi-sh-enroll.service enabled: it enrolls this machine at boot"
