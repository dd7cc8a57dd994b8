#!/bin/sh
# Fetches postfix's smtp-source (load generator) and smtp-sink (null server) for
# `cargo bench --bench million` without installing the mail system: `apt-get download` the
# Debian package and unpack it with `dpkg-deb -x` into <target dir>/postfix. The tools link
# against postfix's own libraries in usr/lib/postfix; the bench runs them with
# LD_LIBRARY_PATH pointing there. Run from the repository's root; needs Debian or a
# derivative (apt-get, dpkg-deb), no root.
set -eu

target=${CARGO_TARGET_DIR:-target}
dest="$target/postfix"
mkdir -p "$target/postfix-deb"
cd "$target/postfix-deb"
apt-get download postfix
cd - >/dev/null
rm -rf "$dest"
dpkg-deb -x "$(ls "$target"/postfix-deb/postfix_*.deb | tail -n 1)" "$dest"
# Every library the tools need must resolve, postfix's own from usr/lib/postfix.
for tool in smtp-source smtp-sink; do
    if LD_LIBRARY_PATH="$dest/usr/lib/postfix" ldd "$dest/usr/sbin/$tool" | grep 'not found'; then
        echo "postfix-tools: $tool needs a library that is not installed (above)" >&2
        exit 1
    fi
done
echo "smtp-source and smtp-sink are in $dest/usr/sbin"
