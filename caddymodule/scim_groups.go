package caddymodule

import (
	"net/http"
	"slices"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/scim2/filter-parser/v2"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// SCIM Groups: a group is known by its name, and its members are the users
// whose groups hold it.

// scimGroups serves /Groups. A group's id is its displayName, the name the
// group map gives roles to; its members are the users in it.
type scimGroups struct{ *scimProvider }

// groups lists every group with its members (user ids, sorted).
func (h scimGroups) groups(r *http.Request) (map[string][]string, error) {
	out := map[string][]string{}
	for g := range h.svc.Config().Groups {
		out[g] = nil
	}
	err := h.svc.SCIMUsers(r.Context(), "", func(u apitoken.User) bool {
		for _, g := range u.Groups {
			out[g] = append(out[g], u.ID)
		}
		return true
	})
	if err != nil {
		return nil, h.scimError(err)
	}
	for _, m := range out {
		slices.Sort(m)
	}
	return out, nil
}

func groupResource(name string, members []string) scim.Resource {
	ms := make([]any, len(members))
	for i, m := range members {
		ms[i] = map[string]any{"value": m, "display": m}
	}
	return scim.Resource{ID: name, Attributes: scim.ResourceAttributes{"displayName": name, "members": ms}}
}

// memberIDs reads a members value: a list of {"value": "<user id>"}.
func memberIDs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, m := range list {
		mm, _ := m.(map[string]any)
		if id, _ := mm["value"].(string); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// setMembers makes exactly want the members of group name.
func (h scimGroups) setMembers(r *http.Request, name string, have, want []string) error {
	for _, id := range have {
		if !slices.Contains(want, id) {
			if err := h.member(r, name, id, false); err != nil {
				return err
			}
		}
	}
	for _, id := range want {
		if !slices.Contains(have, id) {
			if err := h.member(r, name, id, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// member makes user id join or leave group name.
func (h scimGroups) member(r *http.Request, name, id string, join bool) error {
	p := apitoken.Provision{Leave: []string{name}}
	if join {
		p = apitoken.Provision{Join: []string{name}}
	}
	if _, err := h.svc.Provision(r.Context(), id, p, apitoken.ProvisionChange); err != nil {
		return h.scimError(err)
	}
	return nil
}

func (h scimGroups) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	name, _ := attrs["displayName"].(string)
	all, err := h.groups(r)
	if err != nil {
		return scim.Resource{}, err
	}
	if len(all[name]) > 0 {
		return scim.Resource{}, scimerrors.ScimErrorUniqueness
	}
	want := memberIDs(attrs["members"])
	if err := h.setMembers(r, name, nil, want); err != nil {
		return scim.Resource{}, err
	}
	return h.Get(r, name)
}

func (h scimGroups) Get(r *http.Request, id string) (scim.Resource, error) {
	all, err := h.groups(r)
	if err != nil {
		return scim.Resource{}, err
	}
	members, ok := all[id]
	if !ok {
		// A group without members is known only to its provider.
		return groupResource(id, nil), nil
	}
	return groupResource(id, members), nil
}

func (h scimGroups) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	all, err := h.groups(r)
	if err != nil {
		return scim.Page{}, err
	}
	names := make([]string, 0, len(all))
	for g := range all {
		names = append(names, g)
	}
	slices.Sort(names)
	res := make([]scim.Resource, len(names))
	for i, g := range names {
		res[i] = groupResource(g, all[g])
	}
	return page(res, params), nil
}

func (h scimGroups) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	if name, _ := attrs["displayName"].(string); name != id {
		return scim.Resource{}, errGroupRename
	}
	all, err := h.groups(r)
	if err != nil {
		return scim.Resource{}, err
	}
	if err := h.setMembers(r, id, all[id], memberIDs(attrs["members"])); err != nil {
		return scim.Resource{}, err
	}
	return h.Get(r, id)
}

var errGroupRename = scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeMutability,
	Detail: "a group is known by its displayName, which the group map names: create a group of the new name instead of renaming"}

func (h scimGroups) Delete(r *http.Request, id string) error {
	all, err := h.groups(r)
	if err != nil {
		return err
	}
	return h.setMembers(r, id, all[id], nil)
}

func (h scimGroups) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	for _, op := range ops {
		all, err := h.groups(r)
		if err != nil {
			return scim.Resource{}, err
		}
		have := all[id]
		for attr, v := range patchTargets(op) {
			if err := h.patchGroup(r, id, strings.ToLower(op.Op), attr, v, have, op.Path); err != nil {
				return scim.Resource{}, err
			}
		}
	}
	return h.Get(r, id)
}

// patchGroup applies one operation on attr of group id, whose members are
// have.
func (h scimGroups) patchGroup(r *http.Request, id, op, attr string, v any, have []string, path *filter.Path) error {
	switch attr {
	case "displayname":
		if s, _ := v.(string); op == "remove" || s != id {
			return errGroupRename
		}
		return nil
	case "members":
	default:
		return nil
	}
	switch op {
	case "add":
		return h.setMembers(r, id, have, append(slices.Clone(have), memberIDs(v)...))
	case "replace":
		return h.setMembers(r, id, have, memberIDs(v))
	}
	// remove: the members a filter names (Okta), those of the value (Entra
	// ID), or every one.
	gone := memberIDs(v)
	if path != nil && path.ValueExpression != nil {
		gone = nil
		for _, m := range have {
			if filterMatchesMember(path.ValueExpression, m) {
				gone = append(gone, m)
			}
		}
	} else if v == nil {
		gone = have
	}
	return h.setMembers(r, id, have, slices.DeleteFunc(slices.Clone(have), func(m string) bool { return slices.Contains(gone, m) }))
}

// filterMatchesMember reports whether a members[...] filter such as
// value eq "alice" names member m.
func filterMatchesMember(e filter.Expression, m string) bool {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		return strings.EqualFold(x.AttributePath.AttributeName, "value") && x.Operator == filter.EQ && x.CompareValue == m
	case *filter.LogicalExpression:
		l, r := filterMatchesMember(x.Left, m), filterMatchesMember(x.Right, m)
		if x.Operator == filter.AND {
			return l && r
		}
		return l || r
	}
	return false
}
