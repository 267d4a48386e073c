package caddymodule

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
	"github.com/scim2/filter-parser/v2"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// SCIM Users: the api_tokens app's people, known by their user id.

func optionalString(s string) optional.String { return optional.NewString(s) }

// scimUsers serves /Users: a user's id and userName are the user id.
type scimUsers struct{ *scimProvider }

func userResource(u apitoken.User) scim.Resource {
	attrs := scim.ResourceAttributes{
		"userName":    u.ID,
		"displayName": u.Name,
		"name":        map[string]any{"formatted": u.Name},
		"active":      !u.Disabled,
	}
	if u.Email != "" {
		attrs["emails"] = []any{map[string]any{"value": u.Email, "type": "work", "primary": true}}
	}
	if len(u.Groups) > 0 {
		groups := make([]any, len(u.Groups))
		for i, g := range u.Groups {
			groups[i] = map[string]any{"value": g, "display": g}
		}
		attrs["groups"] = groups
	}
	created := u.CreatedAt
	return scim.Resource{ID: u.ID, Attributes: attrs, Meta: scim.Meta{Created: &created}}
}

// userProvision is what a whole SCIM User (POST, PUT) says.
func userProvision(attrs scim.ResourceAttributes) (string, apitoken.Provision, error) {
	id, _ := attrs["userName"].(string)
	var p apitoken.Provision
	name := userName(attrs)
	p.Name = &name
	email := primaryEmail(attrs["emails"])
	p.Email = &email
	active := true
	if v, ok := attrs["active"]; ok {
		b, err := scimBool(v)
		if err != nil {
			return "", p, err
		}
		active = b
	}
	p.Active = &active
	return id, p, nil
}

// userName is the display name, or else the formatted name, or else the
// given and family names.
func userName(attrs scim.ResourceAttributes) string {
	if s, _ := attrs["displayName"].(string); s != "" {
		return s
	}
	n, _ := attrs["name"].(map[string]any)
	if s, _ := n["formatted"].(string); s != "" {
		return s
	}
	given, _ := n["givenName"].(string)
	family, _ := n["familyName"].(string)
	return strings.TrimSpace(given + " " + family)
}

// primaryEmail is the primary address of a SCIM emails value, or else the
// first.
func primaryEmail(v any) string {
	emails, _ := v.([]any)
	first := ""
	for _, e := range emails {
		m, _ := e.(map[string]any)
		addr, _ := m["value"].(string)
		if primary, _ := scimBool(m["primary"]); primary {
			return addr
		}
		if first == "" {
			first = addr
		}
	}
	return first
}

// scimBool reads a boolean, also as Entra ID sends them ("True", "False").
func scimBool(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		switch strings.ToLower(b) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue,
		Detail: fmt.Sprintf("%v is not a boolean: send true or false", v)}
}

func (h scimUsers) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	id, p, err := userProvision(attrs)
	if err != nil {
		return scim.Resource{}, err
	}
	u, err := h.svc.Provision(r.Context(), id, p, apitoken.ProvisionCreate)
	if err != nil {
		return scim.Resource{}, h.scimError(err)
	}
	return userResource(u), nil
}

func (h scimUsers) Get(r *http.Request, id string) (scim.Resource, error) {
	u, err := h.svc.SCIMUser(r.Context(), id)
	if err != nil {
		return scim.Resource{}, h.scimError(err)
	}
	return userResource(u), nil
}

func (h scimUsers) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	var all []scim.Resource
	err := h.svc.SCIMUsers(r.Context(), userNameEq(params), func(u apitoken.User) bool {
		all = append(all, userResource(u))
		return true
	})
	if err != nil {
		return scim.Page{}, h.scimError(err)
	}
	return page(all, params), nil
}

func (h scimUsers) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	name, p, err := userProvision(attrs)
	if err != nil {
		return scim.Resource{}, err
	}
	if name != id {
		return scim.Resource{}, errUserNameChange
	}
	u, err := h.svc.Provision(r.Context(), id, p, apitoken.ProvisionChange)
	if err != nil {
		return scim.Resource{}, h.scimError(err)
	}
	return userResource(u), nil
}

