// Users and Roles (system admins): GET /admin/users?kind=&q=, PUT
// /admin/users/{user}, PUT/DELETE /admin/users/{user}/roles/{role}, and a
// service account's tokens: POST /admin/users/{user}/tokens, then POST
// /admin/tokens/{id}/generate.
import {
	$, api, enc, el, busy, notify, showError, formError, openDialog, returnFocusTo, timeEl, actionButton, sub,
	showServiceJWT,
	filteredList, renderGrid,
} from "./common.js";

const table = $("#users");
const dlg = $("#user-dialog");
const form = $("#user-form");
const filters = $("#filters");
const roles = ["api_tokens", "admin"];
let users = [];
let cursor = null;
let editing = null; // the user being edited, or null when adding

function filterQuery() {
	const q = new URLSearchParams();
	const text = filters.elements.q.value.trim();
	if (text) q.set("q", text);
	if (filters.elements.kind.value) q.set("kind", filters.elements.kind.value);
	return q.toString();
}

const page = filteredList(filters, filterQuery, load);

async function load(more) {
	try {
		const data = await api("GET", page("admin/users", more, cursor));
		users = more ? users.concat(data.users) : data.users;
		cursor = data.next_cursor;
		render();
	} catch (err) {
		showError(err);
	}
}

function render() {
	renderGrid(table, users.map(row), cursor);
}

function row(u) {
	const account = [];
	if (u.disabled) account.push(el("span", { class: "badge status-revoked" }, "Disabled"));
	if (u.view_only) account.push(el("span", { class: "badge status-expired" }, "View-only"));
	if (account.length === 0) account.push(el("span", { class: "badge status-generated_active" }, "Active"));
	const actions = [actionButton("edit", "Edit", u.id, u.id, () => openForm(u))];
	if (u.kind === "service") actions.push(actionButton("new-token", "New token", u.id, u.id, () => openTokenForm(u)));
	return el("tr", { dataset: { user: u.id } },
		el("td", { class: "name" }, u.id, u.name ? sub(u.name) : ""),
		el("td", {}, u.kind === "service" ? "Service account" : "Person"),
		el("td", {}, u.email || el("span", { class: "none" }, "—")),
		el("td", {}, u.roles.length ? u.roles.map(roleTag(u)) : el("span", { class: "none" }, "none")),
		el("td", {}, account),
		el("td", {}, timeEl(u.last_seen_at, "never")),
		el("td", {}, timeEl(u.created_at)),
		el("td", { class: "actions" }, actions));
}

// roleTag shows where a role comes from: a group, or a grant by hand.
const roleTag = (u) => (r) => u.group_roles.includes(r)
	? el("span", { class: "tag", title: "from the groups " + u.groups.join(", ") }, r + " (group)")
	: el("span", { class: "tag", title: "granted by hand" }, r);

function upsert(u) {
	const i = users.findIndex((x) => x.id === u.id);
	if (i >= 0) users[i] = u;
	else users.unshift(u);
	render();
}

function openForm(u) {
	editing = u;
	form.reset();
	$("#user-dialog-title").textContent = u ? `Edit ${u.id}` : "Add a user";
	const id = form.elements.id;
	id.readOnly = !!u;
	form.elements.kind.disabled = !!u;
	for (const r of roles) $("#user-role-" + r).disabled = false;
	if (u) {
		id.value = u.id;
		form.elements.kind.value = u.kind;
		form.elements.name.value = u.name;
		form.elements.email.value = u.email;
		form.elements.view_only.checked = u.view_only;
		form.elements.disabled.checked = u.disabled;
		// A role from a group follows the group: it is not changed here.
		for (const r of roles) {
			$("#user-role-" + r).checked = u.roles.includes(r);
			$("#user-role-" + r).disabled = u.group_roles.includes(r);
		}
	}
	openDialog(dlg, u ? form.elements.email : id);
}

// Saving changes the account first and the roles after, so that a user made
// no longer view-only can be given the api_tokens role in one go.
form.addEventListener("submit", (e) => {
	e.preventDefault();
	const id = form.elements.id.value.trim();
	if (!id) {
		formError(dlg, new Error("Give the user name."));
		form.elements.id.focus();
		return;
	}
	const want = {
		name: form.elements.name.value.trim(),
		email: form.elements.email.value.trim(),
		view_only: form.elements.view_only.checked,
		disabled: form.elements.disabled.checked,
	};
	busy($("#user-submit"), async () => {
		let u = editing;
		try {
			const patch = {};
			for (const k of Object.keys(want)) {
				if (!u || want[k] !== u[k]) patch[k] = want[k];
			}
			if (!u) patch.kind = form.elements.kind.value;
			if (!u || Object.keys(patch).length > 0) u = await api("PUT", "admin/users/" + enc(id), patch);
			for (const r of roles) {
				if ($("#user-role-" + r).disabled) continue;
				const on = $("#user-role-" + r).checked;
				if (on && !u.roles.includes(r)) u = await api("PUT", `admin/users/${enc(id)}/roles/${r}`);
				if (!on && u.roles.includes(r)) u = await api("DELETE", `admin/users/${enc(id)}/roles/${r}`);
			}
			upsert(u);
			returnFocusTo(dlg, u.id, "edit");
			dlg.close();
			notify(`User ${u.id} saved.`);
		} catch (err) {
			if (u && u !== editing) upsert(u); // what was saved before the refusal
			editing = u;
			form.elements.id.readOnly = !!u;
			formError(dlg, err);
		}
	});
});

// A service account's token: created, then generated at once; the JWT is
// shown this once.
const tokenDlg = $("#svc-token-dialog");
const tokenForm = $("#svc-token-form");
let tokenFor = null;

function openTokenForm(u) {
	tokenFor = u;
	tokenForm.reset();
	$("#svc-token-title").textContent = `New token for ${u.id}`;
	openDialog(tokenDlg, tokenForm.elements.name);
}

tokenForm.addEventListener("submit", (e) => {
	e.preventDefault();
	const body = {
		name: tokenForm.elements.name.value.trim(),
		expires: tokenForm.elements.expires.value,
		scopes: [...tokenForm.querySelectorAll("input[name=scopes]:checked")].map((c) => c.value),
	};
	busy($("#svc-token-submit"), async () => {
		try {
			const t = await api("POST", `admin/users/${enc(tokenFor.id)}/tokens`, body);
			const res = await api("POST", `admin/tokens/${enc(t.id)}/generate`);
			returnFocusTo(tokenDlg, tokenFor.id, "new-token");
			tokenDlg.close();
			showServiceJWT(res);
		} catch (err) {
			formError(tokenDlg, err);
		}
	});
});

$("#add-user").addEventListener("click", () => openForm(null));
load(false);
