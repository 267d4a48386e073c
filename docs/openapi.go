// Package docs holds the documents that the plugin also serves: the
// OpenAPI 3.1 description of the management API, kept here beside the
// prose that explains it and embedded, so the file in the repository is
// the one GET /openapi.json answers.
package docs

import _ "embed"

// OpenAPI is docs/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
