#!/bin/sh
# Install the Debian packages epmdpxy needs to build and test; do nothing
# when they are all present.  Usage: ci/deps.sh [--check]
#   --check  only report what is missing (exit 1 if anything is)
set -eu
# clang + libclang-rt: libFuzzer and the sanitizers; valgrind: memcheck of the daemon
# erlang-common-test .. erlang-edoc: the Erlang client's tests (ct_run, EUnit,
# the Mnesia suite) and its reference; rebar3, elixir, git: the Erlang and
# Elixir examples; iptables, iproute2: make netsplit's real partition;
# chromium: the dashboard test (http suite) runs the page headless
PKGS="erlang-base erlang-dev check libcurl4-openssl-dev libjsmn-dev pkg-config gcc make clang libclang-rt-14-dev valgrind
      erlang-common-test erlang-eunit erlang-mnesia erlang-tools erlang-edoc erlang-syntax-tools
      rebar3 elixir git iptables iproute2 chromium"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "missing packages:$missing"
    exit 1
fi
echo "ci/deps.sh: installing missing packages:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "ci/deps.sh: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
