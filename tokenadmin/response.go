package tokenadmin

import (
	"net/http"

	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// internalMessage is what a client is told of a failure on the server.
const internalMessage = "something went wrong on the server; try again, and tell the administrator if it persists"

// fail answers err as JSON; see jsonhttp.Fail.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	jsonhttp.Fail(w, r, a.logger, err, internalMessage)
}
