#!/usr/bin/env bash
# Builds ./caddy with this plugin the way users will, via xcaddy, from this
# working tree, then lists the plugin's modules.
#   ./xcaddy.sh            # builds ./caddy
#   OUTPUT=/tmp/caddy ./xcaddy.sh
set -euo pipefail
cd "$(dirname "$0")"
CADDY_VERSION=${CADDY_VERSION:-v2.11.9}
XCADDY_VERSION=v0.4.5
OUTPUT=${OUTPUT:-./caddy}
GOBIN=$(go env GOPATH)/bin
if ! "$GOBIN/xcaddy" version 2>/dev/null | grep -q "${XCADDY_VERSION#v}"; then
	go install "github.com/caddyserver/xcaddy/cmd/xcaddy@${XCADDY_VERSION}"
fi
# The @v0.0.0 names the version that the replacement stands for: without a
# version, go get would ask the module proxy for one, and this tree is not
# published there.
"$GOBIN/xcaddy" build "$CADDY_VERSION" --output "$OUTPUT" \
	--with "github.com/caddy-apitokens/caddy-apitokens@v0.0.0=$PWD"
"$OUTPUT" version
"$OUTPUT" list-modules | grep -E '^(api_tokens|http\.handlers\.api_token_|admin\.api\.api_tokens)'
