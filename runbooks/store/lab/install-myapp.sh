#!/bin/sh
# install-myapp.sh -- Peter's home-made installer, an example for `script`.
#
# cfi-sh uploads this file from the store (STORE/<group>/install-myapp.sh) to a private
# temporary file on each machine, runs it as root with the arguments given after the
# file name in the runbook, and removes it. Exit 0 means success; anything else fails
# the host.
#
#   on group lab < script "install-myapp.sh" >            installs version 1.0.0
#   on group lab < script "install-myapp.sh" "1.2.0" >    installs version 1.2.0
#
# Harmless: it only writes /opt/myapp/VERSION. Idempotent: running it twice changes
# nothing the second time.
set -eu

version=${1:-1.0.0}
dir=/opt/myapp

if [ -f "$dir/VERSION" ] && [ "$(cat "$dir/VERSION")" = "$version" ]; then
    echo "myapp $version is already installed"
    exit 0
fi

mkdir -p "$dir"
# Write next to the target, then rename: never a half-written VERSION.
printf '%s\n' "$version" >"$dir/VERSION.new"
mv "$dir/VERSION.new" "$dir/VERSION"
echo "myapp $version installed in $dir"
