#!/usr/bin/env bash
# Builds a fully static x86_64 Linux binary of fakemail (musl target, release profile) and
# checks that it is static and runs. Usage: packaging/build-release.sh
#
# Needs cargo and rustup (to add the x86_64-unknown-linux-musl target once) and a C linker
# (cc). ring, the TLS library's cryptography, compiles some C: install Debian's musl-tools,
# whose musl-gcc is then its C compiler (plain gcc also works on x86_64).
#
# Prints the binary's path, which is
#   ${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/fakemail
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=x86_64-unknown-linux-musl

if ! rustc --print target-libdir --target "$target" >/dev/null 2>&1 ||
    [ ! -d "$(rustc --print target-libdir --target "$target")" ]; then
    if command -v rustup >/dev/null; then
        rustup target add "$target"
    else
        echo "the Rust standard library for $target is missing and rustup is not installed" >&2
        exit 1
    fi
fi
if command -v musl-gcc >/dev/null; then
    export CC_x86_64_unknown_linux_musl=musl-gcc
fi

cargo build --release --locked --target "$target"

bin="${CARGO_TARGET_DIR:-target}/$target/release/fakemail"

# Static: no program interpreter and no shared libraries. `file` says "statically linked"
# (or "static-pie linked"); ldd says "not a dynamic executable" or "statically linked".
if command -v file >/dev/null; then
    description=$(file -b "$bin")
    case "$description" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *)
            echo "$bin is not static: $description" >&2
            exit 1
            ;;
    esac
fi
if command -v ldd >/dev/null; then
    ldd_out=$(ldd "$bin" 2>&1) || true
    case "$ldd_out" in
        *"statically linked"* | *"not a dynamic executable"*) ;;
        *)
            echo "$bin needs shared libraries:" >&2
            echo "$ldd_out" >&2
            exit 1
            ;;
    esac
fi

version=$("$bin" --version)
size=$(stat -c %s "$bin")
echo "$version: $bin ($size bytes, static)"
# The shipped binary stays small enough to download into every CI job: at most 16 MiB (SMTP,
# IMAP, POP3, HTTP with websockets, the web UI and the time zone database, in one file).
max=$((16 * 1024 * 1024))
if [ "$size" -gt "$max" ]; then
    echo "$bin is $size bytes, over the $max-byte budget" >&2
    exit 1
fi
