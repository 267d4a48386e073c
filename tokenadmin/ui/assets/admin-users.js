// Users and Roles (system admins): GET /admin/users, PUT /admin/users/{user}
// and PUT/DELETE /admin/users/{user}/roles/{role}.
import { $, api, enc, el, busy, notify, showError, formError, openDialog, returnFocusTo, timeEl, actionButton } from "./common.js";

const table = $("#users");
const dlg = $("#user-dialog");
const form = $("#user-form");
const roles = ["api_tokens", "admin"];
let users = [];
let cursor = null;
let editing = null; // the user being edited, or null when adding

async function load(more) {
	try {
		const data = await api("GET", "admin/users?limit=100" + (more && cursor ? "&cursor=" + enc(cursor) : ""));
		users = more ? users.concat(data.users) : data.users;
		cursor = data.next_cursor;
		render();
	} catch (err) {
		showError(err);
	}
}

function render() {
	$("tbody", table).replaceChildren(...users.map(row));
	$("#empty").hidden = users.length > 0;
	table.hidden = users.length === 0;
	$("#more").hidden = !cursor;
}

function row(u) {
	const account = [];
	if (u.disabled) account.push(el("span", { class: "badge status-revoked" }, "Disabled"));
	if (u.view_only) account.push(el("span", { class: "badge status-expired" }, "View-only"));
	if (account.length === 0) account.push(el("span", { class: "badge status-generated_active" }, "Active"));
	return el("tr", { dataset: { user: u.id } },
		el("td", { class: "name" }, u.id),
		el("td", {}, u.email || el("span", { class: "none" }, "—")),
		el("td", {}, u.roles.length ? u.roles.map((r) => el("span", { class: "tag" }, r)) : el("span", { class: "none" }, "none")),
		el("td", {}, account),
		el("td", {}, timeEl(u.created_at)),
		el("td", { class: "actions" }, actionButton("edit", "Edit", u.id, u.id, () => openForm(u))));
}

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
	if (u) {
		id.value = u.id;
		form.elements.email.value = u.email;
		form.elements.view_only.checked = u.view_only;
		form.elements.disabled.checked = u.disabled;
		for (const r of roles) $("#user-role-" + r).checked = u.roles.includes(r);
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
			if (!u || Object.keys(patch).length > 0) u = await api("PUT", "admin/users/" + enc(id), patch);
			for (const r of roles) {
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

$("#add-user").addEventListener("click", () => openForm(null));
$("#more").addEventListener("click", (e) => busy(e.currentTarget, () => load(true)));
load(false);
