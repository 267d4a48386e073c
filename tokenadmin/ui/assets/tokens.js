// My API Access Tokens: the caller's tokens, over GET/POST /tokens and
// /tokens/{id}/....
import {
	$, api, enc, el, busy, notify, showError, clearMessages, formError, openDialog, returnFocusTo,
	confirmAction, showLogs, focusAction, statusBadge, scopeTags, expiryCell, lastUsedCell, actionButton, fmtTime, expiryLabels, copy, renderGrid,
	revokedSwitch, notRevoked, overlapChoice,
} from "./common.js";
import { clients, defaultURL } from "./clients.js";

const table = $("#tokens");
let tokens = []; // newest first, as listed
let cursor = null;
let showRevoked = () => false;

async function load(more) {
	const status = showRevoked() ? "" : "&status=" + notRevoked;
	try {
		const data = await api("GET", "tokens?limit=100" + status + (more && cursor ? "&cursor=" + enc(cursor) : ""));
		tokens = more ? tokens.concat(data.tokens) : data.tokens;
		cursor = data.next_cursor;
		render();
	} catch (err) {
		showError(err);
	}
}

// A token revoked here stays in view, marked so, until the next load.
function render() {
	renderGrid(table, tokens.map(row), cursor);
	$("#empty-hidden").hidden = showRevoked();
}

function row(t) {
	const revoked = t.status === "revoked";
	const generated = t.status !== "not_generated";
	const actions = revoked ? [] : [
		generated
			? actionButton("regenerate", "Regenerate", t.id, t.name, () => generate(t.id, true))
			: actionButton("generate", "Generate", t.id, t.name, () => generate(t.id, false), "primary"),
		actionButton("edit", "Edit", t.id, t.name, () => edit(t.id)),
	];
	actions.push(actionButton("logs", "Logs", t.id, t.name, () => showLogs(`Logs of “${t.name}”`, `tokens/${enc(t.id)}/logs`)));
	if (!revoked) actions.push(actionButton("revoke", "Revoke", t.id, t.name, () => revoke(t.id), "link-danger"));
	return el("tr", { class: revoked ? "revoked" : "", dataset: { token: t.id } },
		el("td", { class: "name" }, t.name),
		el("td", {}, statusBadge(t)),
		el("td", {}, scopeTags(t)),
		el("td", {}, expiryCell(t)),
		el("td", {}, networksCell(t)),
		el("td", {}, lastUsedCell(t)),
		el("td", { class: "actions" }, actions));
}

// networksCell: the networks the token may be used from, or Any.
function networksCell(t) {
	return t.allowed_ips.length ? t.allowed_ips.map((n) => el("span", { class: "tag" }, n)) : el("span", {}, "Any");
}

// networksOf reads the allowed networks field: one per line, or separated
// by commas or spaces.
function networksOf(text) {
	return text.split(/[\s,]+/).filter((n) => n !== "");
}

function find(id) {
	return tokens.find((t) => t.id === id);
}

// upsert puts a token the server returned in place, or first when new.
function upsert(t) {
	const i = tokens.findIndex((x) => x.id === t.id);
	if (i >= 0) tokens[i] = t;
	else tokens.unshift(t);
	render();
}

// Create and edit share one dialog.
const tokenDialog = $("#token-dialog");
const form = $("#token-form");
let editing = null; // the token being edited, or null when creating

function openForm(t) {
	editing = t;
	form.reset();
	$("#token-dialog-title").textContent = t ? `Edit “${t.name}”` : "Create a new token";
	$("#token-submit").textContent = t ? "Save" : "Create";
	$("#token-edit-hint").hidden = !t;
	const select = $("#token-expires");
	for (const o of select.querySelectorAll("option[data-current]")) o.remove();
	if (t) {
		form.elements.name.value = t.name;
		// A lifetime the policy no longer allows stays selectable as it is.
		if (![...select.options].some((o) => o.value === t.expires)) {
			select.append(el("option", { value: t.expires, dataset: { current: "" } }, `${expiryLabels[t.expires] || t.expires} (current)`));
		}
		select.value = t.expires;
		for (const box of scopeBoxes()) box.checked = t.scopes.includes(box.value);
		form.elements.allowed_ips.value = t.allowed_ips.join("\n");
	}
	openDialog(tokenDialog, form.elements.name);
}

// scopeBoxes are the checkboxes of the declared scopes (one or more).
function scopeBoxes() {
	return [...form.querySelectorAll("input[name=scopes]")];
}

