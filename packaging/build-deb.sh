#!/usr/bin/env bash
# Builds the Debian package of fakemail around the static binary: the program, the systemd
# unit, /etc/default/fakemail, the manual page and bash, zsh and fish completions.
# Usage: packaging/build-deb.sh
#
# Needs cargo-deb (`cargo install --locked cargo-deb`) and what packaging/build-release.sh
# needs. Prints the path of the .deb, which is
#   ${CARGO_TARGET_DIR:-target}/debian/fakemail_<version>-1_amd64.deb
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=x86_64-unknown-linux-musl

if ! cargo deb --version >/dev/null 2>&1; then
    echo "cargo-deb is not installed; install it with: cargo install --locked cargo-deb" >&2
    exit 1
fi

packaging/build-release.sh

# The completions come from the binary itself, so they match its flags exactly. They go
# where Cargo.toml's assets expect them: cargo-deb reads target/release/ as this target dir.
release="${CARGO_TARGET_DIR:-target}/$target/release"
mkdir -p "$release/completions"
"$release/fakemail" completions bash >"$release/completions/fakemail.bash"
"$release/fakemail" completions zsh >"$release/completions/_fakemail"
"$release/fakemail" completions fish >"$release/completions/fakemail.fish"

cargo deb --no-build --locked --target "$target"