func (h scimUsers) Delete(r *http.Request, id string) error {
	if err := h.svc.Deprovision(r.Context(), id); err != nil {
		return h.scimError(err)
	}
	return nil
}

var errUserNameChange = scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeMutability,
	Detail: "userName is the user id and cannot change: map the identity provider's userName to an attribute that stays"}

func (h scimUsers) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	var p apitoken.Provision
	for _, op := range ops {
		for attr, v := range patchTargets(op) {
			if err := patchUser(&p, id, strings.ToLower(op.Op), attr, v); err != nil {
				return scim.Resource{}, err
			}
		}
	}
	u, err := h.svc.Provision(r.Context(), id, p, apitoken.ProvisionChange)
	if err != nil {
		return scim.Resource{}, h.scimError(err)
	}
	return userResource(u), nil
}

// patchTargets is what one operation sets: attribute path (lower case, as
// "emails" or "name.formatted") -> value. An operation without a path sets
// each attribute of its value.
func patchTargets(op scim.PatchOperation) map[string]any {
	if op.Path == nil {
		m, _ := op.Value.(map[string]any)
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[strings.ToLower(k)] = v
		}
		return out
	}
	a := op.Path.AttributePath
	attr := strings.ToLower(a.AttributeName)
	if a.SubAttribute != nil {
		attr += "." + strings.ToLower(*a.SubAttribute)
	} else if op.Path.SubAttribute != nil {
		attr += "." + strings.ToLower(*op.Path.SubAttribute)
	}
	return map[string]any{attr: op.Value}
}

// patchUser adds to p what setting (or removing) attr says. Attributes the
// app does not keep (title, addresses, the enterprise extension, ...) are
// accepted and not stored.
func patchUser(p *apitoken.Provision, id, op, attr string, v any) error {
	remove := op == "remove"
	switch attr {
	case "active":
		if remove {
			return nil
		}
		b, err := scimBool(v)
		if err != nil {
			return err
		}
		p.Active = &b
	case "username":
		if s, _ := v.(string); !remove && s != id {
			return errUserNameChange
		}
	case "displayname", "name.formatted":
		s, _ := v.(string)
		p.Name = &s
	case "name":
		m, _ := v.(map[string]any)
		s := userName(scim.ResourceAttributes{"name": m})
		p.Name = &s
	case "emails", "emails.value":
		s, ok := v.(string)
		if !ok {
			s = primaryEmail(v)
		}
		p.Email = &s
	}
	return nil
}

// userNameEq is the value of a filter userName eq "<value>" (as both
// providers look a user up), so that the store narrows the users down
// before the filter picks; "" for any other filter. The store folds ASCII
// only, so a value with other letters is not narrowed.
func userNameEq(params scim.ListRequestParams) string {
	if params.FilterValidator == nil {
		return ""
	}
	e, ok := params.FilterValidator.GetFilter().(*filter.AttributeExpression)
	if !ok || e.Operator != filter.EQ || !strings.EqualFold(e.AttributePath.AttributeName, "userName") ||
		e.AttributePath.SubAttribute != nil {
		return ""
	}
	v, _ := e.CompareValue.(string)
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return ""
		}
	}
	return v
}

// page is the part of all that params ask for, filtered.
func page(all []scim.Resource, params scim.ListRequestParams) scim.Page {
	matched := all[:0]
	for _, res := range all {
		if params.FilterValidator == nil || params.FilterValidator.PassesFilter(withID(res)) == nil {
			matched = append(matched, res)
		}
	}
	out := scim.Page{TotalResults: len(matched), Resources: []scim.Resource{}}
	start := min(params.StartIndex-1, len(matched))
	end := min(start+params.Count, len(matched))
	out.Resources = append(out.Resources, matched[start:end]...)
	return out
}

// withID is the attributes a filter sees: the resource's and its id.
func withID(res scim.Resource) map[string]any {
	m := make(map[string]any, len(res.Attributes)+1)
	for k, v := range res.Attributes {
		m[k] = v
	}
	m["id"] = res.ID
	return m
}
