// Package browsertest tests the web pages of api_token_admin in a real
// headless Chromium, driven with chromedp, against a real Caddy: basic_auth
// in front of api_token_admin, and api_token_auth in front of a real
// upstream, so that a token made in the pages is used as Excel would use it.
//
// The tests need Debian's chromium (/usr/bin/chromium) and are skipped
// without it. With APITOKENS_SCREENSHOTS set to a folder, they also save
// screenshots of the pages there (docs/screenshots in the repository):
//
//	APITOKENS_SCREENSHOTS=$PWD/docs/screenshots go test ./tokenadmin/browsertest/
package browsertest
