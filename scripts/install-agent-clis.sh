#!/usr/bin/env bash
# Codex CLI and Claude Code, pinned, into .tools/agent-clis (project-local, never global): the tests
# in tests/apis/test_agent_clis.py point them at the router. Both ship native binaries as npm
# packages, so nothing is fetched outside the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."
CODEX_VERSION=0.169.0
CLAUDE_CODE_VERSION=2.1.328
PREFIX=.tools/agent-clis
BIN="$PREFIX/node_modules/.bin"

installed() {
    [ -x "$BIN/codex" ] && [ -x "$BIN/claude" ] &&
        "$BIN/codex" --version 2>/dev/null | grep -q "$CODEX_VERSION" &&
        "$BIN/claude" --version 2>/dev/null | grep -q "$CLAUDE_CODE_VERSION"
}

if installed; then
    echo "Codex $CODEX_VERSION and Claude Code $CLAUDE_CODE_VERSION present in $PREFIX"
    exit 0
fi
if ! command -v npm >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "npm is missing; as root: apt-get install -y npm" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@openai/codex@$CODEX_VERSION" "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
# Claude Code's postinstall puts its platform binary in place; npm versions that skip install
# scripts leave a stub, so run it here where needed.
if ! "$BIN/claude" --version >/dev/null 2>&1; then
    (cd "$PREFIX/node_modules/@anthropic-ai/claude-code" && node install.cjs)
fi
installed || { echo "Codex or Claude Code did not install as pinned" >&2; exit 1; }
echo "installed Codex $CODEX_VERSION and Claude Code $CLAUDE_CODE_VERSION in $PREFIX"