async function submitForm(e) {
	e.preventDefault();
	const name = form.elements.name.value.trim();
	const expires = form.elements.expires.value;
	const scopes = scopeBoxes().filter((b) => b.checked).map((b) => b.value);
	const allowed = networksOf(form.elements.allowed_ips.value);
	if (!name) {
		formError(tokenDialog, new Error("Give the token a name."));
		form.elements.name.focus();
		return;
	}
	if (scopes.length === 0) {
		formError(tokenDialog, new Error("Choose at least one scope."));
		scopeBoxes()[0].focus();
		return;
	}
	await busy($("#token-submit"), async () => {
		try {
			if (!editing) {
				const body = { name, expires, scopes };
				if (allowed.length > 0) body.allowed_ips = allowed;
				const t = await api("POST", "tokens", body);
				upsert(t);
				returnFocusTo(tokenDialog, t.id, "generate");
				tokenDialog.close();
				notify(`Token “${t.name}” created. Generate it to get the token to paste into your program.`);
				return;
			}
			const patch = {};
			if (name !== editing.name) patch.name = name;
			if (expires !== editing.expires) patch.expires = expires;
			if ([...scopes].sort().join(" ") !== [...editing.scopes].sort().join(" ")) patch.scopes = scopes;
			if (allowed.join(" ") !== editing.allowed_ips.join(" ")) patch.allowed_ips = allowed;
			if (Object.keys(patch).length > 0) {
				const t = await api("PATCH", `tokens/${enc(editing.id)}`, patch);
				upsert(t);
				notify(`Token “${t.name}” saved.`);
			}
			tokenDialog.close();
		} catch (err) {
			formError(tokenDialog, err);
		}
	});
}

function edit(id) {
	const t = find(id);
	if (t) openForm(t);
}

// Generate: the JWT is shown once, in its dialog, and dropped when it closes.
const jwtDialog = $("#jwt-dialog");
const jwtValue = $("#jwt-value");

async function generate(id, again) {
	const t = find(id);
	if (!t) return;
	clearMessages();
	const overlap = overlapChoice();
	if (again && !await confirmAction({
		title: `Regenerate “${t.name}”?`,
		text: "The token in use stops working at once, or later if you choose so below. Everything that uses it (Excel, Power BI, scripts) must be given the new one.",
		ok: "Regenerate",
		extra: overlap.field,
	})) return;
	try {
		const res = await api("POST", `tokens/${enc(id)}/generate`, again ? overlap.body() : undefined);
		upsert(res.details);
		$("#jwt-name").textContent = res.details.name;
		$("#jwt-expires").textContent = res.expires_at ? fmtTime(res.expires_at) : "never";
		$("#jwt-copied").textContent = "";
		jwtValue.value = res.token;
		$("#jwt-url").value = defaultURL($("#jwt-use").dataset.apiUrl, res.details.scopes);
		showSnippet();
		openDialog(jwtDialog, $("#jwt-copy"));
		returnFocusTo(jwtDialog, id, "regenerate"); // the Generate button is gone
	} catch (err) {
		showError(err);
	}
}

function forgetJWT() {
	jwtValue.value = "";
	$("#jwt-copied").textContent = "";
	$("#jwt-snippet").value = "";
	$("#jwt-snippet-copied").textContent = "";
}

// showSnippet shows the steps and the snippet of the chosen client, for the
// URL in the field and the token in the dialog.
function showSnippet() {
	const client = clients[$("#jwt-client").value];
	const url = $("#jwt-url").value.trim() || "https://reports.example.com/meta";
	$("#jwt-steps").replaceChildren(...client.steps().map((s) => el("li", {}, s)));
	$("#jwt-snippet").value = jwtValue.value ? client.code(url, jwtValue.value) : "";
	$("#jwt-snippet-copied").textContent = "";
}

async function copySnippet() {
	const ok = await copy($("#jwt-snippet"));
	$("#jwt-snippet-copied").textContent = ok ? "Copied to the clipboard." : "Could not copy: select the snippet and press Ctrl+C.";
}

async function copyJWT() {
	const ok = await copy(jwtValue);
	$("#jwt-copied").textContent = ok ? "Copied to the clipboard." : "Could not copy: select the token and press Ctrl+C.";
}

async function revoke(id) {
	const t = find(id);
	if (!t) return;
	clearMessages();
	if (!await confirmAction({
		title: `Revoke “${t.name}”?`,
		text: "It stops working at once, everywhere, and can never be generated again. This cannot be undone.",
		ok: "Revoke",
	})) return;
	try {
		upsert(await api("POST", `tokens/${enc(id)}/revoke`));
		focusAction(id, "logs"); // what is left to do with it
		notify(`Token “${t.name}” revoked.`);
	} catch (err) {
		showError(err);
	}
}

// Without the token role the page only says why; there is nothing to wire.
if (table) {
	$("#create").addEventListener("click", () => openForm(null));
	form.addEventListener("submit", submitForm);
	jwtDialog.addEventListener("close", forgetJWT);
	$("#jwt-copy").addEventListener("click", copyJWT);
	$("#jwt-client").addEventListener("change", showSnippet);
	$("#jwt-url").addEventListener("input", showSnippet);
	$("#jwt-snippet-copy").addEventListener("click", copySnippet);
	$("#more").addEventListener("click", (e) => busy(e.currentTarget, () => load(true)));
	showRevoked = revokedSwitch(() => load(false));
	load(false);
}
